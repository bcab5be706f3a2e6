"""SMP's ``timm-efficientnet-*`` and ``timm-tf_efficientnet_lite*`` encoders: timm's EfficientNet, SMP's taps and layout.

SMP builds these from timm's ``EfficientNet`` class with symmetric padding
(timm's ``efficientnet_b0..b8``, ``efficientnet_l2`` and
``efficientnet_lite0..4`` models: same configurations, same parameters) and
keeps the network's own attribute names, so the state dict is timm's without
the classifier. Its taps differ from timm's ``features_only``: the stride-2
feature is the stem (convolution, batch norm and activation), and the
unused head convolution (``conv_head``, ``bn2``) stays in the network, so
parameter counts and checkpoints match SMP's.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.errors import EncoderBuildError

#: The seven block stages run between the taps at strides 4, 8, 16 and 32 (SMP's grouping).
STAGES = ((0, 2), (2, 3), (3, 5), (5, 7))


def _out_channels(stage: nn.Module) -> int:
    # The last batch norm of a stage normalises its output.
    return [m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features


class TimmEfficientNetEncoder(nn.Module, EncoderMixin):
    """A timm EfficientNet (``model``: e.g. ``efficientnet_b0``, ``efficientnet_lite0``) as SMP's encoder.

    ``drop_path_rate`` is SMP's stochastic-depth rate (0.2; only active in
    training). Dilation (``output_stride`` 16 or 8) is applied by the builder
    through :meth:`make_dilated`.
    """

    classifier_keys = ("classifier.weight", "classifier.bias")

    def __init__(self, model: str, depth: int = 5, output_stride: int = 32, drop_path_rate: float = 0.2) -> None:
        super().__init__()
        import timm

        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"EfficientNet encoder depth must be 1..5, got {depth}", "depth")
        from timm.layers.activations import Swish

        options = {} if "lite" in model else {"act_layer": Swish}
        # SMP's activation for the B0..L2 networks is timm's Swish module (x * sigmoid(x)); timm's default,
        # nn.SiLU, is the same function with other rounding, which large activations show above 1e-4.
        network = timm.create_model(model, pretrained=False, num_classes=0, drop_path_rate=drop_path_rate, **options)
        # The attributes SMP's encoder (a subclass of timm's EfficientNet) has, so the state dicts are the same.
        self.conv_stem = network.conv_stem
        self.bn1 = network.bn1
        self.blocks = network.blocks
        self.conv_head = network.conv_head
        self.bn2 = network.bn2
        if len(self.blocks) != 7:
            raise ValueError(f"timm model {model!r} has {len(self.blocks)} block stages; SMP's EfficientNet taps need 7")
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        self._out_channels = [3, self.conv_stem.out_channels] + [_out_channels(self.blocks[end - 1]) for _, end in STAGES]

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Blocks that run at strides 16 and 32, for dilation."""
        return {16: [self.blocks[3:5]], 32: [self.blocks[5:]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        # Constant indices (not loops over STAGES) keep the forward scriptable with torch.jit.script.
        if self._depth >= 1:
            x = self.bn1(self.conv_stem(x))
            features.append(x)
        if self._depth >= 2:
            x = self.blocks[1](self.blocks[0](x))
            features.append(x)
        if self._depth >= 3:
            x = self.blocks[2](x)
            features.append(x)
        if self._depth >= 4:
            x = self.blocks[4](self.blocks[3](x))
            features.append(x)
        if self._depth >= 5:
            x = self.blocks[6](self.blocks[5](x))
            features.append(x)
        return features
