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
        transitions = (f.transition1, f.transition2, f.transition3)
        blocks = (f.denseblock1, f.denseblock2, f.denseblock3, f.denseblock4)
        for level in range(2, self._depth + 1):
            if level == 2:
                x = f.pool0(x)
            else:
                previous = transitions[level - 3]
                x = previous.pool(previous.conv(x))
            x = blocks[level - 2](x)
            x = transitions[level - 2].norm(x) if level < 5 else f.norm5(x)  # a transition's norm carries its ReLU
            features.append(x)
        return features
