"""PAN decoder, Pyramid Attention Network (Li et al., 2018), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.pan import PANDecoderSpec
from specseg.spec.model import ModelSpec

#: The FPA block halves its input three times, so it needs at least this many pixels per side.
FPA_MIN_SIZE = 8


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """``F.interpolate`` with align_corners=True for bilinear, the only mode that takes it here."""
    return F.interpolate(x, size=size, mode=mode, align_corners=True if mode == "bilinear" else None)


class ConvBnReLU(nn.Module):
    """``Conv2d`` (with bias) -> ``BatchNorm2d`` -> optional ReLU; keys ``conv`` and ``bn``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=True)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activation: nn.Module = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn(self.conv(x)))


class FPABlock(nn.Module):
    """Feature Pyramid Attention on the deepest features.

    A 7-5-3 single-channel pyramid (three max-pool halvings) produces a
    spatial attention map that multiplies a 1x1 projection of the input; a
    global-pooling branch is added on top. All resizing is bilinear.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.mode = "bilinear"
        self.branch1 = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBnReLU(in_channels, out_channels, 1))
        self.mid = nn.Sequential(ConvBnReLU(in_channels, out_channels, 1))
        self.down1 = nn.Sequential(nn.MaxPool2d(kernel_size=2, stride=2), ConvBnReLU(in_channels, 1, 7, padding=3))
        self.down2 = nn.Sequential(nn.MaxPool2d(kernel_size=2, stride=2), ConvBnReLU(1, 1, 5, padding=2))
        self.down3 = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2),
            ConvBnReLU(1, 1, 3, padding=1),
            ConvBnReLU(1, 1, 3, padding=1),
        )
        self.conv2 = ConvBnReLU(1, 1, 5, padding=2)
        self.conv1 = ConvBnReLU(1, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Shapes stay symbolic (no int()) so that exports keep height and width dynamic.
        h, w = x.shape[2], x.shape[3]
        pooled = _resize(self.branch1(x), (h, w), self.mode)
        projected = self.mid(x)
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = _resize(self.down3(d2), (h // 4, w // 4), self.mode)
        attention = _resize(self.conv2(d2) + d3, (h // 2, w // 2), self.mode)
        attention = _resize(attention + self.conv1(d1), (h, w), self.mode)
        return attention * projected + pooled


class GAUBlock(nn.Module):
    """Global Attention Upsample: channel attention from the coarse map gates the fine features.

    ``forward(x, y)`` takes the fine (skip) features ``x`` and the coarse
    decoder features ``y``; returns ``upsample(y) + conv(x) * attention(y)``.
    """

    def __init__(self, in_channels: int, out_channels: int, interpolation: str = "bilinear") -> None:
        super().__init__()
        self.interpolation = interpolation
        self.conv1 = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvBnReLU(out_channels, out_channels, 1, relu=False),
            nn.Sigmoid(),
        )
        self.conv2 = ConvBnReLU(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_up = _resize(y, (x.shape[2], x.shape[3]), self.interpolation)
        return y_up + self.conv2(x) * self.conv1(y)


class PANDecoder(Decoder):
    """FPA on the deepest features, then GAU blocks up to the stride-4 features.

    With an encoder of depth ``d`` (3..5) there are ``d - 2`` GAU blocks,
    named ``gau1`` (stride-4 skip) to ``gau3`` (stride-16 skip) as in SMP.
    """

    def __init__(self, encoder_channels: Sequence[int], channels: int = 32, interpolation: str = "bilinear") -> None:
        super().__init__()
        depth = len(encoder_channels) - 1
        if depth < 3:
            raise ValueError(f"PAN needs an encoder of depth 3, 4 or 5, got {depth}")
        skips = list(encoder_channels[2:])  # stride-4 features and deeper
        self.fpa = FPABlock(skips[-1], channels)
        # Registered deepest first, each reading the skip of its own stage.
        for index in range(len(skips) - 1, 0, -1):
            setattr(self, f"gau{index}", GAUBlock(skips[index - 1], channels, interpolation))
        self.num_gau = len(skips) - 1
        self.out_channels = int(channels)
        #: Read by SegmentationModel.check_input_shape: the FPA block pools the deepest map down to 1x1 in three steps.
        self.min_deepest_size = FPA_MIN_SIZE

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # The eager check names valid input sizes; a scripted graph keeps only the computation.
        if not torch.jit.is_scripting():
            self._check_deepest_size(features)
        skips = features[2:]
        x = self.fpa(skips[-1])
        # Deepest first; gau1 always exists (depth >= 3), gau2 and gau3 with deeper encoders.
        # hasattr on a module is static for TorchScript, unlike getattr with a computed name.
        if hasattr(self, "gau3"):
            x = self.gau3(skips[2], x)
        if hasattr(self, "gau2"):
            x = self.gau2(skips[1], x)
        return self.gau1(skips[0], x)

    def _check_deepest_size(self, features: list[torch.Tensor]) -> None:
        """Raise a ValueError naming the smallest valid input when the deepest map is below FPA_MIN_SIZE."""
        deepest = features[-1]
        if deepest.shape[2] < FPA_MIN_SIZE or deepest.shape[3] < FPA_MIN_SIZE:
            stride = features[0].shape[2] // max(int(deepest.shape[2]), 1)
            raise ValueError(
                f"PAN needs the deepest feature map to be at least {FPA_MIN_SIZE}x{FPA_MIN_SIZE}, got "
                f"{deepest.shape[2]}x{deepest.shape[3]}: use inputs of at least {FPA_MIN_SIZE * stride}x"
                f"{FPA_MIN_SIZE * stride} ({FPA_MIN_SIZE} x the encoder's output stride {stride})"
            )


@register_decoder(PANDecoderSpec)
def build_pan(section: PANDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> PANDecoder:
    """The PAN decoder of a section."""
    return PANDecoder(encoder_channels=encoder.out_channels, channels=section.channels, interpolation=section.interpolation)
