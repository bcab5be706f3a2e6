"""UPerNet decoder (Xiao et al., 2018), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.blocks.conv import Conv2dNormReLU
from specseg.blocks.norm import LayerNorm2d
from specseg.spec.common import Norm
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.upernet import UPerNetDecoderSpec
from specseg.spec.model import ModelSpec


def _resize(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Bilinear resize to ``size`` (a shape's ``[2:]``) with ``align_corners=False``, as every UPerNet resize is."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class UPerNetPoolingModule(nn.Module):
    """Pyramid pooling on the deepest features: pool, 1x1 conv each level, resize back, fuse.

    The fusing 3x3 convolution is always batch-normalised whatever ``norm``
    says, as in SMP.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pool_sizes: Sequence[int] = (1, 2, 3, 6),
        norm: Norm = "batchnorm",
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), Conv2dNormReLU(in_channels, out_channels, 1, norm=norm))
            for size in pool_sizes
        )
        self.out_conv = Conv2dNormReLU(
            in_channels + len(pool_sizes) * out_channels, out_channels, 3, padding=1, norm="batchnorm"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        # A loop, not a comprehension: TorchScript iterates a ModuleList only in for statements.
        pyramid = [x]
        for block in self.blocks:
            pyramid.append(_resize(block(x), size))
        return self.out_conv(torch.cat(pyramid, dim=1))


class UPerNetLateralBlock(nn.Module):
    """One top-down FPN step: 1x1 conv-norm-ReLU on the skip, plus the coarser state resized to it."""

    def __init__(self, skip_channels: int, out_channels: int, norm: Norm = "batchnorm") -> None:
        super().__init__()
        self.conv_norm_relu = Conv2dNormReLU(skip_channels, out_channels, 1, norm=norm)

    def forward(self, state: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        skip = self.conv_norm_relu(skip)
        return _resize(state, skip.shape[2:]) + skip


class UPerNetDecoder(Decoder):
    """The UPerNet decoder: pyramid pooling on the deepest map, an FPN, and a fusion at stride 4.

    Only the features from stride 4 down are used (``encoder_channels[2:]``),
    each first layer-normalised over its channels. The pooling module's
    output starts a top-down FPN over the shallower features; every FPN level
    gets a 3x3 conv-norm-ReLU, all levels are resized to the stride-4 map,
    concatenated (shallowest first) and fused by a 3x3 conv-norm-ReLU.
    """

    def __init__(self, encoder_channels: Sequence[int], channels: int = 256, norm: Norm = "batchnorm") -> None:
        super().__init__()
        used = [int(c) for c in encoder_channels[2:]]
        if len(used) < 2:
            raise ValueError(f"UPerNet needs an encoder of depth 3 or more, got {len(encoder_channels) - 1}")
        self.feature_norms = nn.ModuleList(LayerNorm2d(c, eps=1e-6) for c in used)
        self.psp = UPerNetPoolingModule(used[-1], channels, norm=norm)
        skips = used[:-1][::-1]  # deepest skip first: the FPN runs top-down
        self.fpn_lateral_blocks = nn.ModuleList(UPerNetLateralBlock(c, channels, norm=norm) for c in skips)
        self.fpn_conv_blocks = nn.ModuleList(
            Conv2dNormReLU(channels, channels, 3, padding=1, norm=norm) for _ in skips
        )
        self.fusion_block = Conv2dNormReLU((len(skips) + 1) * channels, channels, 3, padding=1, norm=norm)
        self.out_channels = int(channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # Indexed loops over the ModuleLists: TorchScript cannot zip a ModuleList with a list.
        used = []
        for i, norm in enumerate(self.feature_norms):
            used.append(norm(features[2 + i]))
        levels = [self.psp(used[-1])]
        # Top-down: lateral block i reads the (i + 2)-th deepest feature.
        for i, block in enumerate(self.fpn_lateral_blocks):
            levels.append(block(levels[-1], used[len(used) - 2 - i]))
        # The 3x3 convs are applied after the whole top-down pass, so each lateral
        # step sums with the previous level before its conv (SMP's order).
        del used  # the normalised features are not kept through the rest (memory, and time at 512x512)
        convolved = [levels[0]]
        for i, conv in enumerate(self.fpn_conv_blocks):
            convolved.append(conv(levels[i + 1]))
        levels = convolved
        del convolved
        size = levels[-1].shape[2:]
        stacked = torch.cat([_resize(level, size) for level in levels[::-1]], dim=1)
        del levels
        return self.fusion_block(stacked)


@register_decoder(UPerNetDecoderSpec)
def build_upernet(section: UPerNetDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> UPerNetDecoder:
    """The UPerNet decoder of a section."""
    return UPerNetDecoder(encoder_channels=encoder.out_channels, channels=section.channels, norm=section.norm)
