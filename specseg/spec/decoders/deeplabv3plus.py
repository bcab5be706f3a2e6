"""The ``decoder:`` section for ``architecture: deeplabv3plus``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

from pydantic import Field

from specseg.spec.common import Channels
from specseg.errors import SpecIssue
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import depth_at_least, output_stride_in
from specseg.spec.decoders.deeplabv3 import (
    ASPP_DROPOUT_DESCRIPTION,
    CHANNELS_DESCRIPTION,
    DEEPLAB_OUTPUT_STRIDES,
    AtrousRates,
    aspp_rates_field,
)

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: DeepLabV3+ fuses the stride-4 features with at least one deeper stage.
DEEPLABV3PLUS_MIN_DEPTH = 3


class DeepLabV3PlusDecoderSpec(DecoderSpec):
    """DeepLabV3+ (Chen et al., 2018): DeepLabV3's ASPP plus a light decoder on the stride-4 features.

    ASPP (separable by default) and a separable 3x3 conv run on the deepest
    features at stride 16 (default) or 8; the result is upsampled to stride 4,
    concatenated with a 48-channel 1x1 projection of the stride-4 encoder
    features and fused by a separable 3x3 conv. The head is a 1x1
    convolution followed by x4 upsampling.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        encoder_depth=5,
        encoder_output_stride=16,
        head_upsampling=4,
        head_kernel_size=1,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "DeepLabV3Plus"
    small_example: ClassVar[Mapping[str, Any]] = {"channels": 32}

    architecture: Literal["deeplabv3plus"] = Field(description="DeepLabV3+ decoder (ASPP + stride-4 skip fusion).")
    channels: Channels = Field(256, description=CHANNELS_DESCRIPTION)
    atrous_rates: AtrousRates = aspp_rates_field()
    aspp_separable: bool = Field(True, description="Use depthwise-separable convolutions in the dilated ASPP branches.")
    aspp_dropout: float = Field(0.5, ge=0, lt=1, description=ASPP_DROPOUT_DESCRIPTION)

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return output_stride_in(DEEPLAB_OUTPUT_STRIDES, "DeepLabV3+", spec) + depth_at_least(
            DEEPLABV3PLUS_MIN_DEPTH, "DeepLabV3+", spec
        )
