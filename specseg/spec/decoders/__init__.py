"""Decoder sections, one module per architecture, joined in a discriminated union.

To add an architecture: write its section module here (a :class:`DecoderSpec`
subclass with fields, defaults, cross-field rules and a ``small_example``)
and its decoder module in :mod:`specseg.decoders` (the blocks and a builder
registered for the section). Both are found by the package scan below and
by :mod:`specseg.decoders.registry`: nothing else lists architectures; the
schema, the README tables, ``specseg list architectures`` and the tests that
run every architecture derive from :data:`SECTIONS`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Union

from pydantic import Field

from specseg.spec.decoders.base import SECTIONS, ArchitectureDefaults, DecoderSpec

#: Modules of this package that hold shared code rather than a section.
_SHARED = frozenset({"base", "checks"})

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _SHARED:
        importlib.import_module(f"{__name__}.{_info.name}")

# Sorted by name, so the union (and the JSON schema's order) does not depend on discovery order.
_sorted = dict(sorted(SECTIONS.items()))
SECTIONS.clear()
SECTIONS.update(_sorted)

_members = tuple(SECTIONS.values())
AnyDecoderSpec = (
    Annotated[Union[_members], Field(discriminator="architecture")]  # type: ignore[valid-type]
    if len(_members) > 1
    else _members[0]
)

__all__ = ["SECTIONS", "AnyDecoderSpec", "ArchitectureDefaults", "DecoderSpec"]
