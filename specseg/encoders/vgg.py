"""VGG encoders (Simonyan & Zisserman, 2015) with torchvision's (and SMP's) ``features.N`` state-dict layout.

The convolutional body is torchvision's (``make_layers`` of its configurations
A, B, D, E; torchvision comes with timm). As in SMP, the features are the
activations just before each max-pool (strides 1 to 16) and the output of the
last max-pool (stride 32), so the first feature map has 64 channels at the
input's resolution rather than being the input itself. VGG downsamples by
max-pooling only, so it cannot be dilated.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.errors import EncoderBuildError

#: Configuration letter of each depth (torchvision's names for the VGG-11/13/16/19 columns of the paper).
CONFIGS = {11: "A", 13: "B", 16: "D", 19: "E"}


class VGGEncoder(nn.Module, EncoderMixin):
    """VGG-``layers`` (11, 13, 16 or 19), optionally with batch norm, returning ``depth + 1`` feature maps."""

    #: Classifier keys of torchvision's (``classifier.*``) and timm's (``pre_logits.*``, ``head.*``) checkpoints.
    classifier_keys = tuple(f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")) + tuple(
        f"{m}.{p}" for m in ("pre_logits.fc1", "pre_logits.fc2", "head.fc") for p in ("weight", "bias")
    )

    #: The first map is a stride-1 stage (64 channels), not the input (the declared-features contract's "map" layout).
    _first_layout = "map"

    def __init__(self, layers: int, batch_norm: bool = False, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"VGG encoder depth must be 1..5, got {depth}", "depth")
        if layers not in CONFIGS:
            raise ValueError(f"VGG layers must be one of {sorted(CONFIGS)}, got {layers}")
        self.features = make_layers(cfgs[CONFIGS[layers]], batch_norm=batch_norm)
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        # Taps: the ReLU before each max-pool, then the last max-pool itself.
        self._taps = [i - 1 for i in pools] + [len(self.features) - 1]
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        self._out_channels = [64, 128, 256, 512, 512, 512]
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's VGG initialisation (what SMP's encoder gets), so random-init training behaves the same.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def make_dilated(self, output_stride: int) -> None:
        """VGG downsamples with max-pooling, which cannot be turned into dilation."""
        raise ValueError("VGG downsamples by max-pooling, which cannot be replaced by dilation")

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Not dilatable (see :meth:`make_dilated`)."""
        raise NotImplementedError("VGG downsamples by max-pooling, which cannot be replaced by dilation")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps at strides 1, 2, ..., 2**depth."""
        features: list[torch.Tensor] = []
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self._taps:
                features.append(x)
                # Stop once the deepest feature wanted exists (scripted code runs through, then slices).
                if not torch.jit.is_scripting() and len(features) > self._depth:
                    break
        return features[: self._depth + 1]
