"""The ``decoder:`` section for ``architecture: unet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from specseg.spec.common import NORM_DESCRIPTION, Channels, InterpolationMode, Norm
from specseg.spec.decoders.base import ArchitectureDefaults, CrossIssue, DecoderSpec
from specseg.spec.decoders.checks import channels_match_depth, groupnorm_divides

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

UNET_CHANNELS = (256, 128, 64, 32, 16)


class UnetDecoderSpec(DecoderSpec):
    """U-Net: upsample, concatenate the encoder skip, two 3x3 convolutions per stage."""

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(requires_divisible_input=False)
    smp_class: ClassVar[str] = "Unet"

    architecture: Literal["unet"] = Field(description="U-Net decoder.")
    channels: list[Channels] = Field(
        default_factory=lambda: list(UNET_CHANNELS),
        min_length=1,
        max_length=5,
        description="Output channels of each decoder stage, deepest first; one entry per encoder stage (len == encoder.depth). Default: the first encoder.depth entries of [256, 128, 64, 32, 16].",
    )
    norm: Norm = Field("batchnorm", description=NORM_DESCRIPTION)
    attention: Literal["scse"] | None = Field(None, description="Attention after each fusion: null or scse (spatial and channel squeeze-excitation).")
    interpolation: InterpolationMode = Field("nearest", description="Upsampling mode of each decoder stage.")

    @classmethod
    def fill_defaults(cls, decoder: dict[str, Any], encoder: dict[str, Any]) -> None:
        depth = encoder.get("depth", cls.defaults.encoder_depth)
        if "channels" not in decoder and isinstance(depth, int) and 1 <= depth <= 5:
            decoder["channels"] = list(UNET_CHANNELS[:depth])

    def cross_issues(self, spec: "ModelSpec") -> list[CrossIssue]:
        return channels_match_depth(self.channels, spec) + groupnorm_divides(self.norm, self.channels, ("decoder", "channels"))

    def build(self, encoder: Any, spec: "ModelSpec") -> Any:
        from specseg.decoders.unet import UnetDecoder

        return UnetDecoder(
            encoder_channels=encoder.out_channels,
            decoder_channels=self.channels,
            norm=self.norm,
            attention=self.attention,
            interpolation=self.interpolation,
            center=spec.encoder.name.startswith("vgg"),
        )
