"""Dual Path Networks (Chen et al., 2017) on timm's ``dpn*``, with SMP's feature taps and state-dict layout.

timm's DPN has Cadene's (and so SMP's) parameter names (``features.conv1_1``
... ``features.conv5_bn_ac``). timm carries a block's residual and dense
paths as one concatenated tensor, in the order SMP concatenates them, so
SMP's features are: the stem after its ReLU (stride 2), the ReLU of each of
stages 2..4's concatenated output (strides 4..16; the ReLU is SMP's, the
network itself continues from the un-activated tensor) and the output of
``conv5_bn_ac`` (stride 32). Stages 4 and 5 downsample with strided
convolutions, so output strides 16 and 8 dilate them, as SMP does.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.scripting import RefusesScripting
from specseg.encoders.timm_body import TimmBodyEncoder, create_timm_model


class DPNEncoder(RefusesScripting, TimmBodyEncoder):
    """timm's ``dpn68``/``68b``/``92``/``98``/``107``/``131`` (``model``) returning SMP's DPN features."""

    # timm's DPN blocks keep tuple-or-tensor state that TorchScript cannot type (SMP's DPN is not scriptable either).
    script_refusal = "a DPN encoder"

    classifier_keys = ("last_linear.weight", "last_linear.bias", "classifier.weight", "classifier.bias")

    def __init__(self, model: str, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__(depth)
        net = create_timm_model(model)
        self._adopt(net, drop=("global_pool", "classifier", "flatten"))
        names = [name for name, _ in self.features.named_children()]
        # Where each stage starts in `features`: the stem (conv1_*), then the blocks named conv2_* .. conv5_*.
        starts = [names.index(next(n for n in names if n.startswith(f"conv{s}_"))) for s in (2, 3, 4, 5)]
        self._bounds = (starts[0], starts[1], starts[2], starts[3], len(names))
        self._out_channels = [3, self.features[0].bn.num_features] + [self._stage_channels(i) for i in range(4)]

    def _stage_channels(self, stage: int) -> int:
        # Channels leaving stage 2+stage: what the next block's (or conv5_bn_ac's) first norm takes in.
        following = self.features[self._bounds[stage + 1]] if stage < 3 else None
        if following is None:
            return self.features[-1].bn.num_features
        return following.c1x1_a.bn.num_features

    def _run(self, start: int, end: int, x: torch.Tensor) -> torch.Tensor:
        for i in range(start, end):
            x = self.features[i](x)
        return x

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """The stride-16 and stride-32 stages, for dilation (SMP's split)."""
        b = self._bounds
        return {16: [self.features[i] for i in range(b[2], b[3])], 32: [self.features[i] for i in range(b[3], b[4])]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` feature maps, from the input down to stride 2**depth."""
        b = self._bounds
        features = [x]
        if self._depth >= 1:
            x = self._run(0, 1, x)
            features.append(x)
        for level in range(2, min(self._depth, 4) + 1):
            # The stem's pooling runs with stage 2; SMP's feature is the ReLU of the concatenated paths.
            x = self._run(1 if level == 2 else b[level - 2], b[level - 1], x)
            features.append(F.relu(x))
        if self._depth >= 5:
            features.append(self._run(b[3], b[4], x))
        return features
