"""Which top-level spec model reads which format version (torch-free)."""

from __future__ import annotations

from typing import Any, Union

from specseg.spec.model import ModelSpec
from specseg.spec.multitask import MultiTaskSpec

#: The spec model of each format version this release reads natively.
SPEC_CLASSES: dict[int, type[ModelSpec] | type[MultiTaskSpec]] = {1: ModelSpec, 2: MultiTaskSpec}
#: A validated spec of any version.
AnySpec = Union[ModelSpec, MultiTaskSpec]
SPEC_TYPES = (ModelSpec, MultiTaskSpec)


def spec_class(data: Any) -> type[ModelSpec] | type[MultiTaskSpec]:
    """The model that validates raw spec ``data``: by its ``specseg`` version, version 1 otherwise.

    Version 1 also reports a missing or unknown version, with the versions this release reads.
    """
    version = data.get("specseg") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version in SPEC_CLASSES:
        return SPEC_CLASSES[version]
    return ModelSpec


def is_spec(value: Any) -> bool:
    """Whether ``value`` is a validated spec of any version."""
    return isinstance(value, SPEC_TYPES)
