"""The ``decoder:`` section for ``architecture: unetplusplus``."""

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
    depth_at_least,
    groupnorm_divides,
    groupnorm_width_issues,
    mix_transformer_refused,
    output_stride_in,
)

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

UNETPLUSPLUS_CHANNELS = DECODER_STAGE_CHANNELS
#: SMP's nested decoder needs at least one intermediate column of nodes.
UNETPLUSPLUS_MIN_DEPTH = 2


class UnetPlusPlusDecoderSpec(DecoderSpec):
    """U-Net++ (Zhou et al., 2018): a U-Net whose skip pathways are nested, densely connected decoders.

    Every encoder level is upsampled towards every shallower level through
    intermediate nodes, and each node concatenates the upsampled node below
    it with all earlier nodes of its level and the encoder skip. The main
    path (one node per stage) has the widths of ``channels``; intermediate
    nodes take the width of their level's encoder features. Each node
    upsamples by exactly 2, so the encoder must not be dilated and the input
    height and width must be multiples of the encoder's output stride. As in
    SMP 0.6, transformer-style (stride-4) ``tu-`` encoders are accepted (the
    nodes fed by their missing stride-2 level are empty) but the ``mit_b*``
    encoders are refused.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(requires_divisible_input=True)
    smp_class: ClassVar[str] = "UnetPlusPlus"
    stage_channels: ClassVar[StageChannels] = StageChannels("channels", UNETPLUSPLUS_CHANNELS, UNETPLUSPLUS_MIN_DEPTH)
    small_example: ClassVar[Mapping[str, Any]] = {"channels": [16, 16, 16]}

    architecture: Literal["unetplusplus"] = Field(description="U-Net++ decoder (nested, densely connected skip pathways).")
    channels: list[Channels] = stage_channels_field(
        stage_channels,
        "Output channels of the final node of each decoder stage, deepest first; one entry per encoder stage "
        "(len == encoder.depth, 2..5). Default: the first encoder.depth entries of [256, 128, 64, 32, 16].",
    )
    norm: Norm = Field("batchnorm", description=NORM_DESCRIPTION)
    attention: Literal["scse"] | None = Field(None, description="Attention in every node, on the concatenated inputs and on the output: null or scse (spatial and channel squeeze-excitation).")
    interpolation: InterpolationMode = Field("nearest", description="Mode of the x2 upsampling in every node.")

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        depth_issues = depth_at_least(UNETPLUSPLUS_MIN_DEPTH, "U-Net++", spec)
        # With a too-shallow encoder the channels rule would only repeat the depth problem.
        channel_issues = [] if depth_issues else channels_match_depth(self.channels, spec)
        return (
            depth_issues
            + channel_issues
            + output_stride_in((32,), "U-Net++ (it upsamples by exactly 2 per stage, so the encoder cannot be dilated)", spec)
            + groupnorm_divides(self.norm, self.channels, ("decoder", "channels"))
            + mix_transformer_refused("U-Net++", spec)
        )

    def feature_issues(self, spec: "ModelSpec", channels: Sequence[int]) -> list[SpecIssue]:
        """Intermediate nodes take the widths of the encoder levels between the deepest and the shallowest."""
        return groupnorm_width_issues(self.norm, channels[1:-2], "U-Net++")
