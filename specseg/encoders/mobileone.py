"""MobileOne encoders (Vasu et al., 2023, "An Improved One millisecond Mobile Backbone") with SMP's state-dict layout.

timm has MobileOne too, but under other module names (``stages.N``,
``conv_kxk``, ...); SMP's checkpoints and pretrained files use Apple's
original names (``stage0..4``, ``rbr_conv``, ``rbr_scale``, ``rbr_skip``,
``se.reduce``/``se.expand``), which this module keeps so they load directly.
The network is the multi-branch training form: each block sums ``branches``
conv+BN branches of its kernel size, a 1x1 conv+BN branch (for 3x3 blocks)
and a BN identity branch (when shape allows), then applies optional
squeeze-and-excitation and ReLU.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.encoders.base import EncoderMixin, patch_first_conv
from specseg.errors import EncoderBuildError


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a 1/16 reduction and ReLU, gating with a sigmoid (MobileOne-S4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = int(channels * 0.0625)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.expand(torch.relu(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int) -> nn.Sequential:
    branch = nn.Sequential()
    branch.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False))
    branch.add_module("bn", nn.BatchNorm2d(out_channels))
    return branch


class MobileOneBlock(nn.Module):
    """One re-parameterisable MobileOne block in its multi-branch (training) form."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        use_se: bool = False,
        branches: int = 1,
    ) -> None:
        super().__init__()
        # Registration order gives SMP's key order: se, rbr_skip, rbr_conv, rbr_scale.
        self.se = SqueezeExcite(out_channels) if use_se else nn.Identity()
        self.activation = nn.ReLU()
        self.rbr_skip = nn.BatchNorm2d(in_channels) if in_channels == out_channels and stride == 1 else None
        self.rbr_conv = nn.ModuleList(_conv_bn(in_channels, out_channels, kernel_size, stride, groups) for _ in range(branches))
        self.rbr_scale = _conv_bn(in_channels, out_channels, 1, stride, groups) if kernel_size > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((), dtype=x.dtype, device=x.device)
        if self.rbr_scale is not None:
            out = self.rbr_scale(x)
        if self.rbr_skip is not None:
            out = out + self.rbr_skip(x)
        for branch in self.rbr_conv:
            out = out + branch(x)
        return self.activation(self.se(out))


class MobileOneEncoder(nn.Module, EncoderMixin):
    """MobileOne-S0..S4: ``widths`` multiply the stages' 64/128/256/512 channels; ``branches`` is S0's 4.

    ``use_se`` adds squeeze-and-excitation to the last half of stage 3's
    blocks and all of stage 4's (S4). Dilation (``output_stride`` 16 or 8)
    is applied by the builder through :meth:`make_dilated`.
    """

    classifier_keys = ("linear.weight", "linear.bias")

    def __init__(
        self,
        widths: Sequence[float],
        branches: int = 1,
        use_se: bool = False,
        blocks: Sequence[int] = (2, 8, 10, 1),
        depth: int = 5,
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"MobileOne encoder depth must be 1..5, got {depth}", "depth")
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError("widths and blocks give one value per stage (4 each)")
        self._planes = min(64, int(64 * widths[0]))
        self._branches = branches
        self.stage0 = MobileOneBlock(3, self._planes, 3, stride=2)
        channels = [int(base * w) for base, w in zip((64, 128, 256, 512), widths)]
        se_blocks = [0, 0, blocks[2] // 2 if use_se else 0, blocks[3] if use_se else 0]
        self.stage1 = self._stage(channels[0], blocks[0], se_blocks[0])
        self.stage2 = self._stage(channels[1], blocks[1], se_blocks[1])
        self.stage3 = self._stage(channels[2], blocks[2], se_blocks[2])
        self.stage4 = self._stage(channels[3], blocks[3], se_blocks[3])
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        self._out_channels = [3, min(64, int(64 * widths[0]))] + channels

    def _stage(self, channels: int, blocks: int, se_blocks: int) -> nn.Sequential:
        """``blocks`` pairs of a depthwise 3x3 block (the first strided) and a pointwise block."""
        layers: list[nn.Module] = []
        for i in range(blocks):
            use_se = i >= blocks - se_blocks
            stride = 2 if i == 0 else 1
            layers.append(MobileOneBlock(self._planes, self._planes, 3, stride, self._planes, use_se, self._branches))
            layers.append(MobileOneBlock(self._planes, channels, 1, 1, 1, use_se, self._branches))
            self._planes = channels
        return nn.Sequential(*layers)

    def set_in_channels(self, in_channels: int, pretrained: bool = True) -> None:
        """Adapt the stem's 3x3 and 1x1 branches to ``in_channels`` inputs."""
        if in_channels == self._in_channels:
            return
        for branch in (self.stage0.rbr_conv, self.stage0.rbr_scale):
            patch_first_conv(branch, in_channels, self._in_channels, pretrained=pretrained)
        self._out_channels = [in_channels] + list(self._out_channels[1:])
        self._in_channels = in_channels

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Stages by stride, for dilation."""
        return {16: [self.stage3], 32: [self.stage4]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        if self._depth >= 1:
            x = self.stage0(x)
            features.append(x)
        if self._depth >= 2:
            x = self.stage1(x)
            features.append(x)
        if self._depth >= 3:
            x = self.stage2(x)
            features.append(x)
        if self._depth >= 4:
            x = self.stage3(x)
            features.append(x)
        if self._depth >= 5:
            x = self.stage4(x)
            features.append(x)
        return features
