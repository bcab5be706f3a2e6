"""MobileNetV2 encoder (Sandler et al., 2018): torchvision's network, with its (and SMP's) ``features.N`` layout.

The body is torchvision's ``MobileNetV2`` (torchvision comes with timm)
without its classifier. As in SMP, the features are the outputs of
``features[1, 3, 6, 13]`` and of the last module, the 1x1 head convolution
(1280 channels at stride 32).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.errors import EncoderBuildError

#: Index in ``features`` of the module whose output is the feature at stride 2, 4, 8, 16 (the last: stride 32).
TAPS = [1, 3, 6, 13, 18]


class MobileNetV2Encoder(nn.Module, EncoderMixin):
    """MobileNetV2 (width 1.0), returning the input and ``depth`` feature maps; dilatable to stride 16 or 8."""

    classifier_keys = ("classifier.1.weight", "classifier.1.bias")

    def __init__(self, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__()
        from torchvision.models import MobileNetV2

        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"MobileNetV2 encoder depth must be 1..5, got {depth}", "depth")
        # torchvision initialises the whole network; only the body is kept.
        self.features = MobileNetV2().features
        self._taps = list(TAPS)
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        self._out_channels = [3, 16, 24, 32, 96, 1280]

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Modules that run at strides 16 and 32, for dilation."""
        return {16: [self.features[7:14]], 32: [self.features[14:]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self._taps:
                features.append(x)
                # Stop once the deepest feature wanted exists (scripted code runs through, then slices).
                if not torch.jit.is_scripting() and len(features) > self._depth:
                    break
        return features[: self._depth + 1]
