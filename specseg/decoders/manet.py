"""MA-Net decoder (Fan et al., 2020), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.blocks.conv import Conv2dNormReLU
from specseg.spec.common import Norm
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.manet import MAnetDecoderSpec
from specseg.spec.model import ModelSpec


class PositionAttentionBlock(nn.Module):
    """Position-wise Attention Block (PAB): self-attention over all positions of a map.

    Query and key are 1x1 projections to ``pab_channels``; the value is a
    3x3 convolution. As in SMP 0.6, the softmax runs over the whole
    (positions x positions) attention map of each sample, not per query,
    and the attended values ``(N, H*W, C)`` are reshaped (not transposed)
    back to ``(N, C, H, W)``; both are kept for output parity.
    """

    def __init__(self, in_channels: int, pab_channels: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.pab_channels = pab_channels
        self.top_conv = nn.Conv2d(in_channels, pab_channels, kernel_size=1)
        self.center_conv = nn.Conv2d(in_channels, pab_channels, kernel_size=1)
        self.bottom_conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.map_softmax = nn.Softmax(dim=1)
        self.out_conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        keys = self.top_conv(x).flatten(2)  # (N, P, HW)
        queries = self.center_conv(x).flatten(2).transpose(1, 2)  # (N, HW, P)
        values = self.bottom_conv(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        weights = self.map_softmax(torch.matmul(queries, keys).view(n, -1)).view(n, h * w, h * w)
        attended = torch.matmul(weights, values).reshape(n, self.in_channels, h, w)
        return self.out_conv(x + attended)


def _squeeze_excitation(channels: int, reduced: int) -> nn.Sequential:
    """Channel gate: global average pool, 1x1 bottleneck, sigmoid (SMP's SE layout 0..4)."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(channels, reduced, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(reduced, channels, 1),
        nn.Sigmoid(),
    )


class MultiScaleFusionAttentionBlock(nn.Module):
    """Multi-scale Fusion Attention Block (MFAB), a decoder stage with a skip.

    The decoder map is projected to the skip's width (3x3 then 1x1
    conv-norm-ReLU) and upsampled x2; the sum of the two squeeze-excitation
    gates (of the upsampled map and of the skip) weights the upsampled map,
    which is concatenated with the skip and passed through two 3x3
    conv-norm-ReLU.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        norm: Norm = "batchnorm",
        interpolation: str = "nearest",
        reduction: int = 16,
    ) -> None:
        super().__init__()
        self.interpolation = interpolation
        self.hl_conv = nn.Sequential(
            Conv2dNormReLU(in_channels, in_channels, 3, padding=1, norm=norm),
            Conv2dNormReLU(in_channels, skip_channels, 1, norm=norm),
        )
        reduced = max(1, skip_channels // reduction)
        self.SE_ll = _squeeze_excitation(skip_channels, reduced)
        self.SE_hl = _squeeze_excitation(skip_channels, reduced)
        self.conv1 = Conv2dNormReLU(2 * skip_channels, out_channels, 3, padding=1, norm=norm)
        self.conv2 = Conv2dNormReLU(out_channels, out_channels, 3, padding=1, norm=norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        # Optional only so that every decoder stage has one signature (TorchScript types the call in
        # MAnetDecoder.forward once); an MFAB is built only for stages that have a skip.
        if skip is None:
            raise ValueError("a multi-scale fusion attention block needs its encoder skip")
        # One step per line: each intermediate map is freed as soon as the next exists (a map kept
        # alive through the following convolution costs memory and, at 512x512, time).
        x = F.interpolate(self.hl_conv(x), scale_factor=2.0, mode=self.interpolation)
        gate = self.SE_hl(x) + self.SE_ll(skip)
        x = x * gate
        x = torch.cat([x, skip], dim=1)
        x = self.conv1(x)
        return self.conv2(x)


class MAnetDecoderBlock(nn.Module):
    """A decoder stage without attention: upsample x2, concatenate the skip if any, two 3x3 conv-norm-ReLU."""

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        norm: Norm = "batchnorm",
        interpolation: str = "nearest",
    ) -> None:
        super().__init__()
        self.interpolation = interpolation
        self.conv1 = Conv2dNormReLU(in_channels + skip_channels, out_channels, 3, padding=1, norm=norm)
        self.conv2 = Conv2dNormReLU(out_channels, out_channels, 3, padding=1, norm=norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode=self.interpolation)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        x = self.conv1(x)  # not nested: the input is freed before conv2 runs
        return self.conv2(x)


class MAnetDecoder(Decoder):
    """The MA-Net decoder: a PAB on the deepest features, then one stage per encoder stage.

    Stages with a non-empty encoder skip are MFABs; the others (the last
    stage, and the one fed by the empty stride-2 map of a transformer-style
    encoder) are plain blocks. ``encoder_channels`` has depth + 1 entries,
    the first being the input; ``decoder_channels`` has depth entries.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        norm: Norm = "batchnorm",
        pab_channels: int = 64,
        interpolation: str = "nearest",
        reduction: int = 16,
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
        self.center = PositionAttentionBlock(head, pab_channels)
        blocks: list[nn.Module] = []
        for i, s, o in zip(in_channels, skip_channels, decoder_channels):
            if s > 0:
                blocks.append(MultiScaleFusionAttentionBlock(i, s, o, norm, interpolation, reduction))
            else:
                blocks.append(MAnetDecoderBlock(i, s, o, norm, interpolation))
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = int(decoder_channels[-1])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        levels = features[1:][::-1]  # deepest first; the input itself is never a skip
        x = self.center(levels[0])
        skips = levels[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


@register_decoder(MAnetDecoderSpec)
def build_manet(section: MAnetDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> MAnetDecoder:
    """The MA-Net decoder of a section."""
    return MAnetDecoder(
        encoder_channels=encoder.out_channels,
        decoder_channels=section.channels,
        norm=section.norm,
        pab_channels=section.pab_channels,
        interpolation=section.interpolation,
    )
