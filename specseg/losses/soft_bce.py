"""Binary cross-entropy on logits with label smoothing and ignored pixels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_range

REDUCTIONS = ("mean", "sum", "none")


def _optional_tensor(value: torch.Tensor | Sequence[float] | None) -> torch.Tensor | None:
    """Accept a tensor or a plain sequence of numbers for a weight option."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    return torch.as_tensor(value, dtype=torch.float)


class SoftBCEWithLogitsLoss(nn.Module):
    """``BCEWithLogitsLoss`` with ``ignore_index`` and target smoothing.

    Args:
        weight: rescaling weight broadcast against the element-wise loss
            (shape ``(C, 1, 1)`` weighs channels of ``(N, C, H, W)``).
        ignore_index: target value whose pixels get zero loss.  They still
            count in the ``mean`` denominator, as in SMP.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``/``None``.
        smooth_factor: target smoothing in [0, 1]: ``t -> t(1-s) + (1-t)s``.
        pos_weight: weight of positive examples, broadcast like ``weight``.
    """

    def __init__(
        self,
        weight: torch.Tensor | Sequence[float] | None = None,
        ignore_index: int | None = -100,
        reduction: str | None = "mean",
        smooth_factor: float | None = None,
        pos_weight: torch.Tensor | Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        reduction = "none" if reduction is None else reduction
        check_choice("SoftBCEWithLogitsLoss", "reduction", reduction, REDUCTIONS)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.smooth_factor = (
            None
            if smooth_factor is None
            else check_range("SoftBCEWithLogitsLoss", "smooth_factor", smooth_factor, low=0.0, high=1.0)
        )
        self.register_buffer("weight", _optional_tensor(weight))
        self.register_buffer("pos_weight", _optional_tensor(pos_weight))

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Return the BCE of logits ``y_pred`` against (soft) targets ``y_true`` of the same shape."""
        target = y_true.to(y_pred.dtype)
        if self.smooth_factor is not None:
            target = (1 - target) * self.smooth_factor + target * (1 - self.smooth_factor)
        loss = F.binary_cross_entropy_with_logits(
            y_pred, target, self.weight, pos_weight=self.pos_weight, reduction="none"
        )
        if self.ignore_index is not None:
            loss = loss * (y_true != self.ignore_index).to(loss.dtype)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss
