"""The loss of a multi-task model: one loss per head, summed."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class MultiTaskLoss(nn.Module):
    """``loss(outputs, targets) -> (total, {head: term})``.

    ``outputs`` is the model's output dict, ``targets`` a dict with one
    target per head that has a loss (other entries are ignored). Each head's
    term is its loss (a weighted sum when the head has several terms); the
    total is the sum of the heads' terms.
    """

    def __init__(self, losses: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.losses = nn.ModuleDict(losses)

    def forward(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total and the per-head terms."""
        missing = [n for n in self.losses if n not in outputs]
        if missing:
            raise KeyError(f"the outputs have no {', '.join(map(repr, missing))} (outputs: {', '.join(outputs)}); pass the model's output dict")
        missing = [n for n in self.losses if n not in targets]
        if missing:
            raise KeyError(f"no target for head {', '.join(map(repr, missing))}; targets must have one entry per head with a loss: {', '.join(self.losses)}")
        terms = {name: loss(outputs[name], targets[name]) for name, loss in self.losses.items()}
        values = list(terms.values())
        total = values[0]
        for value in values[1:]:
            total = total + value
        return total, terms
