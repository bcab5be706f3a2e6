"""Xception (Chollet, 2017) on timm's ``legacy_xception``, with SMP's feature taps and state-dict layout.

timm's ``legacy_xception`` is Cadene's network with Cadene's (and so SMP's)
parameter names. As SMP does, the two stem convolutions are padded so the
stride-2 feature is exactly half the input, and the features are the stem's
ReLU output, the outputs of blocks 1, 2 and 11 (before the next block's
ReLU) and ``bn4`` (before the final ReLU). Xception downsamples with max-pooling
inside its blocks, so it cannot be dilated (SMP refuses too).
"""

from __future__ import annotations

import torch

from specseg.encoders.timm_body import TimmBodyEncoder, create_timm_model


class XceptionEncoder(TimmBodyEncoder):
    """timm's ``legacy_xception`` returning SMP's Xception features (keys ``conv1``, ``block1..12``, ``conv3/4``, ``bn1..4``)."""

    classifier_keys = ("fc.weight", "fc.bias")
    dilation_refused = "Xception downsamples with max-pooling layers"

    def __init__(self, model: str = "legacy_xception", depth: int = 5, output_stride: int = 32) -> None:
        super().__init__(depth)
        net = create_timm_model(model)
        self._adopt(net, drop=("act4", "global_pool", "fc"))
        self.conv1.padding = (1, 1)
        self.conv2.padding = (1, 1)
        self._out_channels = [3, self.bn2.num_features, _block_channels(self.block1), _block_channels(self.block2), _block_channels(self.block11), self.bn4.num_features]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        features = [x]
        if self._depth >= 1:
            x = self.act1(self.bn1(self.conv1(x)))
            x = self.act2(self.bn2(self.conv2(x)))
            features.append(x)
        if self._depth >= 2:
            x = self.block1(x)
            features.append(x)
        if self._depth >= 3:
            x = self.block2(x)
            features.append(x)
        if self._depth >= 4:
            # The middle flow written out: TorchScript cannot iterate a tuple of different modules.
            x = self.block3(x)
            x = self.block4(x)
            x = self.block5(x)
            x = self.block6(x)
            x = self.block7(x)
            x = self.block8(x)
            x = self.block9(x)
            x = self.block10(x)
            x = self.block11(x)
            features.append(x)
        if self._depth >= 5:
            x = self.act3(self.bn3(self.conv3(self.block12(x))))
            x = self.bn4(self.conv4(x))
            features.append(x)
        return features


def _block_channels(block: torch.nn.Module) -> int:
    # A block's output channels: those of its last batch norm (the residual branch's).
    norms = [m for m in block.rep.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return norms[-1].num_features
