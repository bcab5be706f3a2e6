"""Jaccard (IoU) loss for binary, multiclass and multilabel segmentation."""

from __future__ import annotations

import torch

from ._overlap import OverlapLoss
from .functional import soft_jaccard_score


class JaccardLoss(OverlapLoss):
    """Soft Jaccard loss ``1 - IoU`` (or ``-log IoU`` with ``log_loss``), averaged over classes.

    Takes the same options as :class:`~specseg.losses.DiceLoss`: ``mode``,
    ``classes``, ``log_loss``, ``from_logits``, ``smooth``, ``ignore_index``,
    ``eps`` and ``class_weights``.
    """

    def compute_score(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-class IoU over batch and pixels."""
        return soft_jaccard_score(output, target, self.smooth, self.eps, dims=(0, 2))
