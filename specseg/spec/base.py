"""The base class every spec section derives from.

Strict types and forbidden extra keys are the two rules that make a spec
file trustworthy: ``classes: "5"`` is an error rather than a coercion, and a
typo'd key is reported instead of silently ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """Base for all spec sections: strict, closed, immutable, finite numbers only."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
        validate_default=False,
        use_attribute_docstrings=False,
    )
