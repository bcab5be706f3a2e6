"""The ``decoder:`` section for ``architecture: pan``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

from pydantic import Field

from specseg.spec.common import Channels, InterpolationMode
from specseg.errors import SpecIssue
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import depth_at_least, output_stride_in

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: Encoder output strides PAN is built for (SMP refuses others).
PAN_OUTPUT_STRIDES = (16, 32)
#: PAN reads the stride-4 features and at least one deeper stage.
PAN_MIN_DEPTH = 3


class PANDecoderSpec(DecoderSpec):
    """PAN, Pyramid Attention Network (Li et al., 2018).

    A Feature Pyramid Attention (FPA) block on the deepest features, then one
    Global Attention Upsample (GAU) block per shallower stage down to stride
    4: each GAU weights the skip features by channel attention computed from
    the coarser map and adds the upsampled coarser map. The decoder output is
    at stride 4 and the head upsamples by 4. As in SMP, the encoder is dilated
    to output stride 16 by default (16 or 32 are allowed), and the FPA block
    needs the deepest feature map to be at least 8x8, i.e. inputs of at least
    8 x the encoder's output stride.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        encoder_depth=5,
        encoder_output_stride=16,
        head_upsampling=4,
        head_kernel_size=3,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "PAN"
    small_example: ClassVar[Mapping[str, Any]] = {"channels": 16}

    architecture: Literal["pan"] = Field(description="PAN decoder (feature pyramid attention + global attention upsampling).")
    channels: Channels = Field(32, description="Channels of every FPA and GAU block output.")
    interpolation: InterpolationMode = Field(
        "bilinear",
        description="Upsampling mode of the GAU blocks (align_corners=True for bilinear). The FPA block always resizes bilinearly, as in SMP.",
    )

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return output_stride_in(PAN_OUTPUT_STRIDES, "PAN", spec) + depth_at_least(PAN_MIN_DEPTH, "PAN", spec)
