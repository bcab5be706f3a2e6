"""DPT decoder and head (Ranftl et al., 2021), with SMP 0.6's state-dict layout.

DPT reads a plain ViT (:class:`specseg.encoders.timm_vit.TimmViTEncoder`):
every block's feature map is at the patch stride and may come with prefix tokens
(class, distillation or register tokens). Each feature is merged with its
prefix tokens (the readout), reassembled to stride 4, 8, 16, 32, ... and
the reassembled maps are fused from the deepest up, each fusion doubling
the resolution, so the output is at stride 2. DPT has its own segmentation
head, :class:`DPTSegmentationHead`.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from specseg.encoders.sizes import dpt_input_multiple

from specseg.blocks.activation import Activation
from specseg.capture import is_capturing
from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.encoders.base import EncoderMixin
from specseg.encoders.timm_vit import ViTFeatures
from specseg.spec.decoders.dpt import DPTDecoderSpec
from specseg.scripting import RefusesScripting
from specseg.spec.model import ModelSpec


class ReadoutConcatBlock(nn.Module):
    """Readout ``cat``: append the first prefix token to every patch token, then Linear + GELU.

    Without prefix tokens the projection still exists and maps the patch
    tokens alone (``embed_dim -> embed_dim``), as in SMP.
    """

    def __init__(self, embed_dim: int, has_prefix_tokens: bool) -> None:
        super().__init__()
        in_features = 2 * embed_dim if has_prefix_tokens else embed_dim
        self.project = nn.Sequential(nn.Linear(in_features, embed_dim), nn.GELU())

    def forward(self, x: torch.Tensor, prefix_tokens: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.reshape(n, c, h * w).transpose(1, 2)
        if prefix_tokens is not None:
            tokens = torch.cat([tokens, prefix_tokens[:, :1].expand_as(tokens)], dim=2)
        # Back to a map as a view with true channels_last strides (a reshape gives a batch of one an odd stride).
        return self.project(tokens).view(n, h, w, c).permute(0, 3, 1, 2)


class ReadoutAddBlock(nn.Module):
    """Readout ``add``: add the mean of the prefix tokens to every patch token."""

    def forward(self, x: torch.Tensor, prefix_tokens: torch.Tensor | None = None) -> torch.Tensor:
        if prefix_tokens is None:
            return x
        return x + prefix_tokens.mean(dim=1)[:, :, None, None]


class ReadoutIgnoreBlock(nn.Module):
    """Readout ``ignore``: the patch tokens as they are."""

    def forward(self, x: torch.Tensor, prefix_tokens: torch.Tensor | None = None) -> torch.Tensor:
        return x


class ReassembleBlock(nn.Module):
    """1x1 projection to ``mid_channels``, resampling by ``scale``, 3x3 projection to ``out_channels``.

    ``scale > 1`` upsamples with a transposed convolution (kernel = stride =
    scale), ``scale < 1`` downsamples with a strided 3x3 convolution, and
    ``scale == 1`` keeps the resolution.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, scale: float) -> None:
        super().__init__()
        self.project_to_out_channel = nn.Conv2d(in_channels, mid_channels, kernel_size=1)
        self.upsample: nn.Module
        if scale > 1:
            self.upsample = nn.ConvTranspose2d(mid_channels, mid_channels, kernel_size=int(scale), stride=int(scale))
        elif scale == 1:
            self.upsample = nn.Identity()
        else:
            self.upsample = nn.Conv2d(mid_channels, mid_channels, kernel_size=3, stride=int(1 / scale), padding=1)
        self.project_to_feature_dim = nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_to_out_channel(x)  # one call per line: each map is freed once the next exists
        x = self.upsample(x)
        return self.project_to_feature_dim(x)


class ResidualConvBlock(nn.Module):
    """Pre-activation residual unit: ``x + BN(conv(ReLU(BN(conv(ReLU(x))))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.batch_norm_1 = nn.BatchNorm2d(channels)
        self.conv_2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.batch_norm_2 = nn.BatchNorm2d(channels)
        # Not in place: the unit's input is still needed for the residual sum.
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.batch_norm_1(self.conv_1(self.activation(x)))
        y = self.batch_norm_2(self.conv_2(self.activation(y)))
        return x + y


class FusionBlock(nn.Module):
    """Residual unit, add the coarser fused map, residual unit, x2 bilinear upsampling, 1x1 projection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.residual_conv_block1 = ResidualConvBlock(channels)
        self.residual_conv_block2 = ResidualConvBlock(channels)
        self.project = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        x = self.residual_conv_block1(x)
        if previous is not None:
            x = x + previous
        x = self.residual_conv_block2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.project(x)


class DPTDecoder(RefusesScripting, Decoder):
    """The DPT decoder: readout, reassemble to strides 4, 8, 16, ..., fuse from the deepest up.

    ``encoder_channels`` and ``encoder_strides`` describe the ViT's block
    maps (one per used block, without the input map every encoder returns
    first); ``intermediate_channels`` has one entry per block map. Input height and width must be multiples of
    :attr:`input_multiple` so that consecutive reassembled maps differ by
    exactly a factor of two.
    """

    # SMP declares DPT not scriptable; specseg's reads ViT features with Python-side checks too.
    script_refusal = "a DPT decoder"

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_strides: Sequence[int],
        has_prefix_tokens: bool = True,
        readout: str = "cat",
        intermediate_channels: Sequence[int] = (256, 512, 1024, 1024),
        fusion_channels: int = 256,
    ) -> None:
        super().__init__()
        if not len(encoder_channels) == len(encoder_strides) == len(intermediate_channels):
            raise ValueError(
                f"DPT needs one intermediate channel count per encoder feature: {len(encoder_channels)} features, "
                f"{len(intermediate_channels)} intermediate_channels"
            )
        readouts = {
            "cat": lambda c: ReadoutConcatBlock(c, has_prefix_tokens),
            "add": lambda c: ReadoutAddBlock(),
            "ignore": lambda c: ReadoutIgnoreBlock(),
        }
        if readout not in readouts:
            raise ValueError(f"DPT readout must be 'cat', 'add' or 'ignore', got {readout!r}")
        self.projection_blocks = nn.ModuleList(readouts[readout](int(c)) for c in encoder_channels)
        # Feature i is reassembled to stride 2 ** (i + 2): 4, 8, 16, 32, ...
        self.reassemble_blocks = nn.ModuleList(
            ReassembleBlock(int(c), int(m), fusion_channels, stride / 2 ** (i + 2))
            for i, (c, m, stride) in enumerate(zip(encoder_channels, intermediate_channels, encoder_strides))
        )
        self.fusion_blocks = nn.ModuleList(FusionBlock(fusion_channels) for _ in encoder_channels)
        self.encoder_strides = [int(s) for s in encoder_strides]
        self.input_multiple = dpt_input_multiple(max(self.encoder_strides), len(self.encoder_strides))
        self.out_channels = int(fusion_channels)

    def check_feature_sizes(self, features: Sequence[torch.Tensor]) -> None:
        """Raise ``ValueError`` naming the valid input multiple when the fusion sizes cannot match (``features``: the block maps)."""
        h, w = (int(s) * self.encoder_strides[0] for s in features[0].shape[2:])
        if h % self.input_multiple or w % self.input_multiple:
            m = self.input_multiple
            raise ValueError(
                f"a DPT decoder reading {len(self.encoder_strides)} ViT features needs input height and width "
                f"that are multiples of {m}; got about {h}x{w}. Nearest valid sizes: "
                f"{max(m, h // m * m)}x{max(m, w // m * m)} or {-(-h // m) * m}x{-(-w // m) * m} (pad or resize the input)"
            )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Decode a ViT encoder's features (the input, then the block maps); prefix tokens come with :class:`ViTFeatures`."""
        # Feature 0 is the input image, which DPT does not read.
        tokens = features.prefix_tokens[1:] if isinstance(features, ViTFeatures) else [None] * (len(features) - 1)
        blocks = features[1:]
        if not is_capturing():
            self.check_feature_sizes(blocks)
        reassembled = [
            reassemble(readout(f, p))
            for readout, reassemble, f, p in zip(self.projection_blocks, self.reassemble_blocks, blocks, tokens)
        ]
        fused: torch.Tensor | None = None
        for block, feature in zip(self.fusion_blocks, reassembled[::-1]):
            fused = block(feature, fused)
        assert fused is not None
        return fused


class DPTSegmentationHead(nn.Module):
    """DPT's head: conv-BN-ReLU, dropout 0.1, 1x1 conv to classes, bilinear upsampling, activation.

    Keys ``head.0`` (conv), ``head.1`` (BatchNorm) and ``head.4`` (1x1 conv)
    follow SMP. The first convolution keeps the resolution for any odd
    ``kernel_size`` (SMP fixes it at 3).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: str | None = None,
        upsampling: int = 2,
    ) -> None:
        super().__init__()
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size=kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.1),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
        )
        self.activation = Activation(activation)
        self.upsampling = int(upsampling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        if self.upsampling > 1:
            x = F.interpolate(x, scale_factor=self.upsampling, mode="bilinear", align_corners=True)
        return self.activation(x)


def build_dpt_head(section: DPTDecoderSpec, decoder: nn.Module, spec: ModelSpec) -> DPTSegmentationHead:
    """DPT's own head (conv-BN-ReLU, dropout, 1x1 conv, upsampling), fed by the decoder's output."""
    return DPTSegmentationHead(
        in_channels=decoder.out_channels,
        out_channels=spec.head.classes,
        kernel_size=spec.head.kernel_size,
        activation=spec.head.activation,
        upsampling=spec.head.upsampling,
    )


@register_decoder(DPTDecoderSpec, head=build_dpt_head)
def build_dpt(section: DPTDecoderSpec, encoder: EncoderMixin, spec: ModelSpec) -> DPTDecoder:
    """The DPT decoder of a section, reading the declared block maps of a ViT encoder."""
    info = encoder.feature_info
    if not info.prefix_tokens and section.readout != "ignore":
        warnings.warn(
            f"encoder {spec.encoder.name!r} has no prefix (class) tokens, so decoder.readout {section.readout!r} "
            "has nothing to read; readout: ignore is the natural choice",
            UserWarning,
            stacklevel=2,
        )
    return DPTDecoder(
        encoder_channels=info.channels[1:],
        encoder_strides=info.strides[1:],
        has_prefix_tokens=info.prefix_tokens,
        readout=section.readout,
        intermediate_channels=section.intermediate_channels,
        fusion_channels=section.fusion_channels,
    )
