"""DenseNet-121/161/169/201 (Huang et al., 2017) on timm's network, with SMP's feature taps and state-dict layout.

timm's DenseNet has torchvision's (and so SMP's) parameter names. SMP's
features are: the stem after its ReLU (stride 2), each transition's
normalisation and ReLU (strides 4, 8, 16: before the transition's
convolution and pooling) and ``norm5`` *without* the final ReLU (stride 32).
DenseNet downsamples by average pooling, so it cannot be dilated (SMP refuses too).
"""

from __future__ import annotations

import torch
from torch import nn

from specseg.encoders.timm_body import TimmBodyEncoder, create_timm_model


class DenseNetEncoder(TimmBodyEncoder):
    """timm's ``densenet121``/``161``/``169``/``201`` (``model``) returning SMP's DenseNet features.

    Keys: ``features.*`` (torchvision's layout); the classifier is not built.
    """

    classifier_keys = ("classifier.weight", "classifier.bias")
    dilation_refused = "DenseNet downsamples with pooling layers"

    def __init__(self, model: str, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__(depth)
        net = create_timm_model(model)
        self._adopt(net, drop=("global_pool", "head_drop", "classifier"))
        f = self.features
        # SMP's deepest feature is norm5 before its ReLU; nothing runs after it in the encoder.
        f.norm5.act = nn.Identity()
        self._out_channels = [
            3,
            f.norm0.num_features,
            f.transition1.norm.num_features,
            f.transition2.norm.num_features,
            f.transition3.norm.num_features,
            f.norm5.num_features,
        ]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        f = self.features
        features = [x]
        if self._depth >= 1:
            x = f.norm0(f.conv0(x))  # timm's norm0 carries the stem's ReLU
            features.append(x)
        # One block per level, written out: TorchScript cannot index a tuple of modules with a variable.
        # A transition's norm carries its ReLU and is SMP's tap; its conv and pool start the next level.
        if self._depth >= 2:
            x = f.transition1.norm(f.denseblock1(f.pool0(x)))
            features.append(x)
        if self._depth >= 3:
            x = f.transition2.norm(f.denseblock2(f.transition1.pool(f.transition1.conv(x))))
            features.append(x)
        if self._depth >= 4:
            x = f.transition3.norm(f.denseblock3(f.transition2.pool(f.transition2.conv(x))))
            features.append(x)
        if self._depth >= 5:
            x = f.norm5(f.denseblock4(f.transition3.pool(f.transition3.conv(x))))
            features.append(x)
        return features
