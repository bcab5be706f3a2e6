"""SegFormer's all-MLP decoder (Xie et al., 2021), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.blocks.conv import Conv2dNormReLU
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.segformer import SegformerDecoderSpec
from specseg.spec.model import ModelSpec


class SegformerMLP(nn.Module):
    """A per-pixel linear projection of an (N, C, H, W) map to ``out_channels`` channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        # Pixels as rows for the linear layer: a channels_last map already is that, a view; else a copy.
        if x.is_contiguous(memory_format=torch.channels_last):
            y = self.linear(x.permute(0, 2, 3, 1))
        else:
            y = self.linear(x.flatten(2).transpose(1, 2)).view(n, h, w, -1)
        # The (N, H, W, C) rows seen as an (N, C, H, W) map with true channels_last strides, also for
        # N = 1 (SMP's reshape gives that batch an odd stride, which sends the next resize to a copy
        # and a slower kernel). The same values, bit for bit.
        return y.permute(0, 3, 1, 2)


class SegformerDecoder(Decoder):
    """Project every encoder feature to ``channels``, resize all to stride 4, concatenate, fuse.

    Every feature except the input image is used, deepest first; an empty
    (0-channel) stride-2 feature of a transformer-style encoder is skipped.
    The fusion is a batch-normalised 1x1 conv-ReLU, as in SMP.
    """

    def __init__(self, encoder_channels: Sequence[int], channels: int = 256) -> None:
        super().__init__()
        if len(encoder_channels) < 4:
            raise ValueError(f"Segformer needs an encoder of depth 3 or more, got {len(encoder_channels) - 1}")
        self.skip_empty = int(encoder_channels[1]) == 0
        used = [int(c) for c in encoder_channels[2 if self.skip_empty else 1 :]]
        self.mlp_stage = nn.ModuleList(SegformerMLP(c, channels) for c in used[::-1])
        self.fuse_stage = Conv2dNormReLU(len(used) * channels, channels, 1, norm="batchnorm")
        self.out_channels = int(channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        h, w = features[0].shape[2], features[0].shape[3]
        # The target is a quarter of the input size (rounded down), whatever the encoder's strides.
        size = (h // 4, w // 4)
        used = features[2:] if self.skip_empty else features[1:]
        # Deepest first; an indexed loop because TorchScript cannot zip a ModuleList with a list.
        resized = []
        for i, mlp in enumerate(self.mlp_stage):
            resized.append(F.interpolate(mlp(used[len(used) - 1 - i]), size=size, mode="bilinear", align_corners=False))
        fused = torch.cat(resized, dim=1)
        del resized  # the four resized maps are not kept through the fusion convolution
        return self.fuse_stage(fused)


@register_decoder(SegformerDecoderSpec)
def build_segformer(section: SegformerDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> SegformerDecoder:
    """The SegFormer decoder of a section."""
    return SegformerDecoder(encoder_channels=encoder.out_channels, channels=section.segmentation_channels)
