"""Reading spec sources (YAML, JSON, dicts) into validated :class:`ModelSpec` objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from specseg.loader.compose import compose
from specseg.loader.document import Document
from specseg.loader.source import load_document

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

def load_spec(source: Any, overrides: Sequence[str] = ()) -> "ModelSpec":
    """Load and validate a spec from a path, a YAML/JSON string, or a mapping.

    ``extends`` bases are merged and ``overrides`` (``"head.classes=5"``)
    applied first. Raises :class:`specseg.SpecError` listing every problem
    with its location. A :class:`ModelSpec` passed in is returned unchanged.
    """
    return load_spec_with_base(source, overrides)[0]


def load_spec_with_base(source: Any, overrides: Sequence[str] = ()) -> tuple["ModelSpec", Path | None]:
    """Like :func:`load_spec`, also returning the directory relative paths resolve against."""
    from specseg.spec.validation import validate_document
    from specseg.spec.versions import is_spec

    if is_spec(source) and not overrides:
        return source, None
    if is_spec(source):
        source = source.model_dump(mode="json")
    doc, base = compose(source, overrides)
    return validate_document(doc), base

__all__ = ["Document", "compose", "load_document", "load_spec", "load_spec_with_base"]
