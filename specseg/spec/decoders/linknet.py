"""The ``decoder:`` section for ``architecture: linknet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Sequence

from pydantic import Field

from specseg.errors import SpecIssue
from specseg.spec.common import NORM_DESCRIPTION, Norm
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import empty_feature_issues, groupnorm_width_issues, mix_transformer_refused, output_stride_in

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: Width of the last decoder stage, fed to the head (fixed in SMP).
LINKNET_PREFINAL_CHANNELS = 32


class LinknetDecoderSpec(DecoderSpec):
    """LinkNet (Chaurasia and Culurciello, 2017): a light decoder that adds encoder skips.

    Each stage shrinks its input to a quarter of the channels (1x1),
    upsamples x2 with a 4x4 stride-2 transposed convolution, expands to the
    next skip's width (1x1) and adds that skip; the last stage outputs 32
    channels, which a 1x1 head turns into the mask. The decoder widths all
    follow from the encoder, so ``norm`` is the only option. Every stage
    upsamples by exactly 2, so the encoder must not be dilated and the input
    height and width must be multiples of the encoder's output stride. As
    in SMP 0.6, transformer-style ``tu-`` encoders are accepted (the stage of
    their empty stride-2 map adds no skip) but ``mit_b*`` encoders are refused.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(head_kernel_size=1, requires_divisible_input=True)
    smp_class: ClassVar[str] = "Linknet"
    small_example: ClassVar[Mapping[str, Any]] = {}

    architecture: Literal["linknet"] = Field(description="LinkNet decoder (transposed-convolution upsampling, additive skips).")
    norm: Norm = Field("batchnorm", description=NORM_DESCRIPTION)

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return output_stride_in(
            (32,), "LinkNet (it upsamples by exactly 2 per stage, so the encoder cannot be dilated)", spec
        ) + mix_transformer_refused("LinkNet", spec)

    def feature_issues(self, spec: "ModelSpec", channels: Sequence[int]) -> list[SpecIssue]:
        """LinkNet's widths all follow from the encoder: each stage normalises a quarter of its input width and the next skip's width."""
        return empty_feature_issues(channels, 1, "LinkNet", spec) + groupnorm_width_issues(
            self.norm, [c // 4 for c in channels[1:]] + list(channels[1:-1]) + [LINKNET_PREFINAL_CHANNELS], "LinkNet"
        )
