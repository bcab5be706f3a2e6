"""The segmentation head: decoder features to a ``classes``-channel mask."""

from __future__ import annotations

from torch import nn

from specseg.blocks.activation import Activation


class SegmentationHead(nn.Sequential):
    """``Conv2d -> bilinear upsampling (when > 1) -> activation``, SMP's layout (0, 1, 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: str | None = None,
        upsampling: int = 1,
    ) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, padding=kernel_size // 2)
        upsample: nn.Module = (
            nn.Upsample(mode="bilinear", scale_factor=upsampling, align_corners=True)
            if upsampling > 1
            else nn.Identity()
        )
        super().__init__(conv, upsample, Activation(activation))
