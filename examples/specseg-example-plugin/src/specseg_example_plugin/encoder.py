"""A tiny CNN encoder following the specseg encoder contract."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg import EncoderMixin

from specseg_example_plugin.params import TinyParams


def _conv(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TinyEncoder(nn.Module, EncoderMixin):
    """Five stride-2 stages of 3x3 convolutions; ``width`` channels at stride 2, doubling up to 8x."""

    #: Read by specseg when the class is loaded through its entry point.
    params_model = TinyParams
    pretrained_settings: dict = {}

    def __init__(self, width: int = 16, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8, width * 8]
        self._out_channels = [3, *widths]
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        stages = []
        previous = 3
        for w in widths:
            stages.append(nn.Sequential(_conv(previous, w, 2), _conv(w, w, 1)))
            previous = w
        self.stages = nn.ModuleList(stages)

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Stages by stride, so specseg can dilate the deepest ones (output_stride 16 or 8)."""
        return {16: [self.stages[3]], 32: [self.stages[4]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        for stage in self.stages[: self._depth]:
            x = stage(x)
            features.append(x)
        return features
