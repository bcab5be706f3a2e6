"""The ``decoder:`` section for ``architecture: unet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

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
from specseg.spec.decoders.checks import channels_match_depth, groupnorm_divides

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

UNET_CHANNELS = DECODER_STAGE_CHANNELS
#: U-Net, MA-Net: one decoder stage per encoder stage, deepest first.
STAGE_CHANNELS_DESCRIPTION = (
    "Output channels of each decoder stage, deepest first; one entry per encoder stage (len == encoder.depth). "
    "Default: the first encoder.depth entries of [256, 128, 64, 32, 16]."
)


class UnetDecoderSpec(DecoderSpec):
    """U-Net: upsample, concatenate the encoder skip, two 3x3 convolutions per stage."""

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(requires_divisible_input=False)
    smp_class: ClassVar[str] = "Unet"
    stage_channels: ClassVar[StageChannels] = StageChannels("channels", UNET_CHANNELS)
    small_example: ClassVar[Mapping[str, Any]] = {"channels": [16, 16, 16]}

    architecture: Literal["unet"] = Field(description="U-Net decoder.")
    channels: list[Channels] = stage_channels_field(stage_channels, STAGE_CHANNELS_DESCRIPTION)
    norm: Norm = Field("batchnorm", description=NORM_DESCRIPTION)
    attention: Literal["scse"] | None = Field(None, description="Attention after each fusion: null or scse (spatial and channel squeeze-excitation).")
    interpolation: InterpolationMode = Field("nearest", description="Upsampling mode of each decoder stage.")

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return channels_match_depth(self.channels, spec) + groupnorm_divides(self.norm, self.channels, ("decoder", "channels"))
