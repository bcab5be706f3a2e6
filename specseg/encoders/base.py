"""The encoder contract, and :class:`EncoderMixin` which implements most of it.

An encoder is an ``nn.Module`` that exposes:

* ``out_channels``: ``depth + 1`` channel counts, the first being ``in_channels``;
  a stage that does not exist in the network (a transformer's stride-2 stage)
  reports 0 channels and yields an empty (N, 0, H/2, W/2) tensor;
* ``depth``, ``in_channels`` and ``output_stride`` (the deepest feature's stride,
  ``min(requested output stride, 2 ** depth)``);
* ``forward(x)`` returning ``depth + 1`` NCHW feature maps, the i-th at stride
  ``min(2 ** i, output_stride)``, the first being ``x`` itself.

:func:`specseg.testing.check_encoder` verifies all of it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class EncoderMixin:
    """Contract helpers for encoder classes (``class MyEncoder(nn.Module, EncoderMixin)``).

    A subclass sets ``_out_channels`` (channels for depth 5, first = input
    channels), ``_depth`` and ``_in_channels``, and optionally
    ``_output_stride``; it implements ``get_stages`` to support dilation.
    """

    _out_channels: list[int]
    _depth: int = 5
    _in_channels: int = 3
    _output_stride: int = 32

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned feature map, ``depth + 1`` entries."""
        return list(self._out_channels[: self._depth + 1])

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
        return min(getattr(self, "_output_stride", 32), 2**self._depth)

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
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16 to dilate, got {output_stride}")
        for stage_stride, modules in self.get_stages().items():
            if stage_stride > output_stride:
                for module in modules:
                    dilate_convolutions(module, stage_stride // output_stride)
        self._output_stride = output_stride


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


def dilate_convolutions(module: nn.Module, rate: int) -> None:
    """Turn every convolution in ``module`` into a stride-1 convolution dilated by ``rate``."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            conv.stride = (1, 1)
            conv.dilation = (rate, rate)
            kh, kw = conv.kernel_size
            # rate * (k - 1) // 2 keeps the size for even kernels too (a 2x2 patch-merging convolution);
            # for odd kernels it equals SMP's (k // 2) * rate.
            conv.padding = (rate * (kh - 1) // 2, rate * (kw - 1) // 2)
