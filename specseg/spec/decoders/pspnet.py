"""The ``decoder:`` section for ``architecture: pspnet``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

from pydantic import Field

from specseg.errors import SpecIssue
from specseg.spec.common import NORM_DESCRIPTION, Channels, Norm
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import groupnorm_divides

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
