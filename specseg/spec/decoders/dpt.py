"""The ``decoder:`` section for ``architecture: dpt``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from specseg.spec.common import Channels
from specseg.spec.decoders.base import ArchitectureDefaults, CrossIssue, DecoderSpec

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
    encoder_kind: ClassVar[str] = "vit"

    architecture: Literal["dpt"] = Field(description="DPT decoder (Dense Prediction Transformer) on a ViT encoder.")
    readout: Literal["cat", "add", "ignore"] = Field(
        "cat",
        description="How the prefix (class) tokens join the patch tokens: cat (append the class token, then Linear+GELU), add (add the mean prefix token) or ignore.",
    )
    intermediate_channels: list[Channels] = Field(
        default_factory=lambda: list(DPT_INTERMEDIATE_CHANNELS),
        min_length=1,
        max_length=5,
        description="Channels of each reassembled feature before its projection to fusion_channels, shallowest first; one entry per ViT feature (len == encoder.depth). Default: the first encoder.depth entries of [256, 512, 1024, 1024].",
    )
    fusion_channels: Channels = Field(256, description="Channels of the reassembled maps, of every fusion block and of the output fed to the head.")

    @classmethod
    def fill_defaults(cls, decoder: dict[str, Any], encoder: dict[str, Any]) -> None:
        # SMP's DPT has its own default encoder (a ViT); the general default, resnet34,
        # cannot serve DPT. ``encoder`` is the mapping that gets validated, so this sticks.
        encoder.setdefault("name", DPT_DEFAULT_ENCODER)
        depth = encoder.get("depth", cls.defaults.encoder_depth)
        if "intermediate_channels" not in decoder and isinstance(depth, int) and 1 <= depth <= len(DPT_INTERMEDIATE_CHANNELS):
            decoder["intermediate_channels"] = list(DPT_INTERMEDIATE_CHANNELS[:depth])

    def cross_issues(self, spec: "ModelSpec") -> list[CrossIssue]:
        encoder = spec.encoder
        depth = encoder.depth
        issues: list[CrossIssue] = []
        if not encoder.name.startswith("tu-"):
            issues.append(
                (
                    ("encoder", "name"),
                    f"DPT needs a timm ViT encoder written as tu-<timm model name>, e.g. tu-vit_tiny_patch16_224; "
                    f"got {encoder.name!r}",
                    (("decoder", "architecture"),),
                )
            )
        if encoder.output_stride != 32:
            issues.append(
                (
                    ("encoder", "output_stride"),
                    "DPT's ViT encoders cannot be dilated (their features keep the patch stride); "
                    "remove encoder.output_stride or set it to 32",
                    (("decoder", "architecture"),),
                )
            )
        indices = encoder.output_indices
        if indices is not None:
            if len(indices) != depth:
                issues.append(
                    (
                        ("encoder", "output_indices"),
                        f"has {len(indices)} entries but encoder.depth is {depth}: give one block index per "
                        f"feature ({depth} entries), or set encoder.depth to {len(indices)}",
                        (("encoder", "depth"),),
                    )
                )
            same_sign = all(i >= 0 for i in indices) or all(i < 0 for i in indices)
            if same_sign and any(b <= a for a, b in zip(indices, indices[1:])):
                # Mixed signs can only be ordered once the number of blocks is known (at build).
                issues.append(
                    (
                        ("encoder", "output_indices"),
                        f"{indices} must name distinct blocks in increasing order (shallowest first)",
                        (),
                    )
                )
        if len(self.intermediate_channels) != depth:
            n = len(self.intermediate_channels)
            issues.append(
                (
                    ("decoder", "intermediate_channels"),
                    f"has {n} entries but encoder.depth is {depth}: give one channel count per ViT feature "
                    f"({depth} entries), or set encoder.depth to {n}",
                    (("encoder", "depth"),),
                )
            )
        return issues

    def build(self, encoder: Any, spec: "ModelSpec") -> Any:
        import warnings

        from specseg.decoders.dpt import DPTDecoder

        if not encoder.has_prefix_tokens and self.readout != "ignore":
            warnings.warn(
                f"encoder {spec.encoder.name!r} has no prefix (class) tokens, so decoder.readout {self.readout!r} "
                "has nothing to read; readout: ignore is the natural choice",
                UserWarning,
                stacklevel=2,
            )
        return DPTDecoder(
            encoder_channels=encoder.out_channels,
            encoder_strides=encoder.output_strides,
            has_prefix_tokens=encoder.has_prefix_tokens,
            readout=self.readout,
            intermediate_channels=self.intermediate_channels,
            fusion_channels=self.fusion_channels,
        )

    def build_head(self, decoder: Any, spec: "ModelSpec") -> Any:
        from specseg.decoders.dpt import DPTSegmentationHead

        return DPTSegmentationHead(
            in_channels=decoder.out_channels,
            out_channels=spec.head.classes,
            kernel_size=spec.head.kernel_size,
            activation=spec.head.activation,
            upsampling=spec.head.upsampling,
        )
