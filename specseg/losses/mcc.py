"""Matthews correlation coefficient loss for binary segmentation."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_range


class MCCLoss(nn.Module):
    """Loss ``1 - MCC`` computed from soft confusion counts over the whole batch.

    Binary only.  ``y_pred`` must already be probabilities (there is no
    ``from_logits`` option): apply a sigmoid first.  ``eps`` (> 0) is added
    to each of the four counts so a batch with a single class stays finite.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = check_range("MCCLoss", "eps", eps, low=0.0, low_inclusive=False)

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Return ``1 - MCC`` of probabilities ``y_pred`` against 0/1 targets ``y_true``."""
        bs = y_true.shape[0]
        p = y_pred.reshape(bs, 1, -1)
        t = y_true.reshape(bs, 1, -1)
        tp = (p * t).sum() + self.eps
        tn = ((1 - p) * (1 - t)).sum() + self.eps
        fp = (p * (1 - t)).sum() + self.eps
        fn = ((1 - p) * t).sum() + self.eps
        numerator = tp * tn - fp * fn
        denominator = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return 1.0 - numerator / denominator
