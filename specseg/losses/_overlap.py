"""Shared machinery of the region-overlap losses (Dice, Jaccard, Tversky).

All three turn predictions and targets into per-class soft masks of shape
``(N, C, P)``, score each class over the whole batch, and average the
per-class losses.  Subclasses only supply the score (and, for Tversky, the
final aggregation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_channel_count,
    check_class_indices,
    check_class_weights,
    check_classes,
    check_mode,
    check_range,
)
from .constants import BINARY_MODE, MULTICLASS_MODE

# Scores are computed over the batch and the pixels, giving one value per class.
_SCORE_DIMS = (0, 2)


class OverlapLoss(nn.Module):
    """Base class: ``1 - score`` (or ``-log score``) averaged over classes.

    Classes without any target pixel in the batch contribute zero loss but
    still count in the average (their score would be undefined).
    """

    def __init__(
        self,
        mode: str,
        classes: Sequence[int] | None = None,
        log_loss: bool = False,
        from_logits: bool = True,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        eps: float = 1e-7,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = check_mode(name, mode)
        self.classes = check_classes(name, mode, classes)
        self.log_loss = bool(log_loss)
        self.from_logits = bool(from_logits)
        self.smooth = check_range(name, "smooth", smooth, low=0.0)
        self.ignore_index = ignore_index
        self.eps = check_range(name, "eps", eps, low=0.0, low_inclusive=False)
        # Not persistent: the weights are configuration, not learned state.
        self.register_buffer("class_weights", check_class_weights(name, mode, class_weights), persistent=False)

    def compute_score(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-class score of ``(N, C, P)`` soft masks, shape ``(C,)``."""
        raise NotImplementedError

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Return the scalar loss of predictions ``y_pred`` against targets ``y_true``."""
        if y_true.size(0) != y_pred.size(0):
            raise ValueError(f"batch sizes differ: prediction {y_pred.size(0)}, target {y_true.size(0)}")
        probs = self._to_probabilities(y_pred)
        probs, target = self._flatten(probs, y_true)
        scores = self.compute_score(probs, target.type_as(probs))
        if self.log_loss:
            loss = -torch.log(scores.clamp_min(self.eps))
        else:
            loss = 1.0 - scores
        present = target.sum(_SCORE_DIMS) > 0
        loss = loss * present.to(loss.dtype)
        return self._reduce_classes(loss)

    def _to_probabilities(self, y_pred: torch.Tensor) -> torch.Tensor:
        """Activate logits; log-then-exp keeps gradients alive at saturated logits."""
        if not self.from_logits:
            return y_pred
        if self.mode == MULTICLASS_MODE:
            return y_pred.log_softmax(dim=1).exp()
        return F.logsigmoid(y_pred).exp()

    def _flatten(self, probs: torch.Tensor, y_true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reshape to ``(N, C, P)`` prediction and target, zeroing ignored pixels in both."""
        bs = y_true.size(0)
        if self.mode == BINARY_MODE:
            return self._mask_same_shape(probs.reshape(bs, 1, -1), y_true.reshape(bs, 1, -1))
        num_classes = probs.size(1)
        probs = probs.reshape(bs, num_classes, -1)
        if self.mode != MULTICLASS_MODE:
            return self._mask_same_shape(probs, y_true.reshape(bs, num_classes, -1))
        labels = y_true.reshape(bs, -1)
        if self.ignore_index is None:
            return probs, F.one_hot(labels.long(), num_classes).permute(0, 2, 1)
        keep = (labels != self.ignore_index).unsqueeze(1)
        # Ignored pixels get label 0 only to make one_hot valid; the mask then zeroes them.
        one_hot = F.one_hot((labels * keep.squeeze(1)).long(), num_classes).permute(0, 2, 1)
        return probs * keep, one_hot * keep

    def _mask_same_shape(self, probs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero prediction and target where the target equals ``ignore_index``."""
        if self.ignore_index is None:
            return probs, target
        keep = target != self.ignore_index
        return probs * keep, target * keep

    def _reduce_classes(self, loss: torch.Tensor) -> torch.Tensor:
        """Select ``classes`` and take the (weighted) mean over them."""
        name = type(self).__name__
        weights = self.class_weights
        if weights is not None:
            check_channel_count(name, "class_weights", weights.numel(), loss.numel())
        if self.classes is not None:
            check_class_indices(name, self.classes, loss.numel())
            index = list(self.classes)
            loss = loss[index]
            weights = weights[index] if weights is not None else None
        if weights is None:
            return loss.mean()
        return (loss * weights).sum() / weights.sum()
