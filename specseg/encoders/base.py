"""The encoder contract, and :class:`EncoderMixin`, the base every encoder satisfies.

An encoder is an ``nn.Module`` deriving from :class:`EncoderMixin` that declares
``feature_info``, a :class:`~specseg.encoders.features.FeatureInfo`: the
channels, stride and layout of each of the ``depth + 1`` maps its
``forward(x)`` returns (the first being ``x`` itself). ``out_channels``,
``depth``, ``in_channels`` and ``output_stride`` are read from that record.

Encoders written against SMP's ``EncoderMixin`` keep working unchanged: they
set ``_out_channels`` (channels for depth 5, the first the input's),
``_depth`` and ``_in_channels`` (and ``_output_stride`` once dilated), and
the record is derived from them, with strides ``min(2 ** i, output_stride)``.
An encoder whose strides differ declares ``_feature_strides`` (for depth 5),
or overrides :attr:`EncoderMixin.feature_info`.

:func:`specseg.testing.check_encoder` verifies the declaration against a
real forward pass: channels, and strides for the input size.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specseg.encoders.features import UNDILATED_OUTPUT_STRIDE, FeatureInfo, FeatureLayout

class EncoderMixin:
    """The encoder base (``class MyEncoder(nn.Module, EncoderMixin)``): the declared features and dilation.

    A subclass sets ``_out_channels`` (channels for depth 5, first = input
    channels), ``_depth`` and ``_in_channels``, and optionally
    ``_output_stride`` and ``_feature_strides``; it implements ``get_stages``
    to support dilation. ``classifier_keys`` are state-dict keys of
    classification checkpoints that the encoder does not have (dropped when
    loading pretrained weights).
    """

    _out_channels: list[int]
    _depth: int = 5
    _in_channels: int = 3
    _output_stride: int = UNDILATED_OUTPUT_STRIDE
    #: Strides of the depth-5 maps when they are not ``min(2 ** i, output_stride)``.
    _feature_strides: Sequence[int] | None = None
    #: The first map's layout: the input itself, or (VGG) a stage that keeps the resolution.
    _first_layout: FeatureLayout = "input"
    #: Keys of classification checkpoints (timm, torchvision) that the encoder does not use.
    classifier_keys: tuple[str, ...] = ()
    #: Python-side declarations that torch.jit.script must not compile (a scripted forward never reads them).
    __jit_unused_properties__ = ["feature_info", "out_channels", "depth", "in_channels", "output_stride"]

    @property
    def feature_info(self) -> FeatureInfo:
        """The declared maps (channels, strides, layouts); raises EncoderContractError when inconsistent."""
        count = self._depth + 1
        strides = None if self._feature_strides is None else list(self._feature_strides)[:count]
        return FeatureInfo.pyramid(
            list(self._out_channels)[:count], self._depth, self._output_stride, strides, first=self._first_layout
        )

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned feature map, ``depth + 1`` entries."""
        return self.feature_info.channels

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
        return self.feature_info.output_stride

    def set_in_channels(self, in_channels: int, pretrained: bool = True) -> None:
        """Adapt the first convolution to ``in_channels`` input channels."""
        if in_channels == self._in_channels:
            return
        patch_first_conv(self, in_channels, self._in_channels, pretrained=pretrained)  # type: ignore[arg-type]
        if self._out_channels[0] == self._in_channels:
            self._out_channels = [in_channels] + list(self._out_channels[1:])
        self._in_channels = in_channels

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """Modules that run at each stride, for dilation: ``{16: [...], 32: [...]}``."""
        raise NotImplementedError(f"{type(self).__name__} does not support output_stride < 32")

    def make_dilated(self, output_stride: int) -> None:
        """Replace strides by dilation in the stages deeper than ``output_stride``."""
        if output_stride not in DILATED_OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be 8 or 16 to dilate, got {output_stride}")
        for stage_stride, modules in self.get_stages().items():
            if stage_stride > output_stride:
                for module in modules:
                    dilate_convolutions(module, stage_stride // output_stride)
        self._output_stride = output_stride


#: Output strides an encoder can be dilated to.
DILATED_OUTPUT_STRIDES = (8, 16)


def patch_first_conv(model: nn.Module, new_in_channels: int, default_in_channels: int = 3, pretrained: bool = True) -> None:
    """Give the first convolution ``new_in_channels`` inputs.

    Random weights are re-initialised; pretrained ones are adapted the way
    timm and SMP do it: summed for one channel, cycled and rescaled for more.
    """
    conv = next(
        (m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == default_in_channels),
        None,
    )
    if conv is None:
        raise ValueError(f"no convolution with {default_in_channels} input channels to adapt")
    weight = conv.weight.detach()
    conv.in_channels = new_in_channels
    shape = (conv.out_channels, new_in_channels // conv.groups, *conv.kernel_size)
    if not pretrained:
        conv.weight = nn.Parameter(torch.empty(shape, dtype=weight.dtype, device=weight.device))
        conv.reset_parameters()
    elif new_in_channels == 1:
        conv.weight = nn.Parameter(weight.sum(1, keepdim=True))
    else:
        index = torch.arange(new_in_channels, device=weight.device) % default_in_channels
        new_weight = weight[:, index] * (default_in_channels / new_in_channels)
        conv.weight = nn.Parameter(new_weight)


def dilate_convolutions(module: nn.Module, rate: int, *, keep_size: bool = False) -> None:
    """Turn every convolution in ``module`` into a stride-1 convolution dilated by ``rate``.

    The padding is SMP's, ``(k // 2) * rate``: encoders that are SMP's networks
    need it to keep SMP's numbers (MiT's even-kernel attention reductions, whose
    key/value maps grow by ``rate``). ``keep_size=True`` pads ``rate * (k - 1) // 2``
    instead, which keeps the map size for even kernels too (a 2x2
    patch-merging convolution of a timm model specseg dilates itself). Both
    agree for odd kernels.
    """
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            conv.stride = (1, 1)
            conv.dilation = (rate, rate)
            kh, kw = conv.kernel_size
            if keep_size:
                conv.padding = (rate * (kh - 1) // 2, rate * (kw - 1) // 2)
            else:
                conv.padding = ((kh // 2) * rate, (kw // 2) * rate)
