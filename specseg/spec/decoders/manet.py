"""The ``decoder:`` section for ``architecture: manet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Sequence

from pydantic import Field

from specseg.errors import SpecIssue
from specseg.spec.common import NORM_DESCRIPTION, Channels, InterpolationMode, Norm
from specseg.spec.decoders.base import (
    DECODER_STAGE_CHANNELS,
    ArchitectureDefaults,
    DecoderSpec,
    StageChannels,
    stage_channels_field,
)
from specseg.spec.decoders.checks import (
    channels_match_depth,
    empty_feature_issues,
    groupnorm_divides,
    groupnorm_width_issues,
    output_stride_in,
)
from specseg.spec.decoders.unet import STAGE_CHANNELS_DESCRIPTION

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

MANET_CHANNELS = DECODER_STAGE_CHANNELS


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
    stage_channels: ClassVar[StageChannels] = StageChannels("channels", MANET_CHANNELS)
    small_example: ClassVar[Mapping[str, Any]] = {"channels": [16, 16, 16], "pab_channels": 16}

    architecture: Literal["manet"] = Field(description="MA-Net decoder (position-wise attention + multi-scale fusion attention).")
    channels: list[Channels] = stage_channels_field(stage_channels, STAGE_CHANNELS_DESCRIPTION)
    norm: Norm = Field("batchnorm", description=NORM_DESCRIPTION)
    pab_channels: Channels = Field(64, description="Channels of the query and key projections in the position-wise attention block.")
    interpolation: InterpolationMode = Field("nearest", description="Mode of the x2 upsampling in every decoder stage.")

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return (
            channels_match_depth(self.channels, spec)
            + output_stride_in((32,), "MA-Net (it upsamples by exactly 2 per stage, so the encoder cannot be dilated)", spec)
            + groupnorm_divides(self.norm, self.channels, ("decoder", "channels"))
        )

    def feature_issues(self, spec: "ModelSpec", channels: Sequence[int]) -> list[SpecIssue]:
        """MA-Net's fusion blocks also normalise at the widths of the deepest feature and of each skip."""
        return empty_feature_issues(channels, 1, "MA-Net", spec) + groupnorm_width_issues(self.norm, channels[1:], "MA-Net")
