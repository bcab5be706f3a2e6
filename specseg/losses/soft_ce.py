"""Cross-entropy with label smoothing and ignored pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_range
from .functional import label_smoothed_nll_loss

REDUCTIONS = ("mean", "sum", "none")


class SoftCrossEntropyLoss(nn.Module):
    """``CrossEntropyLoss`` with label smoothing, for class-index targets.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``/``None``.  Ignored
            pixels count in the ``mean`` denominator, as in SMP.
        smooth_factor: label smoothing in [0, 1]; ``None`` means 0 (SMP 0.6
            raises ``TypeError`` in forward for ``None``).
        ignore_index: target value whose pixels get zero loss.
        dim: class dimension of ``y_pred``.
    """

    def __init__(
        self,
        reduction: str | None = "mean",
        smooth_factor: float | None = None,
        ignore_index: int | None = -100,
        dim: int = 1,
    ) -> None:
        super().__init__()
        reduction = "none" if reduction is None else reduction
        check_choice("SoftCrossEntropyLoss", "reduction", reduction, REDUCTIONS)
        self.reduction = reduction
        self.smooth_factor = (
            None
            if smooth_factor is None
            else check_range("SoftCrossEntropyLoss", "smooth_factor", smooth_factor, low=0.0, high=1.0)
        )
        self.ignore_index = ignore_index
        self.dim = dim

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Return the smoothed cross-entropy of logits ``y_pred`` against labels ``y_true``."""
        log_prob = F.log_softmax(y_pred, dim=self.dim)
        return label_smoothed_nll_loss(
            log_prob,
            y_true,
            epsilon=0.0 if self.smooth_factor is None else self.smooth_factor,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            dim=self.dim,
        )
