"""``tu-<name>``: any timm model with ``features_only`` support, under the encoder contract.

timm models come in three feature layouts, told apart by their reductions:

* CNN style, first feature at stride 2 (ResNet, EfficientNet, ...);
* transformer style, first feature at stride 4 (Swin, ConvNeXt, MiT, ...):
  the missing stride-2 stage becomes an empty 0-channel map, as in SMP, so
  decoders see the same number of features whatever the backbone;
* VGG style, whose first feature is at stride 1.

The state-dict layout (``model.<timm keys>``) equals SMP's ``tu-`` encoders.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _probe_reductions(name: str) -> tuple[list[int], bool]:
    """Feature reductions and NHWC flag of a timm model, built without allocating weights."""
    import timm

    with torch.device("meta"):
        probe = timm.create_model(name, features_only=True, pretrained=False)
    return list(probe.feature_info.reduction()), getattr(probe, "output_fmt", None) == "NHWC"


class TimmUniversalEncoder(nn.Module):
    """A timm ``features_only`` model exposing the specseg encoder contract."""

    def __init__(
        self,
        name: str,
        depth: int = 5,
        output_stride: int = 32,
        in_channels: int = 3,
        pretrained: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        if not 1 <= depth <= 5:
            raise ValueError(f"encoder depth must be 1..5, got {depth}")
        reserved = {"features_only", "out_indices", "in_chans", "output_stride", "pretrained"} & set(kwargs)
        if reserved:
            raise ValueError(f"encoder.params may not set {sorted(reserved)}; they come from the spec")
        self.name = name
        reductions, self._channels_last = _probe_reductions(name)
        stages = len(reductions)
        if reductions == [2 ** (i + 2) for i in range(stages)]:
            style = "transformer"
        elif reductions == [2 ** (i + 1) for i in range(stages)]:
            style = "cnn"
        elif reductions == [2**i for i in range(stages)]:
            style = "vgg"
        else:
            raise ValueError(f"timm model {name!r} has feature strides {reductions}, which no decoder can use")
        if style == "transformer" and depth < 2:
            raise ValueError(
                f"timm model {name!r} has no features at stride 2; use encoder.depth 2..5 (its first features are at stride 4)"
            )
        if style == "transformer":
            # tresnet's first timm feature is at stride 2 in name only; SMP skips it too.
            start = 1 if "tresnet" in name else 0
            indices = tuple(range(start, start + depth - 1))
        elif style == "vgg":
            indices = tuple(range(depth + 1))
        else:
            start = 1 if "dla" in name else 0
            indices = tuple(range(start, start + depth))
        needed = max(indices, default=-1) + 1
        if needed > stages:
            raise ValueError(f"timm model {name!r} has {stages} feature stages; encoder.depth {depth} needs {needed}")
        create_kwargs: dict[str, Any] = dict(features_only=True, in_chans=in_channels, out_indices=indices, **kwargs)
        if output_stride != 32:
            create_kwargs["output_stride"] = output_stride
        if isinstance(pretrained, str):
            create_kwargs["pretrained"] = True
            create_kwargs["pretrained_cfg_overlay"] = {"file": pretrained}
        else:
            create_kwargs["pretrained"] = bool(pretrained)
        self._style = style
        self.model = timm.create_model(name, **create_kwargs)
        channels = list(self.model.feature_info.channels())
        if style == "transformer":
            self._out_channels = [in_channels, 0] + channels
        elif style == "vgg":
            self._out_channels = channels
        else:
            self._out_channels = [in_channels] + channels
        self._depth = depth
        self._in_channels = in_channels
        self._output_stride = output_stride

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned feature map (0 for the empty stride-2 map of transformers)."""
        return list(self._out_channels)

    @property
    def depth(self) -> int:
        """Number of downsampling stages used."""
        return self._depth

    @property
    def in_channels(self) -> int:
        """Channels of the input image."""
        return self._in_channels

    @property
    def output_stride(self) -> int:
        """Stride of the deepest feature map."""
        return min(self._output_stride, 2**self._depth)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` NCHW feature maps, the first being ``x``."""
        features = self.model(x)
        if self._channels_last:
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]
        if self._style == "transformer":
            n, _, h, w = x.shape
            features = [torch.empty((n, 0, h // 2, w // 2), dtype=x.dtype, device=x.device)] + features
        if self._style != "vgg":
            features = [x] + features
        return features
