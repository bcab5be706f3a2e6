"""ResNet encoders (He et al., 2016), with torchvision's (and SMP's) state-dict layout.

The layout (``conv1``, ``bn1``, ``layer1..4``) is the one torchvision's and
timm's ``resnet*`` weights use, so their ImageNet weights load directly.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.encoders.base import EncoderMixin


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
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
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand, with a residual (ResNet-50 and deeper)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNetEncoder(nn.Module, EncoderMixin):
    """A ResNet trunk returning the input and the features after each stage.

    All four stages exist whatever the depth, as in SMP: parameter counts
    match SMP's and pretrained checkpoints load with strict key matching.
    Dilation (``output_stride`` 8 or 16) is applied by the builder through
    :meth:`make_dilated`.
    """

    def __init__(self, block: str, layers: Sequence[int], depth: int = 5, output_stride: int = 32) -> None:
        super().__init__()
        if not 1 <= depth <= 5:
            raise ValueError(f"ResNet encoder depth must be 1..5, got {depth}")
        block_cls = _BLOCKS[block]
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        width = 64 * block_cls.expansion
        self._out_channels = [3, 64, width, width * 2, width * 4, width * 8]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
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
        layers = [block(self._inplanes, channels, stride, downsample)]
        self._inplanes = out
        layers += [block(out, channels) for _ in range(1, blocks)]
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
