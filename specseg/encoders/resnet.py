"""ResNet and ResNeXt encoders (He et al., 2016; Xie et al., 2017), with torchvision's (and SMP's) state-dict layout.

The layout (``conv1``, ``bn1``, ``layer1..4``) is the one torchvision's,
timm's and SMP's ``resnet*``/``resnext*`` weights use, so their checkpoints
load directly (timm's classifier ``fc.*`` is dropped).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.capture import is_capturing
from specseg.encoders.base import EncoderMixin
from specseg.errors import EncoderBuildError


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError("basic ResNet blocks support groups=1 and width_per_group=64 only")
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as torchvision's (and so SMP's) blocks do: one allocation less
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, grouped for ResNeXt), 1x1 expand, with a residual (ResNet-50 and deeper)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        # ResNeXt's inner width: `width_per_group` channels per group, scaled with the stage.
        width = int(channels * (width_per_group / 64.0)) * groups
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, channels * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity  # in place, as torchvision's (and so SMP's) blocks do: one allocation less
        return self.relu(out)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class StemMaxPool2d(nn.MaxPool2d):
    """The stem's ``nn.MaxPool2d(3, stride=2, padding=1)``, computed faster where that is exact.

    PyTorch's CPU max pooling of a contiguous (NCHW) tensor always computes
    argmax indices too and is several times slower than taking the maximum of
    the strided views of the padded input (three along the width, then
    three along the height). A maximum is exact, so the values are the same
    bit for bit (NaNs propagate in both). The native operator still runs
    when a gradient is needed (its gradient routes ties to one input only),
    under ``torch.jit``, ``torch.compile`` and ``torch.export`` (captured
    graphs keep the pooling operator), for channels_last inputs (where it is
    fast) and off the CPU.
    """

    def __init__(self) -> None:
        super().__init__(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A static check TorchScript folds: scripted graphs compile only the native operator below.
        if not torch.jit.is_scripting():
            if not (
                is_capturing()
                or x.device.type != "cpu"
                or x.dim() != 4
                or not x.is_floating_point()
                or (x.requires_grad and torch.is_grad_enabled())
                or not x.is_contiguous()
            ):
                return _strided_max_pool_3x3_s2(x)
        # What nn.MaxPool2d.forward does; a call of super().forward cannot be scripted.
        return nn.functional.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode, return_indices=self.return_indices
        )


def _strided_max_pool_3x3_s2(x: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(x, 3, stride=2, padding=1)`` of an NCHW tensor as maxima of strided views (see :class:`StemMaxPool2d`)."""
    h, w = x.shape[-2:]
    oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    x = nn.functional.pad(x, (1, 1, 1, 1), value=float("-inf"))
    x = torch.maximum(torch.maximum(x[..., 0 : 2 * oh - 1 : 2, :], x[..., 1 : 2 * oh : 2, :]), x[..., 2 : 2 * oh + 1 : 2, :])
    return torch.maximum(torch.maximum(x[..., 0 : 2 * ow - 1 : 2], x[..., 1 : 2 * ow : 2]), x[..., 2 : 2 * ow + 1 : 2])


class ResNetEncoder(nn.Module, EncoderMixin):
    """A ResNet/ResNeXt trunk returning the input and the features after each stage.

    All four stages exist whatever the depth, as in SMP: parameter counts
    match SMP's and pretrained checkpoints load with strict key matching.
    ``groups``/``width_per_group`` make it a ResNeXt (e.g. 32 and 4 for
    ResNeXt-50 32x4d). Dilation (``output_stride`` 8 or 16) is applied by the
    builder through :meth:`make_dilated`.
    """

    #: Keys of classification checkpoints (timm, torchvision) that the encoder does not use.
    classifier_keys = ("fc.weight", "fc.bias")

    def __init__(
        self,
        block: str,
        layers: Sequence[int],
        depth: int = 5,
        output_stride: int = 32,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"ResNet encoder depth must be 1..5, got {depth}", "depth")
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {block!r}")
        if len(layers) != 4:
            raise ValueError(f"layers must give the block count of the 4 stages, got {list(layers)}")
        block_cls = _BLOCKS[block]
        self._groups = groups
        self._width_per_group = width_per_group
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        width = 64 * block_cls.expansion
        self._out_channels = [3, 64, width, width * 2, width * 4, width * 8]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = StemMaxPool2d()
        self._inplanes = 64
        self.layer1 = self._make_layer(block_cls, 64, layers[0])
        self.layer2 = self._make_layer(block_cls, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block_cls, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block_cls, 512, layers[3], stride=2)
        self._init_weights()

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        out = channels * block.expansion
        if stride != 1 or self._inplanes != out:
            downsample = nn.Sequential(nn.Conv2d(self._inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
        extra = {"groups": self._groups, "width_per_group": self._width_per_group}
        layers = [block(self._inplanes, channels, stride, downsample, **extra)]
        self._inplanes = out
        layers += [block(out, channels, **extra) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # torchvision's initialisation, so random-init training behaves as with SMP.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Stages by stride, for dilation."""
        return {16: [self.layer3], 32: [self.layer4]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        if self._depth >= 1:
            x = self.relu(self.bn1(self.conv1(x)))
            features.append(x)
        if self._depth >= 2:
            x = self.layer1(self.maxpool(x))
            features.append(x)
        if self._depth >= 3:
            x = self.layer2(x)
            features.append(x)
        if self._depth >= 4:
            x = self.layer3(x)
            features.append(x)
        if self._depth >= 5:
            x = self.layer4(x)
            features.append(x)
        return features
