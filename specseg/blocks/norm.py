"""Normalisation layers from a spec's ``norm`` value."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from specseg.spec.common import (
    BatchNormOptions,
    GroupNormOptions,
    IdentityNormOptions,
    InPlaceNormOptions,
    InstanceNormOptions,
    LayerNormOptions,
    Norm,
    norm_options,
)


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each pixel of an (N, C, H, W) tensor.

    ``nn.LayerNorm(C)`` applied to NCHW would normalise over the width
    instead; this one moves channels last for the computation.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def make_norm(norm: Norm, channels: int) -> nn.Module:
    """The normalisation layer for ``channels`` described by a spec's ``norm`` value."""
    options = norm_options(norm)
    if isinstance(options, BatchNormOptions):
        return nn.BatchNorm2d(
            channels,
            eps=options.eps,
            momentum=options.momentum,
            affine=options.affine,
            track_running_stats=options.track_running_stats,
        )
    if isinstance(options, LayerNormOptions):
        return LayerNorm2d(channels, eps=options.eps, elementwise_affine=options.elementwise_affine, bias=options.bias)
    if isinstance(options, InstanceNormOptions):
        return nn.InstanceNorm2d(
            channels,
            eps=options.eps,
            momentum=options.momentum,
            affine=options.affine,
            track_running_stats=options.track_running_stats,
        )
    if isinstance(options, GroupNormOptions):
        return nn.GroupNorm(options.num_groups, channels, eps=options.eps, affine=options.affine)
    if isinstance(options, IdentityNormOptions):
        return nn.Identity()
    assert isinstance(options, InPlaceNormOptions)
    try:
        from inplace_abn import InPlaceABN  # type: ignore[import-not-found]
    except ImportError:
        from specseg.errors import SpecError, SpecIssue

        # A spec problem (located at decoder.norm by the builder), not a crash: only decoders take a norm.
        raise SpecError(
            [SpecIssue("norm 'inplace' needs the inplace_abn package: pip install inplace_abn --no-build-isolation", ("decoder", "norm"))]
        ) from None
    return InPlaceABN(
        channels,
        activation=options.activation,
        activation_param=options.activation_param,
        eps=options.eps,
        momentum=options.momentum,
    )


def is_inplace_abn(module: nn.Module) -> bool:
    """Whether ``module`` is an InPlaceABN layer (which applies its own activation)."""
    return type(module).__name__ == "InPlaceABN"
