"""The ``encoder:`` section (torch-free)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, field_validator

from specseg.spec.base import SpecModel

#: Weights forms; ``imagenet`` and timm tags download through timm / huggingface_hub.
WeightsName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$", min_length=1, max_length=200)]


class WeightsFile(SpecModel):
    """A local weights file, optionally pinned by its sha256."""

    path: str = Field(min_length=1, max_length=4096, description="Path to a .safetensors file or a torch checkpoint (read with weights_only=True), relative to the spec file.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="Expected sha256 of the file (64 lowercase hex digits); a mismatch is refused before loading.")


def _encoder_name_schema() -> dict[str, Any]:
    from specseg.encoders.registry import registry

    return {
        "anyOf": [
            {"enum": registry.names()},
            {"type": "string", "pattern": r"^tu-[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)?$"},
        ],
        "description": "A registered encoder name, or `tu-<timm model name>` for any timm model with features_only support.",
    }


class EncoderSpec(SpecModel):
    """The feature extractor (backbone) and how much of it is used."""

    name: str = Field(
        "resnet34",
        json_schema_extra=lambda schema: schema.update(_encoder_name_schema()),
        description="A registered encoder name, or `tu-<timm model name>` for any timm model with features_only support.",
    )
    weights: WeightsName | WeightsFile | None = Field(
        None,
        description="null for random initialisation; `imagenet` (or a timm pretrained tag) to download pretrained weights; or a local file {path, sha256}.",
    )
    depth: int = Field(5, ge=1, le=5, description="Number of downsampling stages used, 1..5. Default depends on the architecture (5 for most; PSPNet 3, DPT 4).")
    in_channels: int = Field(3, ge=1, le=4096, description="Channels of the input image.")
    output_stride: Literal[8, 16, 32] = Field(32, description="Total stride of the deepest feature map: 32, or 16/8 by dilating the last stages. Default depends on the architecture.")
    output_indices: list[Annotated[int, Field(ge=-64, le=64)]] | None = Field(None, min_length=1, max_length=5, description="ViT encoders only (DPT): indices of the transformer blocks whose outputs feed the decoder; null for the architecture's default.")
    params: dict[str, JsonValue] = Field(default_factory=dict, description="Extra keyword arguments for the encoder.")

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        from specseg.encoders.registry import registry
        from specseg.loader.suggest import closest

        if registry.is_valid_name(value):
            return value
        hints = closest(value, registry.names(), n=3)
        hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else "."
        raise ValueError(
            f"unknown encoder {value!r}{hint} Use a registered name (`specseg list encoders`) "
            "or `tu-<timm model name>`"
        )
