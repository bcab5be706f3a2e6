"""The ``decoder:`` section for ``architecture: fpn``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Sequence

from pydantic import Field

from specseg.encoders.families import MIX_TRANSFORMER, family_of
from specseg.errors import SpecIssue, cross_issue
from specseg.spec.common import MAX_ENCODER_DEPTH, Channels, InterpolationMode
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import depth_at_least, empty_feature_issues, output_stride_in

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: The pyramid has four levels, so FPN needs at least three encoder stages (the input is the fourth).
FPN_MIN_DEPTH = 3
#: Groups of the GroupNorm in every segmentation-branch convolution (fixed in SMP).
FPN_GROUPS = 32


class FPNDecoderSpec(DecoderSpec):
    """FPN, Feature Pyramid Network (Lin et al., 2017), as a semantic segmentation decoder.

    The last four encoder feature maps are projected (1x1) to
    ``pyramid_channels`` and merged top-down (x2 upsampling plus addition).
    Each pyramid level then goes through 3x3 conv-GroupNorm(32)-ReLU layers,
    upsampled bilinearly x2 after each, to the finest level's resolution,
    where the four maps are summed (``add``) or concatenated (``cat``), and
    spatial dropout is applied. The finest level is at stride 4 for depth 5,
    so the 1x1 head upsamples by 4 by default. As in SMP, with depth 4 or 3
    the finest levels are the stride-2 feature and the input itself, so the
    default mask is then 2x or 4x the input size (set head.upsampling to
    2 or 1 for an input-sized mask).
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        head_upsampling=4,
        head_kernel_size=1,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "FPN"
    small_example: ClassVar[Mapping[str, Any]] = {"pyramid_channels": 32, "segmentation_channels": 32}

    architecture: Literal["fpn"] = Field(description="Feature Pyramid Network decoder.")
    pyramid_channels: Channels = Field(256, description="Channels of every top-down pyramid level.")
    segmentation_channels: Channels = Field(
        128,
        description=f"Channels of each level's segmentation branch (GroupNorm with {FPN_GROUPS} groups, so a multiple of {FPN_GROUPS}).",
        # The rule cross_issues enforces with its own message, stated for JSON Schema clients too.
        json_schema_extra={"multipleOf": FPN_GROUPS},
    )
    merge_policy: Literal["add", "cat"] = Field(
        "add",
        description="How the four branch outputs are merged: add (sum; the head gets segmentation_channels) or cat (concatenation; the head gets 4 x segmentation_channels).",
    )
    dropout: float = Field(0.2, ge=0, le=1, description="Spatial dropout (Dropout2d) probability after merging; 0 for none.")
    interpolation: InterpolationMode = Field("nearest", description="Mode of the x2 upsampling in the top-down pathway (the segmentation branches always upsample bilinearly).")

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        issues = depth_at_least(FPN_MIN_DEPTH, "FPN", spec) + output_stride_in(
            (32,), "FPN (its top-down pathway upsamples by exactly 2, so the encoder cannot be dilated)", spec
        )
        if self.segmentation_channels % FPN_GROUPS:
            lower = max(FPN_GROUPS, self.segmentation_channels // FPN_GROUPS * FPN_GROUPS)
            upper = -(-self.segmentation_channels // FPN_GROUPS) * FPN_GROUPS
            issues.append(
                cross_issue(
                    ("decoder", "segmentation_channels"),
                    f"must be a multiple of {FPN_GROUPS} (the segmentation branches use GroupNorm with "
                    f"{FPN_GROUPS} groups), got {self.segmentation_channels}; e.g. "
                    + (f"{lower} or {upper}" if lower != upper else str(upper)),  # below 32 there is one nearest
                )
            )
        if family_of(spec.encoder.name) == MIX_TRANSFORMER and spec.encoder.depth != MAX_ENCODER_DEPTH:
            issues.append(
                cross_issue(
                    ("encoder", "depth"),
                    f"FPN with a Mix Transformer encoder ({spec.encoder.name}) needs encoder.depth {MAX_ENCODER_DEPTH}, "
                    f"as in SMP; got {spec.encoder.depth}",
                    [("encoder", "name")],
                )
            )
        return issues

    def feature_issues(self, spec: "ModelSpec", channels: Sequence[int]) -> list[SpecIssue]:
        """The pyramid reads the last four maps; none may be an encoder's empty stride-2 map."""
        return empty_feature_issues(channels, 4, "FPN", spec)
