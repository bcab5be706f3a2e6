"""Convolution + normalisation + ReLU, the decoders' basic unit."""

from __future__ import annotations

from torch import nn

from specseg.blocks.norm import is_inplace_abn, make_norm
from specseg.spec.common import Norm


class Conv2dNormReLU(nn.Sequential):
    """``Conv2d -> norm -> ReLU`` with SMP's state-dict layout (indices 0, 1, 2).

    The convolution has a bias only when there is no normalisation, since a
    norm layer's shift makes a bias redundant. InPlaceABN fuses the
    activation, so the ReLU becomes an identity then.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        stride: int = 1,
        norm: Norm = "batchnorm",
    ) -> None:
        norm_layer = make_norm(norm, out_channels)
        conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            bias=isinstance(norm_layer, nn.Identity),
        )
        act: nn.Module = nn.Identity() if is_inplace_abn(norm_layer) else nn.ReLU(inplace=True)
        super().__init__(conv, norm_layer, act)
