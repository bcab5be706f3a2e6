"""Output activations by name, as a spec's ``activation`` value names them."""

from __future__ import annotations

import torch
from torch import nn


class ArgMax(nn.Module):
    """``torch.argmax`` along ``dim`` (over all elements when ``dim`` is None)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(x, dim=self.dim)


class Activation(nn.Module):
    """The activation named ``name``, kept under ``.activation`` (SMP's layout).

    ``softmax`` and ``logsoftmax`` use torch's implicit-dimension rule (dim 1
    for 4-D inputs, the last dim for 2-D labels), as SMP does.
    """

    def __init__(self, name: str | None) -> None:
        super().__init__()
        if name is None or name == "identity":
            self.activation: nn.Module = nn.Identity()
        elif name == "sigmoid":
            self.activation = nn.Sigmoid()
        elif name == "softmax2d":
            self.activation = nn.Softmax(dim=1)
        elif name == "softmax":
            self.activation = nn.Softmax()
        elif name == "logsoftmax":
            self.activation = nn.LogSoftmax()
        elif name == "tanh":
            self.activation = nn.Tanh()
        elif name == "argmax":
            self.activation = ArgMax()
        elif name == "argmax2d":
            self.activation = ArgMax(dim=1)
        else:
            raise ValueError(f"unknown activation {name!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x)
