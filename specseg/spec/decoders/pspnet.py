"""The ``decoder:`` section for ``architecture: pspnet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from specseg.spec.common import NORM_DESCRIPTION, Channels, GroupNormOptions, Norm
from specseg.spec.decoders.base import ArchitectureDefaults, CrossIssue, DecoderSpec
from specseg.spec.decoders.checks import empty_features_error

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

    architecture: Literal["pspnet"] = Field(description="PSPNet decoder (pyramid pooling module).")
    out_channels: Channels = Field(512, description="Output channels of the 1x1 convolution fusing the pyramid (SMP's psp_out_channels).")
    norm: Norm = Field(
        "batchnorm",
        description=NORM_DESCRIPTION + " The 1x1-pooled branch never has one (a norm over a single pixel is undefined), as in SMP.",
    )
    dropout: float = Field(0.2, ge=0, lt=1, description="Spatial (channel-wise, Dropout2d) dropout probability after the fusion, in [0, 1) (SMP's psp_dropout).")

    def cross_issues(self, spec: "ModelSpec") -> list[CrossIssue]:
        norm = self.norm
        if isinstance(norm, GroupNormOptions) and self.out_channels % norm.num_groups:
            return [
                (
                    ("decoder", "out_channels"),
                    f"{self.out_channels} channels cannot be split into decoder.norm.num_groups={norm.num_groups} "
                    f"groups; use a multiple of {norm.num_groups}",
                    (("decoder", "norm", "num_groups"),),
                )
            ]
        return []

    def build(self, encoder: Any, spec: "ModelSpec") -> Any:
        from specseg.decoders.pspnet import PSPDecoder
        from specseg.errors import single_issue

        # These rules depend on the encoder's channels, so they can only be checked now.
        error = empty_features_error(encoder.out_channels, 1, "PSPNet", spec)
        if error is not None:
            raise error
        deepest = int(encoder.out_channels[-1])
        levels = len(PSP_POOL_SIZES)
        branch = deepest // levels
        # The fusion conv takes 2 x deepest input channels (SMP's layout), which the
        # concatenation only produces when the pyramid levels split the channels evenly.
        if deepest % levels:
            raise single_issue(
                f"the encoder's deepest features have {deepest} channels; PSPNet needs a multiple of "
                f"{levels} (one equal share per pyramid level). Choose another encoder.depth or encoder",
                ("encoder", "depth"),
            )
        norm = self.norm
        if isinstance(norm, GroupNormOptions) and branch % norm.num_groups:
            raise single_issue(
                f"each pyramid branch has {branch} channels (a quarter of the encoder's {deepest}), "
                f"which cannot be split into {norm.num_groups} groups; use a num_groups dividing {branch}",
                ("decoder", "norm", "num_groups"),
            )
        return PSPDecoder(
            encoder_channels=encoder.out_channels,
            out_channels=self.out_channels,
            norm=self.norm,
            dropout=self.dropout,
            pool_sizes=PSP_POOL_SIZES,
        )
