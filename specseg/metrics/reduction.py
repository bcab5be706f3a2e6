"""How a metric formula is aggregated over images and classes, and what 0/0 becomes."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

Tensor = torch.Tensor
ZeroDivision = str | float

REDUCTIONS = ("micro", "macro", "weighted", "micro-imagewise", "macro-imagewise", "weighted-imagewise", "none")


def handle_zero_division(score: Tensor, zero_division: ZeroDivision) -> Tensor:
    """Replace NaN (0/0) entries by ``zero_division``; ``"warn"`` means 0 plus a warning."""
    nans = torch.isnan(score)
    if zero_division == "warn":
        if torch.any(nans):
            warnings.warn("Zero division in metric calculation!", stacklevel=3)
        zero_division = 0.0
    return torch.where(nans, torch.tensor(zero_division, dtype=score.dtype, device=score.device), score)


def _check_options(reduction: str | None, class_weights: Sequence[float] | None, zero_division: ZeroDivision) -> str:
    """Validate the aggregation options and return the normalised reduction name."""
    reduction = "none" if reduction is None else reduction
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)} or None, got {reduction!r}")
    if reduction.startswith("weighted") and class_weights is None:
        raise ValueError(f"reduction {reduction!r} needs class_weights")
    if isinstance(zero_division, bool) or not (zero_division == "warn" or isinstance(zero_division, (int, float))):
        raise ValueError(f"zero_division must be 'warn' or a number, got {zero_division!r}")
    return reduction


def _normalised_weights(class_weights: Sequence[float] | None, device: torch.device) -> Tensor:
    """Class weights scaled to sum to 1 (a scalar 1 when there are none)."""
    if class_weights is None:
        return torch.tensor(1.0, device=device)
    weights = torch.as_tensor(class_weights, device=device)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"class_weights must be non-negative with a positive sum, got {weights.tolist()}")
    return weights / weights.sum()


def compute_metric(
    formula: Callable[..., Tensor],
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
    **formula_kwargs: float,
) -> Tensor:
    """Evaluate ``formula`` on ``(N, C)`` counts and aggregate it as ``reduction`` says.

    The semantics follow SMP 0.6 exactly, including two quirks: ``micro``
    leaves a 0/0 as NaN, and ``macro``/``*-imagewise`` multiply by the
    normalised class weights and then *average* over classes, so explicit
    weights there shrink the score by ``1/C``.
    """
    reduction = _check_options(reduction, class_weights, zero_division)
    weights = _normalised_weights(class_weights, tp.device)

    if reduction == "micro":
        return formula(tp.sum(), fp.sum(), fn.sum(), tn.sum(), **formula_kwargs)
    if reduction in ("macro", "weighted"):
        score = formula(tp.sum(0), fp.sum(0), fn.sum(0), tn.sum(0), **formula_kwargs)
        score = handle_zero_division(score, zero_division) * weights
        return score.mean() if reduction == "macro" else score.sum()
    if reduction == "micro-imagewise":
        score = formula(tp.sum(1), fp.sum(1), fn.sum(1), tn.sum(1), **formula_kwargs)
        return handle_zero_division(score, zero_division).mean()
    score = handle_zero_division(formula(tp, fp, fn, tn, **formula_kwargs), zero_division)
    if reduction == "none":
        return score
    return (score.mean(0) * weights).mean()  # macro-imagewise, weighted-imagewise
