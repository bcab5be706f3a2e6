"""Lovasz hinge (binary, multilabel) and Lovasz-softmax (multiclass) losses.

Both optimise the Lovasz extension of the Jaccard loss (Berman et al.,
2018): sort the per-pixel errors and weight them by the Jaccard gain of
each step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_mode
from .constants import MULTICLASS_MODE


def lovasz_grad(gt_sorted: torch.Tensor, dtype: torch.dtype = torch.float) -> torch.Tensor:
    """Gradient of the Lovasz extension for ground truth sorted by decreasing error."""
    gt = gt_sorted.to(dtype)
    gts = gt.sum()
    intersection = gts - gt.cumsum(0)
    union = gts + (1 - gt).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_hinge_flat(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz hinge of flat logits ``[P]`` against 0/1 labels ``[P]``."""
    if labels.numel() == 0:
        return logits.sum() * 0.0  # only ignored pixels: zero loss, zero gradient
    signs = 2.0 * labels.to(logits.dtype) - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    return torch.dot(F.relu(errors_sorted), lovasz_grad(labels[perm], errors.dtype))


def lovasz_softmax_flat(probas: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax of probabilities ``[P, C]`` against labels ``[P]``, over present classes."""
    losses = []
    for c in range(probas.size(1)):
        fg = (labels == c).to(probas.dtype)
        if fg.sum() == 0:
            continue  # only classes present in the target are averaged
        errors = (fg - probas[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm], errors.dtype)))
    if not losses:
        return probas.sum() * 0.0  # nothing to score (all pixels ignored)
    return torch.stack(losses).mean()


class LovaszLoss(nn.Module):
    """Lovasz loss; hinge on logits for binary/multilabel, softmax for multiclass.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.  Multilabel
            pools every channel into one binary problem (no per-class mean).
        per_image: average per-image losses instead of one loss for the batch.
        ignore_index: target value marking pixels that take no part.
        from_logits: must be ``True``; the loss always works on logits (SMP
            0.6 accepts ``False`` but silently ignores it).
    """

    def __init__(
        self,
        mode: str,
        per_image: bool = False,
        ignore_index: int | None = None,
        from_logits: bool = True,
    ) -> None:
        super().__init__()
        self.mode = check_mode("LovaszLoss", mode)
        if not from_logits:
            raise ValueError(
                "LovaszLoss: from_logits=False is not supported; the loss needs logits "
                "(SMP 0.6 ignores the flag and treats the input as logits anyway)"
            )
        self.per_image = bool(per_image)
        self.ignore_index = ignore_index
        self.from_logits = True

    def _one(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Loss of one group of images (the batch, or one image when ``per_image``)."""
        labels = y_true.reshape(-1)
        if self.mode == MULTICLASS_MODE:
            values = torch.movedim(y_pred, 1, -1).reshape(-1, y_pred.size(1))
        else:
            values = y_pred.reshape(-1)
        if self.ignore_index is not None:
            keep = labels != self.ignore_index
            values, labels = values[keep], labels[keep]
        if self.mode == MULTICLASS_MODE:
            return lovasz_softmax_flat(values, labels)
        return lovasz_hinge_flat(values, labels)

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Return the scalar Lovasz loss of ``y_pred`` against ``y_true``."""
        if self.mode == MULTICLASS_MODE:
            if y_pred.size(1) < 2:
                raise ValueError("LovaszLoss: multiclass mode needs at least 2 prediction channels")
            y_pred = y_pred.softmax(dim=1)
        if not self.per_image:
            return self._one(y_pred, y_true)
        # Slicing keeps the batch dimension, so each image is handled like a batch of one.
        return torch.stack([self._one(y_pred[i : i + 1], y_true[i : i + 1]) for i in range(y_pred.size(0))]).mean()
