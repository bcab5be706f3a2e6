"""LinkNet decoder (Chaurasia and Culurciello, 2017), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.blocks.conv import Conv2dNormReLU
from specseg.blocks.norm import make_norm
from specseg.spec.common import Norm
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.linknet import LINKNET_PREFINAL_CHANNELS, LinknetDecoderSpec
from specseg.spec.model import ModelSpec


class TransposedConvNormReLU(nn.Sequential):
    """x2 upsampling: ``ConvTranspose2d(4, stride 2, padding 1) -> norm -> ReLU`` (layout 0, 1, 2).

    Unlike :class:`Conv2dNormReLU`, the transposed convolution always has a
    bias and the ReLU is kept even after InPlaceABN, as in SMP.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: Norm = "batchnorm") -> None:
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class LinknetDecoderBlock(nn.Module):
    """1x1 to a quarter of the channels, x2 transposed convolution, 1x1 to ``out_channels``, plus the skip."""

    def __init__(self, in_channels: int, out_channels: int, norm: Norm = "batchnorm") -> None:
        super().__init__()
        bottleneck = in_channels // 4
        self.block = nn.Sequential(
            Conv2dNormReLU(in_channels, bottleneck, 1, norm=norm),
            TransposedConvNormReLU(bottleneck, bottleneck, norm=norm),
            Conv2dNormReLU(bottleneck, out_channels, 1, norm=norm),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.block(x)
        # An empty skip (transformer-style encoders have no stride-2 map) adds nothing.
        if skip is not None and skip.shape[1] != 0:
            x = x + skip
        return x


class LinknetDecoder(Decoder):
    """The LinkNet decoder: one block per encoder stage, deepest first.

    Each block outputs the width of the next (shallower) skip, and the last
    one ``prefinal_channels``. Where a skip is empty (the stride-2 map of a
    transformer-style encoder) the block keeps its input width instead.
    ``encoder_channels`` has depth + 1 entries, the first being the input.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        prefinal_channels: int = 32,
        norm: Norm = "batchnorm",
    ) -> None:
        super().__init__()
        widths = list(encoder_channels[1:])[::-1] + [prefinal_channels]
        for i in range(1, len(widths) - 1):
            if widths[i] == 0:
                widths[i] = widths[i - 1]
        self.blocks = nn.ModuleList(
            LinknetDecoderBlock(widths[i], widths[i + 1], norm=norm) for i in range(len(widths) - 1)
        )
        self.out_channels = int(prefinal_channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        levels = features[1:][::-1]  # deepest first; the input itself is never a skip
        x = levels[0]
        skips = levels[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


@register_decoder(LinknetDecoderSpec)
def build_linknet(section: LinknetDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> LinknetDecoder:
    """The LinkNet decoder of a section (its widths all follow from the encoder)."""
    return LinknetDecoder(
        encoder_channels=encoder.out_channels,
        prefinal_channels=LINKNET_PREFINAL_CHANNELS,
        norm=section.norm,
    )
