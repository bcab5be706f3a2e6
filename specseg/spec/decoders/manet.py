"""The ``decoder:`` section for ``architecture: manet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from specseg.spec.common import NORM_DESCRIPTION, Channels, InterpolationMode, Norm
from specseg.spec.decoders.base import ArchitectureDefaults, CrossIssue, DecoderSpec
from specseg.spec.decoders.checks import (
    channels_match_depth,
    empty_features_error,
    groupnorm_build_error,
    groupnorm_divides,
    output_stride_in,
)

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

MANET_CHANNELS = (256, 128, 64, 32, 16)


class MAnetDecoderSpec(DecoderSpec):
    """MA-Net, Multi-scale Attention Net (Fan et al., 2020).

    A Position-wise Attention Block (PAB) on the deepest features models
    spatial dependencies; each decoder stage with an encoder skip is a
    Multi-scale Fusion Attention Block (MFAB): the upsampled decoder map and
    the skip are weighted by squeeze-excitation channel attention before they
    are concatenated and convolved; the last stage (no skip) is a plain
    upsample-and-convolve block. Every stage upsamples by exactly 2, so the
    encoder must not be dilated and the input height and width must be
    multiples of the encoder's output stride.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(requires_divisible_input=True)
    smp_class: ClassVar[str] = "MAnet"

    architecture: Literal["manet"] = Field(description="MA-Net decoder (position-wise attention + multi-scale fusion attention).")
    channels: list[Channels] = Field(
        default_factory=lambda: list(MANET_CHANNELS),
        min_length=1,
        max_length=5,
        description="Output channels of each decoder stage, deepest first; one entry per encoder stage (len == encoder.depth). Default: the first encoder.depth entries of [256, 128, 64, 32, 16].",
    )
    norm: Norm = Field("batchnorm", description=NORM_DESCRIPTION)
    pab_channels: Channels = Field(64, description="Channels of the query and key projections in the position-wise attention block.")
    interpolation: InterpolationMode = Field("nearest", description="Mode of the x2 upsampling in every decoder stage.")

    @classmethod
    def fill_defaults(cls, decoder: dict[str, Any], encoder: dict[str, Any]) -> None:
        depth = encoder.get("depth", cls.defaults.encoder_depth)
        if "channels" not in decoder and isinstance(depth, int) and 1 <= depth <= 5:
            decoder["channels"] = list(MANET_CHANNELS[:depth])

    def cross_issues(self, spec: "ModelSpec") -> list[CrossIssue]:
        return (
            channels_match_depth(self.channels, spec)
            + output_stride_in((32,), "MA-Net (it upsamples by exactly 2 per stage, so the encoder cannot be dilated)", spec)
            + groupnorm_divides(self.norm, self.channels, ("decoder", "channels"))
        )

    def build(self, encoder: Any, spec: "ModelSpec") -> Any:
        from specseg.decoders.manet import MAnetDecoder

        error = empty_features_error(encoder.out_channels, 1, "MA-Net", spec)
        if error is not None:
            raise error
        try:
            return MAnetDecoder(
                encoder_channels=encoder.out_channels,
                decoder_channels=self.channels,
                norm=self.norm,
                pab_channels=self.pab_channels,
                interpolation=self.interpolation,
            )
        except ValueError:
            # The fusion blocks also normalise at the widths of the deepest feature and of each skip.
            error = groupnorm_build_error(self.norm, encoder.out_channels[1:], "MA-Net")
            if error is None:
                raise
            raise error from None
