"""PSPNet decoder (Zhao et al., 2017), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.blocks.conv import Conv2dNormReLU
from specseg.spec.common import Norm
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.pspnet import PSP_POOL_SIZES, PSPNetDecoderSpec
from specseg.spec.model import ModelSpec


class PSPBlock(nn.Module):
    """One pyramid level: adaptive average pool to ``pool_size``, 1x1 conv-norm-ReLU, resize back."""

    def __init__(self, in_channels: int, out_channels: int, pool_size: int, norm: Norm = "batchnorm") -> None:
        super().__init__()
        if pool_size == 1:
            # Normalising a single pixel is undefined (BatchNorm refuses it in
            # training), so the global branch has none and its conv gets a bias.
            norm = "identity"
        self.pool_size = pool_size
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(output_size=(pool_size, pool_size)),
            Conv2dNormReLU(in_channels, out_channels, kernel_size=1, norm=norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        onnx_export = False
        # A static check TorchScript folds: torch.onnx.is_in_onnx_export cannot be scripted.
        if not torch.jit.is_scripting():
            onnx_export = torch.onnx.is_in_onnx_export()
        if onnx_export:
            # ONNX exporters handle adaptive pooling poorly; area resizing computes the same averages.
            pooled = self.pool[1](F.interpolate(x, size=(self.pool_size, self.pool_size), mode="area"))
        else:
            pooled = self.pool(x)
        return F.interpolate(pooled, size=size, mode="bilinear", align_corners=True)


class PSPModule(nn.Module):
    """The pyramid: one :class:`PSPBlock` per pool size, concatenated with the input."""

    def __init__(self, in_channels: int, pool_sizes: Sequence[int] = (1, 2, 3, 6), norm: Norm = "batchnorm") -> None:
        super().__init__()
        branch_channels = in_channels // len(pool_sizes)
        self.blocks = nn.ModuleList(PSPBlock(in_channels, branch_channels, size, norm=norm) for size in pool_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([block(x) for block in self.blocks] + [x], dim=1)


class PSPDecoder(Decoder):
    """Pyramid pooling on the deepest features, a 1x1 fusion conv-norm-ReLU, then Dropout2d.

    The output keeps the deepest feature map's resolution; the segmentation
    head upsamples it.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        out_channels: int = 512,
        norm: Norm = "batchnorm",
        dropout: float = 0.2,
        pool_sizes: Sequence[int] = (1, 2, 3, 6),
    ) -> None:
        super().__init__()
        deepest = int(encoder_channels[-1])
        self.psp = PSPModule(deepest, pool_sizes=pool_sizes, norm=norm)
        # SMP sizes the fusion input as twice the deepest channels, which is exact
        # when the channels divide by the number of pyramid levels.
        self.conv = Conv2dNormReLU(deepest * 2, out_channels, kernel_size=1, norm=norm)
        self.dropout = nn.Dropout2d(p=dropout)
        self.out_channels = int(out_channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.dropout(self.conv(self.psp(features[-1])))


@register_decoder(PSPNetDecoderSpec)
def build_pspnet(section: PSPNetDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> PSPDecoder:
    """The PSPNet decoder of a section (its rules on the encoder's channels passed: ArchitectureBuild.build_decoder)."""
    return PSPDecoder(
        encoder_channels=encoder.out_channels,
        out_channels=section.out_channels,
        norm=section.norm,
        dropout=section.dropout,
        pool_sizes=PSP_POOL_SIZES,
    )
