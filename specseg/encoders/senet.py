"""SE-Net, SE-ResNet and SE-ResNeXt (Hu et al., 2018) on timm's ``legacy_se*``, with SMP's state-dict layout.

timm's ``legacy_senet154``/``legacy_seresnet*``/``legacy_seresnext*`` are
Cadene's networks with Cadene's (and so SMP's) parameter names (``layer0``
stem, ``layer1..4``). Features: the stem before its max-pool (stride 2) and
each stage's output. Stages 3 and 4 downsample with strided convolutions, so
output strides 16 and 8 dilate them, as SMP does.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.encoders.timm_body import TimmBodyEncoder, create_timm_model


class SENetEncoder(TimmBodyEncoder):
    """timm's ``legacy_se*`` model ``model`` returning SMP's SE-Net features."""

    classifier_keys = ("last_linear.weight", "last_linear.bias")

    def __init__(self, model: str, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__(depth)
        net = create_timm_model(model)
        self._adopt(net, drop=("global_pool", "last_linear"))
        stem_norms = [m for m in self.layer0.modules() if isinstance(m, nn.BatchNorm2d)]
        self._out_channels = [3, stem_norms[-1].num_features] + [_stage_channels(s) for s in (self.layer1, self.layer2, self.layer3, self.layer4)]

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """The stride-16 and stride-32 stages, for dilation."""
        return {16: [self.layer3], 32: [self.layer4]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        if self._depth >= 1:
            x = self.layer0(x)
            features.append(x)
        if self._depth >= 2:
            x = self.layer1(self.pool0(x))
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


def _stage_channels(stage: nn.Module) -> int:
    # A stage's output channels: its last block's last convolution before the SE module (bn3).
    return stage[-1].bn3.num_features
