"""SMP's ``efficientnet-b0..b7`` encoders: the EfficientNet of Tan & Le (2019) in lukemelas's PyTorch layout.

SMP's EfficientNet is the ``efficientnet_pytorch`` (lukemelas) network:
TensorFlow's "same" padding computed once for each variant's nominal image
size (224 for B0 ... 600 for B7), BatchNorm with eps 1e-3, SiLU, and
modules named ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``, ...
timm's ``tf_efficientnet_b*`` is the same function family but pads for
the actual input size and names its modules otherwise, so it gives other
numbers on inputs whose feature sizes are odd at the nominal size (B3..B7)
and cannot load SMP's checkpoints; hence this module.

The features are SMP's: the stem (stride 2), then the outputs of the blocks
SMP lists for each variant (the last block of the stride-4, -8, -16 and -32
stages, except that B0's stride-16 feature is the first block of its
112-channel stage, as in SMP). The unused head convolution (``_conv_head``,
``_bn1``) is kept, as in SMP, so checkpoints and parameter counts match.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.encoders.base import EncoderMixin
from specseg.errors import EncoderBuildError

#: (kernel, stride, expansion, input channels, output channels, repeats) of B0's seven stages; SE ratio 0.25.
B0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)

#: Variant -> (width multiplier, depth multiplier, nominal image size, SMP's tapped block indices).
VARIANTS: dict[str, tuple[float, float, int, tuple[int, ...]]] = {
    "b0": (1.0, 1.0, 224, (2, 4, 8, 15)),
    "b1": (1.0, 1.1, 240, (4, 7, 15, 22)),
    "b2": (1.1, 1.2, 260, (4, 7, 15, 22)),
    "b3": (1.2, 1.4, 300, (4, 7, 17, 25)),
    "b4": (1.4, 1.8, 380, (5, 9, 21, 31)),
    "b5": (1.6, 2.2, 456, (7, 12, 26, 38)),
    "b6": (1.8, 2.6, 528, (8, 14, 30, 44)),
    "b7": (2.0, 3.1, 600, (10, 17, 37, 54)),
}

BN_EPS = 1e-3
#: TensorFlow's decay 0.99 as a PyTorch momentum (written as SMP computes it).
BN_MOMENTUM = 1 - 0.99
DROP_CONNECT_RATE = 0.2


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width``, rounded to a multiple of ``divisor`` by at most 10% downwards."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one axis of length ``size``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class StaticSameConv2d(nn.Conv2d):
    """A convolution zero-padded as TensorFlow's "same" would pad an input of ``image_size`` (fixed at build time).

    The padding is a plain attribute (no module, so no state-dict entry);
    dilation clears it and uses the convolution's own symmetric padding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1, bias: bool = False, image_size: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=bias)
        before, after = _same_padding(image_size, kernel_size, stride)
        self.same_pad: list[int] = [before, after, before, after]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if max(self.same_pad) > 0:
            x = F.pad(x, self.same_pad)
        return self._conv_forward(x, self.weight, self.bias)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: 1x1 expansion, depthwise convolution, squeeze-and-excitation, 1x1 projection."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int, image_size: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        hidden = in_channels * expand
        self._has_expansion = expand != 1
        # Identity stand-ins (no state-dict keys) keep the attributes defined, so the block can be scripted.
        self._expand_conv: nn.Module = StaticSameConv2d(in_channels, hidden, 1) if self._has_expansion else nn.Identity()
        self._bn0: nn.Module = _bn(hidden) if self._has_expansion else nn.Identity()
        self._depthwise_conv = StaticSameConv2d(hidden, hidden, kernel, stride, groups=hidden, image_size=image_size)
        self._bn1 = _bn(hidden)
        squeezed = max(1, int(in_channels * se_ratio))
        self._se_reduce = StaticSameConv2d(hidden, squeezed, 1, bias=True)
        self._se_expand = StaticSameConv2d(squeezed, hidden, 1, bias=True)
        self._project_conv = StaticSameConv2d(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self._swish = nn.SiLU()
        self._residual = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor, drop_rate: float = 0.0) -> torch.Tensor:
        """``drop_rate``: probability of dropping the residual branch per sample (training only)."""
        x = inputs
        if self._has_expansion:
            x = self._swish(self._bn0(self._expand_conv(x)))
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        scale = self._se_expand(self._swish(self._se_reduce(F.adaptive_avg_pool2d(x, 1))))
        x = torch.sigmoid(scale) * x
        x = self._bn2(self._project_conv(x))
        if not self._residual:
            return x
        if self.training and drop_rate > 0:
            # Stochastic depth: keep each sample's branch with probability 1 - drop_rate, rescaled.
            keep = 1.0 - drop_rate
            mask = torch.floor(keep + torch.rand((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device))
            x = x / keep * mask
        return x + inputs


class EfficientNetEncoder(nn.Module, EncoderMixin):
    """EfficientNet-``variant`` (``b0`` .. ``b7``) with SMP's layout, padding and feature taps.

    Depth 1 (the stem alone) is accepted too; SMP asks for 2..5. Dilation
    (``output_stride`` 16 or 8) is applied by the builder through
    :meth:`make_dilated`, which also drops the static "same" padding of the
    dilated convolutions, as SMP does.
    """

    classifier_keys = ("_fc.weight", "_fc.bias")

    def __init__(self, variant: str, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"EfficientNet variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"EfficientNet encoder depth must be 1..5, got {depth}", "depth")
        width, depth_multiplier, size, taps = VARIANTS[variant]
        stem = round_filters(32, width)
        self._conv_stem = StaticSameConv2d(3, stem, 3, 2, image_size=size)
        self._bn0 = _bn(stem)
        size = math.ceil(size / 2)
        blocks: list[nn.Module] = []
        for kernel, stride, expand, cin, cout, repeats in B0_STAGES:
            cin, cout = round_filters(cin, width), round_filters(cout, width)
            for i in range(int(math.ceil(depth_multiplier * repeats))):
                blocks.append(MBConvBlock(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand, size))
                if i == 0:
                    size = math.ceil(size / stride)
        self._blocks = nn.ModuleList(blocks)
        head = round_filters(1280, width)
        self._conv_head = StaticSameConv2d(cout, head, 1)
        self._bn1 = _bn(head)
        self._swish = nn.SiLU()
        self._taps = list(taps)
        self._drop_connect_rate = DROP_CONNECT_RATE
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        self._out_channels = [3, stem] + [self._blocks[i]._bn2.num_features for i in taps]

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Blocks after the stride-8 and stride-16 taps, for dilation (SMP's grouping)."""
        taps = self._taps
        return {16: [self._blocks[taps[1] + 1 : taps[2] + 1]], 32: [self._blocks[taps[2] + 1 :]]}

    def make_dilated(self, output_stride: int) -> None:
        """Dilate the deep blocks (see :meth:`EncoderMixin.make_dilated`); their "same" padding becomes symmetric."""
        super().make_dilated(output_stride)
        for stage_stride, modules in self.get_stages().items():
            if stage_stride > output_stride:
                for module in modules:
                    for conv in module.modules():
                        if isinstance(conv, StaticSameConv2d):
                            conv.same_pad = [0, 0, 0, 0]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        x = self._swish(self._bn0(self._conv_stem(x)))
        features.append(x)
        count = len(self._blocks)
        for i, block in enumerate(self._blocks):
            # Stop once the deepest feature wanted exists (scripted code runs through, then slices).
            if not torch.jit.is_scripting() and len(features) > self._depth:
                break
            x = block(x, self._drop_connect_rate * i / count)
            if i in self._taps:
                features.append(x)
        return features[: self._depth + 1]
