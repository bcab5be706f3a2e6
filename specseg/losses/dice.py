"""Dice loss for binary, multiclass and multilabel segmentation."""

from __future__ import annotations

import torch

from ._overlap import OverlapLoss
from .functional import soft_dice_score


class DiceLoss(OverlapLoss):
    """Soft Dice loss ``1 - dice`` (or ``-log dice`` with ``log_loss``), averaged over classes.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        classes: indices of the classes that contribute (all by default);
            not allowed in binary mode.
        log_loss: use ``-log(dice)`` instead of ``1 - dice``.
        from_logits: apply sigmoid (softmax in multiclass mode) to ``y_pred``.
        smooth: additive smoothing of numerator and denominator.
        ignore_index: target value marking pixels that take no part.
        eps: lower clamp of the denominator and of the score under ``log``.
        class_weights: per-class weights of the average (all classes, not
            just ``classes``); not allowed in binary mode.
    """

    def compute_score(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-class Dice coefficient over batch and pixels."""
        return soft_dice_score(output, target, self.smooth, self.eps, dims=(0, 2))
