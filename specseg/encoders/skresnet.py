"""SK-ResNet-18/34 and SK-ResNeXt-50 32x4d (Li et al., 2019): timm's ResNet with SMP's selective-kernel settings.

SMP builds these from timm's ``ResNet`` class with its own arguments, not
timm's ``skresnet*`` configurations: SMP's attention widths round to a
divisor of 8 (timm's ``skresnet18/34``: 16; ``skresnext50_32x4d``: 32), and
SMP's SK-ResNeXt-50 splits its input between the kernels (timm's does not).
specseg builds the same class with SMP's arguments, so keys (timm's ResNet
layout without ``fc``), parameters and outputs are SMP's. Stages 3 and 4 downsample with strided convolutions,
so output strides 16 and 8 dilate them, as SMP does (every convolution of
those stages gets the stage's dilation rate, as in SMP).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from specseg.encoders.timm_body import TimmBodyEncoder

_BLOCKS = ("basic", "bottleneck")


class SKResNetEncoder(TimmBodyEncoder):
    """timm's ``ResNet`` with selective-kernel blocks (``block`` basic or bottleneck), SMP's configuration.

    ``layers`` gives the block count of the four stages; ``cardinality`` and
    ``base_width`` make it a ResNeXt; ``sk_kwargs`` go to timm's
    ``SelectiveKernel`` (e.g. ``rd_ratio``, ``split_input``).
    """

    classifier_keys = ("fc.weight", "fc.bias")

    def __init__(
        self,
        block: str,
        layers: Sequence[int],
        depth: int = 5,
        output_stride: int = 32,
        cardinality: int = 1,
        base_width: int = 64,
        sk_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(depth)
        from timm.models.resnet import ResNet
        from timm.models.sknet import SelectiveKernelBasic, SelectiveKernelBottleneck

        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {list(_BLOCKS)}, got {block!r}")
        if len(layers) != 4:
            raise ValueError(f"layers must give the block count of the 4 stages, got {list(layers)}")
        block_cls = SelectiveKernelBasic if block == "basic" else SelectiveKernelBottleneck
        block_args = {"sk_kwargs": dict(sk_kwargs)} if sk_kwargs is not None else None
        net = ResNet(
            block=block_cls,
            layers=list(layers),
            cardinality=cardinality,
            base_width=base_width,
            zero_init_last=False,
            block_args=block_args,
        )
        self._adopt(net, drop=("global_pool", "fc"))
        expansion = block_cls.expansion
        self._out_channels = [3, 64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """The stride-16 and stride-32 stages, for dilation."""
        return {16: [self.layer3], 32: [self.layer4]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        if self._depth >= 1:
            x = self.act1(self.bn1(self.conv1(x)))
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
