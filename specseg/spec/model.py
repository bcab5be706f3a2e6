"""The top-level spec model, format version 1 (torch-free)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from specseg.errors import cross_issue
from specseg.spec.base import SpecModel
from specseg.spec.common import FormatVersion
from specseg.spec.decoders import SECTIONS, AnyDecoderSpec
from specseg.errors import SpecIssue
from specseg.spec.decoders.checks import mix_transformer_depth
from specseg.spec.encoder import EncoderSpec, WeightsFile
from specseg.spec.encoder_rules import feature_channel_issues, timm_encoder_issues
from specseg.spec.head import AuxParams, HeadSpec
from specseg.spec.loss import LossSpec, loss_issues

#: Spec format versions this release reads.
SUPPORTED_VERSIONS = (1, 2)


class ModelSpec(SpecModel):
    """A segmentation model: encoder, decoder, segmentation head, optional classification head."""

    specseg: FormatVersion = Field(description="Spec format version: 1 for one decoder and its heads (2 for named decoders and heads).")
    name: str | None = Field(None, max_length=200, description="A name for the model.")
    description: str | None = Field(None, max_length=10_000, description="Free text describing the model.")
    metadata: dict[str, JsonValue] = Field(default_factory=dict, description="Free-form mapping carried along with the spec and ignored by the builder.")
    encoder: EncoderSpec = Field(default_factory=EncoderSpec, description="The feature extractor (backbone).")
    decoder: AnyDecoderSpec = Field(description="The decoder; `architecture` selects which one and which keys apply.")
    head: HeadSpec = Field(default_factory=HeadSpec, description="The segmentation head.")
    aux_params: AuxParams | None = Field(None, description="Optional classification head on the deepest encoder features; the model then returns (mask, labels).")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seed for weight initialisation: the same spec and seed give bitwise identical initial weights.")
    loss: LossSpec | None = Field(
        None,
        description="Optional training objective: one loss term {name: dice, mode: multiclass, ...} or a list of weighted terms whose weighted sum is the loss. Built by specseg.build_loss.",
    )
    weights: Annotated[str, Field(min_length=1, max_length=4096)] | WeightsFile | None = Field(
        None,
        description="Whole-model weights loaded after building: a path relative to the spec file, or {path, sha256}. Formats: .safetensors, or a torch checkpoint read with weights_only=True. When set, the encoder's pretrained weights are not downloaded.",
    )

    @model_validator(mode="before")
    @classmethod
    def _architecture_defaults(cls, data: Any) -> Any:
        """Fill defaults that depend on the architecture, before fields are validated.

        Only missing keys are added, and only where the surrounding structure
        is already well-formed; anything else is left for field validation to report.
        """
        if not isinstance(data, dict):
            return data
        decoder = data.get("decoder")
        if not isinstance(decoder, dict):
            return data
        architecture = decoder.get("architecture")
        # Only a string can name a section ([unet] or {a: 1} is unhashable): leave the rest to field validation.
        section = SECTIONS.get(architecture) if isinstance(architecture, str) else None
        if section is None:
            return data
        data = dict(data)
        encoder = data.get("encoder", {})
        if isinstance(encoder, dict):
            encoder = dict(encoder)
            encoder.setdefault("depth", section.defaults.encoder_depth)
            encoder.setdefault("output_stride", section.defaults.encoder_output_stride)
            data["encoder"] = encoder
        head = data.get("head", {})
        if isinstance(head, dict):
            head = dict(head)
            head.setdefault("upsampling", section.default_head_upsampling(encoder if isinstance(encoder, dict) else {}))
            head.setdefault("kernel_size", section.defaults.head_kernel_size)
            data["head"] = head
        decoder = dict(decoder)
        section.fill_defaults(decoder, encoder if isinstance(encoder, dict) else {})
        data["decoder"] = decoder
        return data

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "ModelSpec":
        """Rules spanning sections; all are collected and reported together."""
        issues: list[SpecIssue] = list(self.decoder.cross_issues(self)) + mix_transformer_depth(self)
        issues += [cross_issue(path, message, list(related)) for path, message, related in timm_encoder_issues(self)]
        if not issues:  # channel rules presume a valid encoder and decoder
            issues += feature_channel_issues(self)
        if self.loss is not None:
            related = (("head", "classes"), ("head", "activation"))
            issues += [issue.under(("loss",), related) for issue in loss_issues(self.loss, self.head.classes, self.head.activation)]
        if issues:
            # The message names every problem with its spec path, so that a library user calling
            # model_validate reads the same problems the CLI reports; the validator locates them in the file.
            summary = "; ".join(issue.describe() for issue in issues)
            raise PydanticCustomError("cross_field", "{summary}", {"summary": summary, "issues": issues})
        return self

    @property
    def architecture(self) -> str:
        """The decoder architecture name."""
        return self.decoder.architecture
