"""Attention blocks used inside decoders."""

from __future__ import annotations

import torch
from torch import nn


class SCSEAttention(nn.Module):
    """Concurrent spatial and channel squeeze-and-excitation (Roy et al., 2018).

    The output is ``x * channel_gate(x) + x * spatial_gate(x)``. The channel
    gate's bottleneck has ``in_channels // reduction`` channels, as in SMP,
    but at least 1: SMP builds a 0-channel convolution below ``reduction``
    input channels, which fails at the first forward pass.
    """

    def __init__(self, in_channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, in_channels // reduction)
        self.cSE = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, in_channels, 1),
            nn.Sigmoid(),
        )
        self.sSE = nn.Sequential(nn.Conv2d(in_channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.cSE(x) + x * self.sSE(x)


class Attention(nn.Module):
    """An optional attention block by name (``None`` or ``"scse"``), kept under ``.attention``."""

    def __init__(self, name: str | None, in_channels: int) -> None:
        super().__init__()
        if name is None:
            self.attention: nn.Module = nn.Identity()
        elif name == "scse":
            self.attention = SCSEAttention(in_channels)
        else:
            raise ValueError(f"unknown attention {name!r}; expected null or 'scse'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x)
