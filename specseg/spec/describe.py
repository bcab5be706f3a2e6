"""Summaries of a validated spec for ``specseg build`` output (torch-free)."""

from __future__ import annotations

from typing import Any

from specseg.spec.loss import iter_terms
from specseg.spec.multitask import MultiTaskSpec
from specseg.spec.versions import AnySpec


def describe_loss(spec: AnySpec) -> list[dict[str, Any]] | None:
    """The loss terms of a spec as ``[{"name", "weight", "mode"}]`` for summaries (with ``"head"`` in version 2)."""
    if spec.loss is None:
        return None
    # Only some loss terms have a mode (dice, focal, ...); the others report None.
    if isinstance(spec, MultiTaskSpec):
        return [
            {"head": head, "name": term.name, "weight": term.weight, "mode": getattr(term, "mode", None)}
            for head, section in spec.loss.items()
            for _, term in iter_terms(section)
        ]
    return [{"name": term.name, "weight": term.weight, "mode": getattr(term, "mode", None)} for _, term in iter_terms(spec.loss)]
