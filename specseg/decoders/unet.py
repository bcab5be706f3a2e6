"""U-Net decoder (Ronneberger et al., 2015), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.blocks.attention import Attention
from specseg.blocks.conv import Conv2dNormReLU
from specseg.spec.common import Norm
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.encoders.families import VGG, family_of
from specseg.spec.decoders.unet import UnetDecoderSpec
from specseg.spec.model import ModelSpec


class UnetDecoderBlock(nn.Module):
    """Resize to the skip's size, concatenate the skip, then two 3x3 conv-norm-ReLU."""

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        norm: Norm = "batchnorm",
        attention: str | None = None,
        interpolation: str = "nearest",
    ) -> None:
        super().__init__()
        self.interpolation = interpolation
        self.conv1 = Conv2dNormReLU(in_channels + skip_channels, out_channels, 3, padding=1, norm=norm)
        self.attention1 = Attention(attention, in_channels + skip_channels)
        self.conv2 = Conv2dNormReLU(out_channels, out_channels, 3, padding=1, norm=norm)
        self.attention2 = Attention(attention, out_channels)

    def forward(self, x: torch.Tensor, size: tuple[int, int], skip: torch.Tensor | None = None) -> torch.Tensor:
        # Resizing to the skip's exact size (not a fixed x2) is what lets the
        # Unet accept any input height and width.
        x = F.interpolate(x, size=size, mode=self.interpolation)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
            x = self.attention1(x)
        # One call per line: each map is freed as soon as the next exists, not kept through conv2.
        x = self.conv1(x)
        x = self.conv2(x)
        return self.attention2(x)


class UnetCenterBlock(nn.Sequential):
    """Two conv-norm-ReLU on the deepest features (SMP adds it for VGG encoders)."""

    def __init__(self, channels: int, norm: Norm = "batchnorm") -> None:
        super().__init__(
            Conv2dNormReLU(channels, channels, 3, padding=1, norm=norm),
            Conv2dNormReLU(channels, channels, 3, padding=1, norm=norm),
        )


class UnetDecoder(Decoder):
    """The U-Net decoder: one block per encoder stage, deepest first.

    ``encoder_channels`` has depth + 1 entries, the first being the input
    (which is never used as a skip); ``decoder_channels`` has depth entries.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        norm: Norm = "batchnorm",
        attention: str | None = None,
        interpolation: str = "nearest",
        center: bool = False,
    ) -> None:
        super().__init__()
        if len(decoder_channels) != len(encoder_channels) - 1:
            raise ValueError(
                f"{len(decoder_channels)} decoder channels for an encoder of depth {len(encoder_channels) - 1}"
            )
        deepest_first = list(encoder_channels[1:])[::-1]
        head = deepest_first[0]
        in_channels = [head] + list(decoder_channels[:-1])
        skip_channels = deepest_first[1:] + [0]
        self.center: nn.Module = UnetCenterBlock(head, norm) if center else nn.Identity()
        self.blocks = nn.ModuleList(
            UnetDecoderBlock(i, s, o, norm=norm, attention=attention, interpolation=interpolation)
            for i, s, o in zip(in_channels, skip_channels, decoder_channels)
        )
        self.out_channels = int(decoder_channels[-1])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # (h, w) pairs, not tuple(f.shape[2:]): TorchScript needs tuples of a known length.
        sizes = [(f.shape[2], f.shape[3]) for f in features][::-1]
        skips = features[1:][::-1]
        x = self.center(skips[0])
        for i, block in enumerate(self.blocks):
            skip = skips[i + 1] if i + 1 < len(skips) else None
            x = block(x, sizes[i + 1], skip)
        return x


@register_decoder(UnetDecoderSpec)
def build_unet(section: UnetDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> UnetDecoder:
    """The U-Net decoder of a section; SMP adds the center block for VGG encoders."""
    return UnetDecoder(
        encoder_channels=encoder.out_channels,
        decoder_channels=section.channels,
        norm=section.norm,
        attention=section.attention,
        interpolation=section.interpolation,
        center=family_of(spec.encoder.name) == VGG,
    )
