"""The classification head on the deepest encoder features (``aux_params``)."""

from __future__ import annotations

from torch import nn

from specseg.blocks.activation import Activation


class ClassificationHead(nn.Sequential):
    """``global pool -> flatten -> dropout -> linear -> activation``, SMP's layout (0..4)."""

    def __init__(
        self,
        in_channels: int,
        classes: int,
        pooling: str = "avg",
        dropout: float | None = 0.2,
        activation: str | None = None,
    ) -> None:
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        pool = nn.AdaptiveAvgPool2d(1) if pooling == "avg" else nn.AdaptiveMaxPool2d(1)
        drop: nn.Module = nn.Dropout(p=dropout) if dropout else nn.Identity()
        super().__init__(pool, nn.Flatten(), drop, nn.Linear(in_channels, classes), Activation(activation))
