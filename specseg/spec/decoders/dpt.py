"""The ``decoder:`` section for ``architecture: dpt``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

from pydantic import Field

from specseg.errors import SpecIssue, cross_issue
from specseg.spec.common import Channels
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec, EncoderKind, StageChannels, stage_channels_field
from specseg.spec.encoder import EncoderSpec

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

DPT_INTERMEDIATE_CHANNELS = (256, 512, 1024, 1024)
#: SMP's default DPT encoder: ViT-B/16 (its default weights tag, augreg_in21k, is part of the name).
DPT_DEFAULT_ENCODER = "tu-vit_base_patch16_224.augreg_in21k"


class DPTDecoderSpec(DecoderSpec):
    """DPT, the Dense Prediction Transformer (Ranftl et al., 2021), on a plain ViT encoder.

    The outputs of ``encoder.depth`` transformer blocks (``encoder.output_indices``,
    spread evenly over the blocks by default) are merged with the prefix
    (class) tokens as ``readout`` says, reassembled into maps at strides 4,
    8, 16, 32, and fused from the deepest up, each fusion doubling the
    resolution. As in SMP, the encoder must be a timm ViT (``tu-<name>``,
    by default ``tu-vit_base_patch16_224.augreg_in21k``, 4 blocks read), the head is DPT's own (3x3 conv-BN-ReLU,
    dropout, 1x1 conv) followed by a x2 upsampling, and input height and width
    must be multiples of the patch size (and of 2 ** (depth + 1)). Most timm
    ViTs take their pretraining size only (e.g. 224x224); set
    ``encoder.params: {img_size: ...}`` or ``{dynamic_img_size: true}`` for others.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        encoder_depth=4,
        # ViT features keep the patch stride; 32 here means "not dilated" (SMP has no such option).
        encoder_output_stride=32,
        head_upsampling=2,
        head_kernel_size=3,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "DPT"
    encoder_kind: ClassVar[EncoderKind] = "vit"
    stage_channels: ClassVar[StageChannels] = StageChannels("intermediate_channels", DPT_INTERMEDIATE_CHANNELS)
    small_example: ClassVar[Mapping[str, Any]] = {"intermediate_channels": [16, 32, 64, 64], "fusion_channels": 32}
    #: timm's 6-block test ViT (patch 16, 64 channels): a DPT builds in well under a second.
    small_encoder: ClassVar[Mapping[str, Any]] = {"name": "tu-test_vit"}

    architecture: Literal["dpt"] = Field(description="DPT decoder (Dense Prediction Transformer) on a ViT encoder.")
    readout: Literal["cat", "add", "ignore"] = Field(
        "cat",
        description="How the prefix (class) tokens join the patch tokens: cat (append the class token, then Linear+GELU), add (add the mean prefix token) or ignore.",
    )
    intermediate_channels: list[Channels] = stage_channels_field(
        stage_channels,
        "Channels of each reassembled feature before its projection to fusion_channels, shallowest first; one entry per ViT feature (len == encoder.depth). Default: the first encoder.depth entries of [256, 512, 1024, 1024].",
    )
    fusion_channels: Channels = Field(256, description="Channels of the reassembled maps, of every fusion block and of the output fed to the head.")

    @classmethod
    def fill_defaults(cls, decoder: dict[str, Any], encoder: dict[str, Any]) -> None:
        # SMP's DPT has its own default encoder (a ViT); the general default, resnet34,
        # cannot serve DPT. ``encoder`` is the mapping that gets validated, so this sticks.
        encoder.setdefault("name", DPT_DEFAULT_ENCODER)
        super().fill_defaults(decoder, encoder)

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        issues = vit_encoder_issues(spec.encoder)
        depth = spec.encoder.depth
        if len(self.intermediate_channels) != depth:
            n = len(self.intermediate_channels)
            issues.append(
                cross_issue(
                    ("decoder", "intermediate_channels"),
                    f"has {n} entries but encoder.depth is {depth}: give one channel count per ViT feature "
                    f"({depth} entries), or set encoder.depth to {n}",
                    [("encoder", "depth")],
                )
            )
        return issues


def vit_encoder_issues(encoder: EncoderSpec) -> list[SpecIssue]:
    """What a plain-ViT encoder section (DPT's) must satisfy before a model is looked at.

    The one copy of these rules: the validator reports them, and the ViT
    encoder build (:func:`specseg.encoders.timm_vit.build_vit_encoder`) refuses
    the same sections with the same messages when called directly.
    """
    issues: list[SpecIssue] = []
    architecture = [("decoder", "architecture")]
    if not encoder.name.startswith("tu-"):
        issues.append(
            cross_issue(
                ("encoder", "name"),
                f"DPT needs a timm ViT encoder written as tu-<timm model name>, e.g. tu-vit_tiny_patch16_224; "
                f"got {encoder.name!r}",
                architecture,
            )
        )
    if encoder.output_stride != 32:
        issues.append(
            cross_issue(
                ("encoder", "output_stride"),
                "DPT's ViT encoders cannot be dilated (their features keep the patch stride); "
                "remove encoder.output_stride or set it to 32",
                architecture,
            )
        )
    indices = encoder.output_indices
    depth = encoder.depth
    if indices is not None:
        if len(indices) != depth:
            issues.append(
                cross_issue(
                    ("encoder", "output_indices"),
                    f"has {len(indices)} entries but encoder.depth is {depth}: give one block index per "
                    f"feature ({depth} entries), or set encoder.depth to {len(indices)}",
                    [("encoder", "depth")],
                )
            )
        same_sign = all(i >= 0 for i in indices) or all(i < 0 for i in indices)
        if same_sign and any(b <= a for a, b in zip(indices, indices[1:])):
            # Mixed signs can only be ordered once the number of blocks is known (at build).
            issues.append(
                cross_issue(("encoder", "output_indices"), f"{indices} must name distinct blocks in increasing order (shallowest first)")
            )
    return issues
