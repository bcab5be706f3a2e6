"""The ``decoder:`` section for ``architecture: pspnet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Sequence

from pydantic import Field

from specseg.errors import SpecIssue, cross_issue
from specseg.spec.common import GroupNormOptions
from specseg.spec.common import NORM_DESCRIPTION, Channels, Norm
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import empty_feature_issues, groupnorm_divides

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: Output sizes of the pyramid's adaptive average pools, as in the paper and SMP.
PSP_POOL_SIZES = (1, 2, 3, 6)


class PSPNetDecoderSpec(DecoderSpec):
    """PSPNet (Zhao et al., 2017): a pyramid pooling module on the deepest encoder features.

    The deepest feature map is average-pooled to 1x1, 2x2, 3x3 and 6x6, each
    pooled map is projected to a quarter of the channels and resized back,
    all are concatenated with the input and fused by a 1x1 convolution. Only
    the deepest features are used (no skip connections). As in SMP, the
    encoder is 3 stages deep by default and the head upsamples by 8, which
    restores the input size for depth 3 only (depth 5 gives a 1/4-size mask).
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        encoder_depth=3,
        encoder_output_stride=32,
        head_upsampling=8,
        head_kernel_size=3,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "PSPNet"
    smp_renames: ClassVar[dict[str, str]] = {
        "psp_out_channels": "out_channels",
        "psp_dropout": "dropout",
    }
    small_example: ClassVar[Mapping[str, Any]] = {"out_channels": 32}

    architecture: Literal["pspnet"] = Field(description="PSPNet decoder (pyramid pooling module).")
    out_channels: Channels = Field(512, description="Output channels of the 1x1 convolution fusing the pyramid (SMP's psp_out_channels).")
    norm: Norm = Field(
        "batchnorm",
        description=NORM_DESCRIPTION + " The 1x1-pooled branch never has one (a norm over a single pixel is undefined), as in SMP.",
    )
    dropout: float = Field(0.2, ge=0, lt=1, description="Spatial (channel-wise, Dropout2d) dropout probability after the fusion, in [0, 1) (SMP's psp_dropout).")

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return groupnorm_divides(self.norm, self.out_channels, ("decoder", "out_channels"))

    def feature_issues(self, spec: "ModelSpec", channels: Sequence[int]) -> list[SpecIssue]:
        """The pyramid splits the deepest map's channels into one equal share per pooling level."""
        empty = empty_feature_issues(channels, 1, "PSPNet", spec)
        if empty:
            return empty
        deepest = int(channels[-1])
        levels = len(PSP_POOL_SIZES)
        branch = deepest // levels
        # The fusion conv takes 2 x deepest input channels (SMP's layout), which the
        # concatenation only produces when the pyramid levels split the channels evenly.
        if deepest % levels:
            return [
                cross_issue(
                    ("encoder", "depth"),
                    f"the encoder's deepest features have {deepest} channels; PSPNet needs a multiple of "
                    f"{levels} (one equal share per pyramid level). Choose another encoder.depth or encoder",
                    [("encoder", "name")],
                )
            ]
        norm = self.norm
        if isinstance(norm, GroupNormOptions) and branch % norm.num_groups:
            return [
                cross_issue(
                    ("decoder", "norm", "num_groups"),
                    f"each pyramid branch has {branch} channels (a quarter of the encoder's {deepest}), "
                    f"which cannot be split into {norm.num_groups} groups; use a num_groups dividing {branch}",
                    [("encoder", "name"), ("encoder", "depth")],
                )
            ]
        return []
