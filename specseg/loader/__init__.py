"""Reading spec sources (YAML, JSON, dicts) into validated :class:`ModelSpec` objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specseg.loader.document import Document
from specseg.loader.source import load_document


def load_spec(source: Any) -> "ModelSpec":
    """Load and validate a spec from a path, a YAML/JSON string, or a mapping.

    Raises :class:`specseg.SpecError` listing every problem with its location.
    A :class:`ModelSpec` passed in is returned unchanged.
    """
    from specseg.spec.model import ModelSpec
    from specseg.spec.validation import validate_document

    if isinstance(source, ModelSpec):
        return source
    doc, _base = load_document(source)
    return validate_document(doc)


def load_spec_with_base(source: Any) -> tuple["ModelSpec", Path | None]:
    """Like :func:`load_spec`, also returning the directory relative paths resolve against."""
    from specseg.spec.model import ModelSpec
    from specseg.spec.validation import validate_document

    if isinstance(source, ModelSpec):
        return source, None
    doc, base = load_document(source)
    return validate_document(doc), base


if False:  # pragma: no cover - for type checkers only
    from specseg.spec.model import ModelSpec

__all__ = ["Document", "load_document", "load_spec", "load_spec_with_base"]
