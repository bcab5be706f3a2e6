"""DeepLabV3+ decoder (Chen et al., 2018), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.decoders.deeplabv3 import ASPP, SeparableConv2d
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.deeplabv3plus import DeepLabV3PlusDecoderSpec
from specseg.spec.model import ModelSpec

#: Channels of the stride-4 skip projection, fixed by the paper.
HIGHRES_CHANNELS = 48


class DeepLabV3PlusDecoder(Decoder):
    """ASPP on the deepest features, upsampled to stride 4 and fused with the stride-4 skip.

    Keys: ``aspp`` (ASPP, separable 3x3 conv, BN, ReLU), ``block1`` (1x1
    projection of the skip to 48 channels) and ``block2`` (separable 3x3
    fusion conv, BN, ReLU). ``output_stride`` is the encoder's effective
    output stride (8 or 16), from which the ASPP output is upsampled to stride 4.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 16,
        out_channels: int = 256,
        atrous_rates: Sequence[int] = (12, 24, 36),
        aspp_separable: bool = True,
        aspp_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        depth = len(encoder_channels) - 1
        if depth < 3:
            raise ValueError(f"DeepLabV3+ needs an encoder of depth 3, 4 or 5, got {depth}")
        if output_stride not in (8, 16):
            raise ValueError(f"DeepLabV3+ needs an encoder output stride of 8 or 16, got {output_stride}")
        self.aspp = nn.Sequential(
            ASPP(encoder_channels[-1], out_channels, atrous_rates, separable=aspp_separable, dropout=aspp_dropout),
            SeparableConv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        # A fixed factor (not "resize to the skip's size") is what makes the
        # input size have to be a multiple of the output stride.
        self.up = nn.Upsample(mode="bilinear", scale_factor=output_stride // 4, align_corners=True)
        self.block1 = nn.Sequential(
            nn.Conv2d(encoder_channels[2], HIGHRES_CHANNELS, kernel_size=1, bias=False),
            nn.BatchNorm2d(HIGHRES_CHANNELS),
            nn.ReLU(),
        )
        self.block2 = nn.Sequential(
            SeparableConv2d(HIGHRES_CHANNELS + out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.out_channels = int(out_channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        context = self.up(self.aspp(features[-1]))
        skip = self.block1(features[2])
        x = torch.cat([context, skip], dim=1)
        del context, skip  # freed before block2 runs, so that its output can take their memory
        return self.block2(x)


@register_decoder(DeepLabV3PlusDecoderSpec)
def build_deeplabv3plus(section: DeepLabV3PlusDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> DeepLabV3PlusDecoder:
    """The DeepLabV3+ decoder of a section."""
    return DeepLabV3PlusDecoder(
        encoder_channels=encoder.out_channels,
        output_stride=int(encoder.output_stride),
        out_channels=section.channels,
        atrous_rates=tuple(section.atrous_rates),
        aspp_separable=section.aspp_separable,
        aspp_dropout=section.aspp_dropout,
    )
