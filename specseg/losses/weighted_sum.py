"""A loss that is the weighted sum of other losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class WeightedSumLoss(nn.Module):
    """``sum_i weight_i * loss_i(y_pred, y_true)`` over ``(weight, loss)`` terms.

    Every term receives the same prediction and target, so the terms must
    agree on the target layout (e.g. Dice in multiclass mode plus soft
    cross-entropy both take ``(N, H, W)`` class indices).
    """

    def __init__(self, terms: Sequence[tuple[float, nn.Module]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("WeightedSumLoss: needs at least one (weight, loss) term")
        self.weights = [float(w) for w, _ in terms]
        self.losses = nn.ModuleList(loss for _, loss in terms)

    def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of every term's loss."""
        total = self.weights[0] * self.losses[0](y_pred, y_true)
        for weight, loss in zip(self.weights[1:], self.losses[1:]):
            total = total + weight * loss(y_pred, y_true)
        return total

    def extra_repr(self) -> str:
        """Show the weights next to the module list when printed."""
        return f"weights={self.weights}"
