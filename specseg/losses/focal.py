"""Focal loss for binary, multiclass and multilabel segmentation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_channel_count, check_choice, check_class_weights, check_mode, check_range
from .constants import BINARY_MODE, MULTICLASS_MODE
from .functional import focal_loss_with_logits

REDUCTIONS = ("mean", "sum", "batchwise_mean", "none")

# SMP 0.6 never forwards FocalLoss.eps to the functional, so normalisation
# always clamps with the functional's default; kept for identical values.
_NORMALIZATION_EPS = 1e-6


class FocalLoss(nn.Module):
    """Sigmoid focal loss; multiclass and multilabel are scored one-vs-rest per class.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        alpha: weight of positives (``1 - alpha`` for negatives), in [0, 1];
            ``None`` disables the balancing.
        gamma: focusing exponent, >= 0.
        ignore_index: target value marking pixels that take no part.
        from_logits: ``y_pred`` are logits; if ``False`` they are
            probabilities, clamped to ``[eps, 1 - eps]`` and mapped back to
            logits (in multiclass mode to ``log p``, which is then used as a
            sigmoid logit, as SMP does).
        eps: probability clamp for ``from_logits=False``, in (0, 0.5).
        reduction: ``"mean"``, ``"sum"``, ``"batchwise_mean"`` (sum over the
            first dimension) or ``"none"``/``None``.
        normalized: divide by the sum of focal terms.
        reduced_threshold: reduced focal loss threshold in (0, 1].
        class_weights: weights of the per-class average (not in binary mode).

    In multiclass and multilabel modes each class loss is reduced first and
    the classes are then averaged, so the result is a scalar for every
    ``reduction``; in binary mode ``"none"`` returns one value per kept pixel.
    """

    def __init__(
        self,
        mode: str,
        alpha: float | None = None,
        gamma: float = 2.0,
        ignore_index: int | None = None,
        from_logits: bool = True,
        eps: float = 1e-7,
        reduction: str | None = "mean",
        normalized: bool = False,
        reduced_threshold: float | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.mode = check_mode("FocalLoss", mode)
        reduction = "none" if reduction is None else reduction
        check_choice("FocalLoss", "reduction", reduction, REDUCTIONS)
        self.alpha = None if alpha is None else check_range("FocalLoss", "alpha", alpha, low=0.0, high=1.0)
        self.gamma = check_range("FocalLoss", "gamma", gamma, low=0.0)
        self.ignore_index = ignore_index
        self.from_logits = bool(from_logits)
        self.eps = check_range("FocalLoss", "eps", eps, low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
        self.reduction = reduction
        self.normalized = bool(normalized)
        self.reduced_threshold = (
            None
            if reduced_threshold is None
            else check_range(
                "FocalLoss", "reduced_threshold", reduced_threshold, low=0.0, high=1.0, low_inclusive=False
            )
        )
        self.register_buffer("class_weights", check_class_weights("FocalLoss", mode, class_weights), persistent=False)

    def _focal(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Focal loss of one flattened set of logits with this module's options."""
        return focal_loss_with_logits(
            logits,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            reduction=self.reduction,
            normalized=self.normalized,
            reduced_threshold=self.reduced_threshold,
            eps=_NORMALIZATION_EPS,
        )

    def _to_logits(self, y_pred: torch.Tensor) -> torch.Tensor:
        """Map probabilities back to the logit space the focal formula works in."""
        if self.from_logits:
            return y_pred
        p = y_pred.clamp(self.eps, 1 - self.eps)
        if self.mode == MULTICLASS_MODE:
            return torch.log(p)  # SMP then feeds log p to the sigmoid focal term; kept for parity
        return torch.log(p / (1 - p))

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Return the focal loss of predictions ``y_pred`` against targets ``y_true``."""
        y_pred = self._to_logits(y_pred)
        if self.mode == BINARY_MODE:
            logits, target = y_pred.reshape(-1), y_true.reshape(-1)
            if self.ignore_index is not None:
                keep = target != self.ignore_index
                logits, target = logits[keep], target[keep]
            return self._focal(logits, target)

        num_classes = y_pred.size(1)
        class_losses = []
        for c in range(num_classes):
            logits = y_pred[:, c, ...]
            labels = y_true if self.mode == MULTICLASS_MODE else y_true[:, c, ...]
            target = (labels == c).long() if self.mode == MULTICLASS_MODE else labels
            if self.ignore_index is not None:
                # Multilabel masks each channel by its own targets (SMP 0.6 indexes a channel
                # with the whole (N, C, ...) mask there and raises IndexError).
                keep = labels != self.ignore_index
                logits, target = logits[keep], target[keep]
            loss = self._focal(logits, target)
            # 'none'/'batchwise_mean' leave a tensor per class: averaging it first equals SMP's
            # mean over the stacked (C, ...) tensor, and stays defined when pixel counts differ.
            class_losses.append(loss if loss.dim() == 0 else loss.mean())
        losses = torch.stack(class_losses)
        if self.class_weights is None:
            return losses.mean()
        check_channel_count("FocalLoss", "class_weights", self.class_weights.numel(), num_classes)
        return (losses * self.class_weights).sum() / self.class_weights.sum()
