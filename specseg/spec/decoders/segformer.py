"""The ``decoder:`` section for ``architecture: segformer``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

from pydantic import Field

from specseg.spec.common import Channels
from specseg.errors import SpecIssue
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import depth_at_least

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec


class SegformerDecoderSpec(DecoderSpec):
    """SegFormer (Xie et al., 2021): a lightweight all-MLP decoder over every encoder stage.

    Each encoder feature is projected to ``segmentation_channels`` by a
    per-pixel linear layer, resized to a quarter of the input size,
    concatenated and fused by a 1x1 conv-BatchNorm-ReLU. Designed for the
    Mix Transformer (stride-4 first stage) but works with any encoder; as
    in SMP, the head is a 1x1 convolution followed by a x4 upsampling.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        encoder_depth=5,
        encoder_output_stride=32,
        head_upsampling=4,
        head_kernel_size=1,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "Segformer"
    small_example: ClassVar[Mapping[str, Any]] = {"segmentation_channels": 32}

    architecture: Literal["segformer"] = Field(description="SegFormer all-MLP decoder.")
    segmentation_channels: Channels = Field(
        256,
        description="Channels every encoder feature is projected to, and of the fused output fed to the head.",
    )

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return depth_at_least(3, "Segformer", spec)
