"""U-Net++ decoder (Zhou et al., 2018), with SMP 0.6's state-dict layout.

The decoder is a grid of nodes ``x_{i}_{j}``: column ``j`` (0 = deepest
skip level) and row ``i`` (0 = the main path whose widths are the decoder
channels). Node ``(i, j)`` upsamples its input (the encoder feature of
level ``j`` when ``i == j``, else node ``(i, j - 1)``) by 2 and concatenates
the nodes ``(k, j)`` for ``k > i`` and the encoder skip of level ``j + 1``.
A last node ``x_0_{depth-1}`` has no skip and gives the output.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.blocks.attention import Attention
from specseg.blocks.conv import Conv2dNormReLU
from specseg.decoders.unet import UnetCenterBlock
from specseg.spec.common import Norm
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.encoders.families import VGG, family_of
from specseg.spec.decoders.unetplusplus import UnetPlusPlusDecoderSpec
from specseg.scripting import RefusesScripting
from specseg.spec.model import ModelSpec


class UnetPlusPlusNode(nn.Module):
    """Upsample x2, concatenate the skips, two 3x3 conv-norm-ReLU, with optional attention.

    A node with ``out_channels == 0`` (fed by the empty stride-2 level of a
    transformer-style encoder) has no layers and returns an empty map of
    the upsampled size.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        norm: Norm = "batchnorm",
        attention: str | None = None,
        interpolation: str = "nearest",
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.interpolation = interpolation
        if out_channels == 0:
            return
        self.conv1 = Conv2dNormReLU(in_channels + skip_channels, out_channels, 3, padding=1, norm=norm)
        self.attention1 = Attention(attention, in_channels + skip_channels)
        self.conv2 = Conv2dNormReLU(out_channels, out_channels, 3, padding=1, norm=norm)
        self.attention2 = Attention(attention, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """``skip`` is one tensor or a list of them, concatenated after ``x`` in that order."""
        x = F.interpolate(x, scale_factor=2.0, mode=self.interpolation)
        if self.out_channels == 0:
            return x.new_empty(x.shape[0], 0, x.shape[2], x.shape[3])
        if skip is not None:
            skips = [skip] if isinstance(skip, torch.Tensor) else list(skip)
            x = torch.cat([x, *skips], dim=1)
            x = self.attention1(x)
        # One call per line: each map is freed as soon as the next exists, not kept through conv2.
        x = self.conv1(x)
        x = self.conv2(x)
        return self.attention2(x)


class UnetPlusPlusDecoder(RefusesScripting, Decoder):
    """The nested U-Net++ decoder over ``depth`` encoder stages (``depth >= 2``).

    ``encoder_channels`` has depth + 1 entries, the first being the input
    (never used as a skip); ``decoder_channels`` has depth entries, the
    widths of the row-0 nodes. Nodes of rows ``i > 0`` in column ``j`` take
    the width of the encoder skip they are aligned with.
    """

    # Its nodes are found by computed names (as in SMP, whose U-Net++ is not scriptable either).
    script_refusal = "a U-Net++ decoder"

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        norm: Norm = "batchnorm",
        attention: str | None = None,
        interpolation: str = "nearest",
        center: bool = False,
    ) -> None:
        super().__init__()
        depth = len(decoder_channels)
        if depth != len(encoder_channels) - 1:
            raise ValueError(f"{depth} decoder channels for an encoder of depth {len(encoder_channels) - 1}")
        if depth < 2:
            raise ValueError("U-Net++ needs an encoder depth of at least 2")
        deepest_first = list(encoder_channels[1:])[::-1]
        head = deepest_first[0]
        # Row-0 inputs: the deepest feature, then each previous row-0 output.
        row0_in = [head] + list(decoder_channels[:-1])
        # The skip width aligned with each column (the last column has none).
        skip = deepest_first[1:] + [0]
        # SMP gives VGG encoders a center block but its forward never uses it;
        # it is kept for state-dict compatibility and skipped in forward.
        self.center: nn.Module = UnetCenterBlock(head, norm) if center else nn.Identity()
        options = dict(norm=norm, attention=attention, interpolation=interpolation)
        nodes: dict[str, nn.Module] = {}
        for j in range(depth - 1):
            for i in range(j + 1):
                # Node (i, j) concatenates j - i + 1 maps of the column's skip width.
                skip_in = skip[j] * (j - i + 1)
                if i == 0:
                    node = UnetPlusPlusNode(row0_in[j], skip_in, decoder_channels[j], **options)
                else:
                    node = UnetPlusPlusNode(skip[j - 1], skip_in, skip[j], **options)
                nodes[f"x_{i}_{j}"] = node
        nodes[f"x_0_{depth - 1}"] = UnetPlusPlusNode(row0_in[-1], 0, decoder_channels[-1], **options)
        self.blocks = nn.ModuleDict(nodes)
        self.depth = depth
        self.out_channels = int(decoder_channels[-1])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # Deepest first; the input itself is never a skip. ``self.center`` is
        # deliberately not applied: SMP 0.6 builds it but never calls it.
        levels = features[1:][::-1]
        nodes: dict[tuple[int, int], torch.Tensor] = {}
        for j in range(self.depth - 1):
            # Deeper rows first: node (i, j) needs every node (k, j) with k > i.
            for i in range(j, -1, -1):
                x = levels[j] if i == j else nodes[(i, j - 1)]
                skips = [nodes[(k, j)] for k in range(i + 1, j + 1)] + [levels[j + 1]]
                # The node concatenates the upsampled input and all skips at once (one copy, not two).
                nodes[(i, j)] = self.blocks[f"x_{i}_{j}"](x, skips)
        return self.blocks[f"x_0_{self.depth - 1}"](nodes[(0, self.depth - 2)])


@register_decoder(UnetPlusPlusDecoderSpec)
def build_unetplusplus(section: UnetPlusPlusDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> UnetPlusPlusDecoder:
    """The U-Net++ decoder of a section; SMP adds the center block for VGG encoders."""
    return UnetPlusPlusDecoder(
        encoder_channels=encoder.out_channels,
        decoder_channels=section.channels,
        norm=section.norm,
        attention=section.attention,
        interpolation=section.interpolation,
        center=family_of(spec.encoder.name) == VGG,
    )
