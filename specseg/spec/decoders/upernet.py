"""The ``decoder:`` section for ``architecture: upernet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

from pydantic import Field

from specseg.errors import SpecIssue, cross_issue
from specseg.spec.common import NORM_DESCRIPTION, BatchNormOptions, Channels, GroupNormOptions, InstanceNormOptions, Norm
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import depth_at_least, groupnorm_divides

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec


class UPerNetDecoderSpec(DecoderSpec):
    """UPerNet (Xiao et al., 2018): pyramid pooling on the deepest features, an FPN, a fusion at stride 4.

    The encoder features from stride 4 down are layer-normalised; the
    deepest goes through a pyramid pooling module (pools 1, 2, 3, 6), whose
    output starts a top-down feature pyramid; all pyramid levels are resized
    to stride 4, concatenated and fused. As in SMP, the head is a 1x1
    convolution followed by a x4 upsampling back to the input size.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        encoder_depth=5,
        encoder_output_stride=32,
        head_upsampling=4,
        head_kernel_size=1,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "UPerNet"
    small_example: ClassVar[Mapping[str, Any]] = {"channels": 32}

    architecture: Literal["upernet"] = Field(description="UPerNet decoder (pyramid pooling + feature pyramid).")
    channels: Channels = Field(
        256,
        description="Channels of the pyramid pooling module, of every feature-pyramid level and of the fused output.",
    )
    norm: Norm = Field(
        "batchnorm",
        description=NORM_DESCRIPTION
        + " The 3x3 convolution closing the pyramid pooling module is always batch-normalised, as in SMP. "
        "instancenorm is refused: the pooling module normalises a 1x1 pooled map, which instance normalisation cannot do.",
        # The refusal cross_issues makes, stated for JSON Schema clients too (both spellings).
        json_schema_extra={"not": {"anyOf": [{"const": "instancenorm"}, {"type": "object", "properties": {"type": {"const": "instancenorm"}}, "required": ["type"]}]}},
    )

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        issues = depth_at_least(3, "UPerNet", spec)
        norm = self.norm
        if norm == "instancenorm" or isinstance(norm, InstanceNormOptions):
            issues.append(
                cross_issue(
                    ("decoder", "norm"),
                    "UPerNet cannot use instancenorm: its pyramid pooling module normalises a 1x1 pooled map, "
                    "and instance statistics over one pixel are undefined (torch refuses it). "
                    "Use batchnorm, groupnorm, layernorm or identity",
                )
            )
        elif isinstance(norm, BatchNormOptions) and not norm.track_running_stats:
            issues.append(
                cross_issue(
                    ("decoder", "norm", "track_running_stats"),
                    "UPerNet cannot use batchnorm without running statistics: its pyramid pooling module normalises "
                    "a 1x1 pooled map, and the statistics of one image's single pixel are undefined (torch refuses "
                    "them for a batch of one, in eval mode too). Keep track_running_stats: true, or use another norm",
                )
            )
        elif isinstance(norm, GroupNormOptions) and norm.num_groups == self.channels:
            issues.append(
                cross_issue(
                    ("decoder", "norm", "num_groups"),
                    f"UPerNet cannot use groupnorm with one channel per group (num_groups={norm.num_groups} = "
                    "decoder.channels): its pyramid pooling module normalises a 1x1 pooled map, where each group "
                    "would hold a single value (torch refuses it for a batch of one). Use fewer groups",
                    [("decoder", "channels")],
                )
            )
        return issues + groupnorm_divides(norm, self.channels, ("decoder", "channels"))
