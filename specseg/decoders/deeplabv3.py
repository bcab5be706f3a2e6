"""DeepLabV3 decoder (Chen et al., 2017) and the ASPP blocks DeepLabV3+ shares, with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.capture import is_capturing
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.deeplabv3 import DeepLabV3DecoderSpec
from specseg.spec.model import ModelSpec


class AtrousConv2d(nn.Conv2d):
    """A stride-1, zero-padded ("same") dilated ``nn.Conv2d`` that skips taps reading only padding.

    An off-centre tap of a kernel dilated by ``d`` reads ``d`` (or more)
    pixels away from the output pixel; when that is at least the feature
    map's height (width), the tap reads zero padding for *every* output
    pixel and contributes exact zeros. DeepLab's large rates get there on
    small maps (rate 36 on the 32x32 map of a 256x256 input at output stride
    8): the forward pass then convolves with the kernel's central rows and
    columns only (a 1x1 kernel when no off-centre tap is left), which is the
    same sum without the zero terms, at a fraction of the cost. Parameters
    and state dict are those of ``nn.Conv2d``. Under ``torch.jit`` tracing or
    scripting, ``torch.compile`` and ``torch.export`` the full kernel runs,
    so that captured graphs hold no size-dependent branch and stay valid for
    every input size.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A static check TorchScript folds: scripted graphs compile only the full convolution.
        if not torch.jit.is_scripting():
            if not is_capturing():
                trimmed = self._trimmed_forward(x)
                if trimmed is not None:
                    return trimmed
        return self._conv_forward(x, self.weight, self.bias)

    def _trimmed_forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """The convolution without the taps that read only padding; None when every tap is needed (or the shape rules out trimming)."""
        kh, kw = self.kernel_size
        dh, dw = self.dilation
        if (
            self.padding_mode != "zeros"
            or self.stride != (1, 1)
            or kh % 2 == 0
            or kw % 2 == 0
            or self.padding != (dh * (kh // 2), dw * (kw // 2))
        ):
            return None
        # Off-centre taps kept per side: those less than the map's size away from the centre.
        rh = min(kh // 2, (x.shape[-2] - 1) // dh)
        rw = min(kw // 2, (x.shape[-1] - 1) // dw)
        if rh == kh // 2 and rw == kw // 2:
            return None
        weight = self.weight[:, :, kh // 2 - rh : kh // 2 + rh + 1, kw // 2 - rw : kw // 2 + rw + 1]
        return F.conv2d(x, weight, self.bias, 1, (rh * dh, rw * dw), (dh, dw), self.groups)


class SeparableConv2d(nn.Sequential):
    """Depthwise ``Conv2d`` (no bias, an :class:`AtrousConv2d`) then pointwise 1x1 ``Conv2d``; keys ``0`` and ``1``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        depthwise = AtrousConv2d(
            in_channels,
            in_channels,
            kernel_size,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=False,
        )
        pointwise = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)
        super().__init__(depthwise, pointwise)


class ConvBNReLU(nn.Sequential):
    """``Conv2d`` (no bias) -> ``BatchNorm2d`` -> ReLU; keys ``0`` and ``1``.

    ``separable`` swaps the convolution for a :class:`SeparableConv2d`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        separable: bool = False,
    ) -> None:
        padding = dilation * (kernel_size // 2)
        conv: nn.Module = (
            SeparableConv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False)
            if separable
            else AtrousConv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False)
        )
        super().__init__(conv, nn.BatchNorm2d(out_channels), nn.ReLU())


class ASPPPooling(nn.Sequential):
    """Image-level branch: global average pool, 1x1 conv-BN-ReLU, bilinear resize back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        # The Sequential's layers one by one: TorchScript cannot compile super().forward.
        for layer in self:
            x = layer(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: five parallel branches, concatenated and projected.

    Branches (``convs.0`` .. ``convs.4``): 1x1 conv, three dilated 3x3 convs
    (separable or not) and image-level pooling; ``project`` is a 1x1
    conv-BN-ReLU followed by dropout.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        atrous_rates: Sequence[int] = (12, 24, 36),
        separable: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if len(atrous_rates) != 3:
            raise ValueError(f"ASPP takes exactly 3 atrous rates, got {list(atrous_rates)}")
        branches: list[nn.Module] = [ConvBNReLU(in_channels, out_channels, 1)]
        branches += [ConvBNReLU(in_channels, out_channels, 3, dilation=rate, separable=separable) for rate in atrous_rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A loop, not a comprehension: TorchScript iterates a ModuleList only in for statements.
        branches = []
        for branch in self.convs:
            branches.append(branch(x))
        return self.project(torch.cat(branches, dim=1))


class DeepLabV3Decoder(Decoder):
    """ASPP on the deepest features, then a 3x3 conv-BN-ReLU; keys ``aspp``, ``conv``, ``bn``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        atrous_rates: Sequence[int] = (12, 24, 36),
        aspp_separable: bool = False,
        aspp_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, out_channels, atrous_rates, separable=aspp_separable, dropout=aspp_dropout)
        self.conv = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.out_channels = int(out_channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.relu(self.bn(self.conv(self.aspp(features[-1]))))


@register_decoder(DeepLabV3DecoderSpec)
def build_deeplabv3(section: DeepLabV3DecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> DeepLabV3Decoder:
    """The DeepLabV3 decoder of a section: ASPP on the deepest features only."""
    return DeepLabV3Decoder(
        in_channels=encoder.out_channels[-1],
        out_channels=section.channels,
        atrous_rates=tuple(section.atrous_rates),
        aspp_separable=section.aspp_separable,
        aspp_dropout=section.aspp_dropout,
    )
