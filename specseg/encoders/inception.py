"""InceptionV4 and Inception-ResNet-v2 (Szegedy et al., 2017) on timm's networks, with SMP's taps and layout.

timm's ``inception_v4`` and ``inception_resnet_v2`` have Cadene's (and so
SMP's) parameter names. As SMP does, every 3x3 convolution and max-pool is
padded by 1 so that each stride-2 step halves the size exactly. SMP's
InceptionV4 features are the outputs of ``features[2, 4, 8, 14, 21]`` (192
channels at stride 4: after ``Mixed_4a``); Inception-ResNet-v2's are the
stage outputs listed in :class:`InceptionResNetV2Encoder`. Both downsample
with max-pooling, so neither can be dilated (SMP refuses too).
"""

from __future__ import annotations

import torch

from specseg.encoders.timm_body import TimmBodyEncoder, create_timm_model, pad_for_exact_halving


class InceptionV4Encoder(TimmBodyEncoder):
    """timm's ``inception_v4`` returning SMP's InceptionV4 features (keys ``features.0..21``)."""

    classifier_keys = ("last_linear.weight", "last_linear.bias")
    dilation_refused = "InceptionV4 downsamples with max-pooling layers"

    def __init__(self, model: str = "inception_v4", depth: int = 5, output_stride: int = 32) -> None:
        super().__init__(depth)
        net = create_timm_model(model)
        self._adopt(net, drop=("global_pool", "head_drop", "last_linear"))
        pad_for_exact_halving(self)
        self._out_channels = [3, 64, 192, 384, 1024, 1536]
        #: Indices into ``features`` whose outputs are the features at strides 2..32 (SMP's choice); an
        #: instance attribute because TorchScript reads no class attributes.
        self.taps = [2, 4, 8, 14, 21]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        last = self.taps[self._depth - 1]
        for i, module in enumerate(self.features):
            # No break: TorchScript unrolls this loop, and the modules past the last tap are skipped.
            if i <= last:
                x = module(x)
                if i in self.taps:
                    features.append(x)
        return features


class InceptionResNetV2Encoder(TimmBodyEncoder):
    """timm's ``inception_resnet_v2`` returning SMP's features (keys ``conv2d_1a`` ... ``conv2d_7b``).

    Features: after ``conv2d_2b`` (stride 2), ``conv2d_4a`` (4), ``repeat``
    (8), ``repeat_1`` (16) and ``conv2d_7b`` (32).
    """

    classifier_keys = ("last_linear.weight", "last_linear.bias", "classif.weight", "classif.bias")
    dilation_refused = "Inception-ResNet-v2 downsamples with max-pooling layers"

    def __init__(self, model: str = "inception_resnet_v2", depth: int = 5, output_stride: int = 32) -> None:
        super().__init__(depth)
        net = create_timm_model(model)
        self._adopt(net, drop=("global_pool", "head_drop", "classif"))
        pad_for_exact_halving(self)
        self._out_channels = [3, 64, 192, 320, 1088, 1536]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        if self._depth >= 1:
            x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
            features.append(x)
        if self._depth >= 2:
            x = self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x)))
            features.append(x)
        if self._depth >= 3:
            x = self.repeat(self.mixed_5b(self.maxpool_5a(x)))
            features.append(x)
        if self._depth >= 4:
            x = self.repeat_1(self.mixed_6a(x))
            features.append(x)
        if self._depth >= 5:
            x = self.conv2d_7b(self.block8(self.repeat_2(self.mixed_7a(x))))
            features.append(x)
        return features
