"""FPN decoder (Lin et al., 2017; Kirillov et al.'s semantic FPN), with SMP 0.6's state-dict layout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.spec.decoders.fpn import FPNDecoderSpec
from specseg.spec.model import ModelSpec


class Conv3x3GroupNormReLU(nn.Module):
    """``Conv2d(3x3, no bias) -> GroupNorm -> ReLU`` under ``.block``, then optional bilinear x2."""

    def __init__(self, in_channels: int, out_channels: int, upsample: bool = False, groups: int = 32) -> None:
        super().__init__()
        self.upsample = upsample
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        return x


class FPNTopDownBlock(nn.Module):
    """One top-down step: upsample the coarser level x2 and add the 1x1-projected skip."""

    def __init__(self, pyramid_channels: int, skip_channels: int, interpolation: str = "nearest") -> None:
        super().__init__()
        self.interpolation = interpolation
        self.skip_conv = nn.Conv2d(skip_channels, pyramid_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode=self.interpolation)
        return x + self.skip_conv(skip)


class FPNSegmentationBranch(nn.Module):
    """3x3 conv-GroupNorm-ReLU layers taking one pyramid level to the finest level's resolution.

    ``upsamples`` layers each end with a bilinear x2; a level already at
    the finest resolution gets a single layer without upsampling.
    """

    def __init__(self, in_channels: int, out_channels: int, upsamples: int = 0) -> None:
        super().__init__()
        layers = [Conv3x3GroupNormReLU(in_channels, out_channels, upsample=upsamples > 0)]
        layers += [Conv3x3GroupNormReLU(out_channels, out_channels, upsample=True) for _ in range(upsamples - 1)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class FPNMerge(nn.Module):
    """Merge the branch outputs: ``add`` sums them, ``cat`` concatenates their channels."""

    def __init__(self, policy: str = "add") -> None:
        super().__init__()
        if policy not in ("add", "cat"):
            raise ValueError(f"merge policy must be 'add' or 'cat', got {policy!r}")
        self.policy = policy

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        if self.policy == "add":
            # Added one by one, in order: bit for bit what SMP's torch.stack(maps).sum(dim=0) gives,
            # without copying every map into a stack first or reducing across it, which is 15-45x slower
            # (and returns a contiguous map for channels_last inputs).
            total = maps[0] + maps[1] if len(maps) > 1 else maps[0]
            for m in maps[2:]:
                total.add_(m)  # a fresh tensor: the in-place sum overwrites no input
            return total
        return torch.cat(maps, dim=1)


class FPNDecoder(Decoder):
    """The FPN decoder over the last four encoder maps (``p5`` coarsest ... ``p2`` finest).

    ``encoder_channels`` lists the encoder's maps, the first being the
    input; with depth 3 the input itself is the finest pyramid level.
    ``out_channels`` is ``segmentation_channels``, or four times it for
    ``cat``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        pyramid_channels: int = 256,
        segmentation_channels: int = 128,
        merge_policy: str = "add",
        dropout: float = 0.2,
        interpolation: str = "nearest",
    ) -> None:
        super().__init__()
        if len(encoder_channels) < 4:
            raise ValueError(f"FPN needs an encoder depth of at least 3, got {len(encoder_channels) - 1}")
        c2, c3, c4, c5 = list(encoder_channels)[-4:]
        self.p5 = nn.Conv2d(c5, pyramid_channels, kernel_size=1)
        self.p4 = FPNTopDownBlock(pyramid_channels, c4, interpolation)
        self.p3 = FPNTopDownBlock(pyramid_channels, c3, interpolation)
        self.p2 = FPNTopDownBlock(pyramid_channels, c2, interpolation)
        self.seg_blocks = nn.ModuleList(
            FPNSegmentationBranch(pyramid_channels, segmentation_channels, upsamples) for upsamples in (3, 2, 1, 0)
        )
        self.merge = FPNMerge(merge_policy)
        self.dropout = nn.Dropout2d(p=dropout, inplace=True)
        self.out_channels = segmentation_channels * (4 if merge_policy == "cat" else 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        c2, c3, c4, c5 = features[-4:]
        p5 = self.p5(c5)
        p4 = self.p4(p5, c4)
        p3 = self.p3(p4, c3)
        p2 = self.p2(p3, c2)
        branches = [branch(p) for branch, p in zip(self.seg_blocks, (p5, p4, p3, p2))]
        del p5, p4, p3, p2  # freed before the merge, so that its output can take their memory
        return self.dropout(self.merge(branches))


@register_decoder(FPNDecoderSpec)
def build_fpn(section: FPNDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> FPNDecoder:
    """The FPN decoder of a section; its pyramid reads the last four encoder maps."""
    return FPNDecoder(
        encoder_channels=encoder.out_channels,
        pyramid_channels=section.pyramid_channels,
        segmentation_channels=section.segmentation_channels,
        merge_policy=section.merge_policy,
        dropout=section.dropout,
        interpolation=section.interpolation,
    )
