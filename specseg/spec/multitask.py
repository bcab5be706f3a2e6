"""The top-level spec model of format version 2: named decoders and named heads on one encoder (torch-free).

Every decoder is any of the architectures, reads the same encoder features,
and keeps its version-1 options and rules (checked per decoder, with the
decoder's name in the spec path). Heads are named; a head's ``from`` names
the decoder it reads, or ``encoder`` for a classification head on the
deepest encoder features. The model returns one output per head, keyed by
head name in spec order.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from specseg.errors import SpecIssue, cross_issue
from specseg.loader.suggest import did_you_mean
from specseg.spec.base import SpecModel
from specseg.spec.common import _integer_only
from specseg.spec.decoders import SECTIONS, AnyDecoderSpec
from specseg.spec.decoders.base import DecoderSpec
from specseg.spec.encoder import EncoderSpec, WeightsFile
from specseg.spec.encoder_rules import feature_channel_issues
from specseg.spec.head import HeadSpec
from specseg.spec.heads import ENCODER, NAME_PATTERN, AnyHeadSpec, ClassificationHeadSpec, Name, SegmentationHeadSpec
from specseg.spec.loss import LossSpec, loss_issues
from specseg.spec.model import ModelSpec

FormatVersion2 = Annotated[Literal[2], BeforeValidator(_integer_only)]
_NAME = re.compile(NAME_PATTERN)
#: Keys of version 1 that version 2 replaces, with what replaces them (for the error message).
V1_KEYS = {
    "decoder": "`decoders:` (a mapping of named decoders, e.g. decoders: {main: {architecture: unet}})",
    "head": "a segmentation entry of `heads:` (e.g. heads: {mask: {type: segmentation, from: main, classes: 2}})",
    "aux_params": "a classification entry of `heads:` (e.g. heads: {labels: {type: classification, from: encoder, classes: 4}})",
}
#: Encoder keys whose default depends on the architecture: (key, ArchitectureDefaults attribute).
_ENCODER_DEFAULTS = (("depth", "encoder_depth"), ("output_stride", "encoder_output_stride"))


class MultiTaskSpec(SpecModel):
    """A multi-task model (format version 2): one encoder, named decoders, named heads."""

    specseg: FormatVersion2 = Field(description="Spec format version: 2 for named decoders and heads.")
    name: str | None = Field(None, max_length=200, description="A name for the model.")
    description: str | None = Field(None, max_length=10_000, description="Free text describing the model.")
    metadata: dict[str, JsonValue] = Field(default_factory=dict, description="Free-form mapping carried along with the spec and ignored by the builder.")
    encoder: EncoderSpec = Field(default_factory=EncoderSpec, description="The feature extractor (backbone), shared by every decoder and run once per forward.")
    decoders: dict[Name, AnyDecoderSpec] = Field(
        min_length=1,
        max_length=64,
        description="Named decoders, each any architecture (`architecture` selects which one and which keys apply), all reading the same encoder features; each runs once per forward.",
    )
    heads: dict[Name, AnyHeadSpec] = Field(
        min_length=1,
        max_length=256,
        description="Named heads, in output order; `type` is segmentation or classification, `from` names the decoder read (or `encoder`). The model returns {head name: tensor}.",
    )
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seed for weight initialisation: the same spec and seed give bitwise identical initial weights.")
    loss: dict[Name, LossSpec] | None = Field(
        None,
        description="Optional training objective per head: {head name: one loss term or a list of weighted terms}. The total is the sum over heads. Built by specseg.build_loss.",
    )
    weights: Annotated[str, Field(min_length=1, max_length=4096)] | WeightsFile | None = Field(
        None,
        description="Whole-model weights loaded after building: a path relative to the spec file, or {path, sha256}. A version-1 checkpoint of the same network loads too (keys mapped, see the README). When set, the encoder's pretrained weights are not downloaded.",
    )

    @model_validator(mode="before")
    @classmethod
    def _architecture_defaults(cls, data: Any) -> Any:
        """Fill defaults that depend on the decoders' architectures, before fields are validated.

        Only missing keys are added. The encoder's depth and output stride
        default to the value every decoder's architecture agrees on; when
        they disagree the key stays missing and :meth:`_cross_field_rules` asks for it.
        """
        if not isinstance(data, dict) or not isinstance(data.get("decoders"), dict):
            return data
        data = dict(data)
        sections = _sections(data["decoders"])
        encoder = data.get("encoder", {})
        if isinstance(encoder, dict):
            encoder = dict(encoder)
            for key, attr in _ENCODER_DEFAULTS:
                values = {getattr(section.defaults, attr) for section in sections.values()}
                if key not in encoder and len(values) == 1:
                    encoder[key] = values.pop()
            data["encoder"] = encoder
        raw_encoder = encoder if isinstance(encoder, dict) else {}
        decoders = dict(data["decoders"])
        for name, section in sections.items():
            decoder = dict(decoders[name])
            section.fill_defaults(decoder, raw_encoder)
            decoders[name] = decoder
        data["decoders"] = decoders
        heads = data.get("heads")
        if isinstance(heads, dict):
            heads = dict(heads)
            for head_name, head in heads.items():
                source = head.get("from") if isinstance(head, dict) and head.get("type") == "segmentation" else None
                section = sections.get(source) if isinstance(source, str) else None
                if section is not None:
                    head = dict(head)
                    head.setdefault("upsampling", section.default_head_upsampling(raw_encoder))
                    head.setdefault("kernel_size", section.defaults.head_kernel_size)
                    heads[head_name] = head
            data["heads"] = heads
        return data

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "MultiTaskSpec":
        """Rules spanning entries; all are collected and reported together."""
        issues: list[SpecIssue] = []
        issues += self._encoder_issues()
        issues += self._head_issues()
        # An encoder key the decoders disagree on is reported once, not again by each decoder's rules.
        unset = {("encoder", key) for key in self._disagreed_encoder_defaults()}
        for name in self.decoders:
            issues += [i for i in self._decoder_issues(name) if i.path not in unset]
        issues += self._loss_issues()
        if issues:
            issues = _unique(issues)
            # As ModelSpec: the message names every problem with its path; the validator locates them.
            summary = "; ".join(issue.describe() for issue in issues)
            raise PydanticCustomError("cross_field", "{summary}", {"summary": summary, "issues": issues})
        return self

    # ------------------------------------------------------------------ rules

    def _disagreed_encoder_defaults(self) -> dict[str, dict[str, Any]]:
        """Encoder keys left unset whose architecture defaults differ between decoders: {key: {decoder: default}}."""
        disagreed: dict[str, dict[str, Any]] = {}
        for key, attr in _ENCODER_DEFAULTS:
            if key in self.encoder.model_fields_set:
                continue
            wanted = {name: getattr(type(d).defaults, attr) for name, d in self.decoders.items()}
            if len(set(wanted.values())) > 1:
                disagreed[key] = wanted
        return disagreed

    def _encoder_issues(self) -> list[SpecIssue]:
        """The shared encoder must suit every decoder: one encoder kind, agreed defaults."""
        issues: list[SpecIssue] = []
        kinds: dict[str, list[str]] = {}
        for name, decoder in self.decoders.items():
            kinds.setdefault(decoder.encoder_kind, []).append(name)
        if len(kinds) > 1:
            vit = ", ".join(kinds.get("vit", []))
            other = ", ".join(n for k, names in kinds.items() if k != "vit" for n in names)
            issues.append(
                cross_issue(
                    ("decoders",),
                    f"decoders {vit} need a plain ViT encoder (DPT) and decoders {other} a feature pyramid; "
                    "all decoders share one encoder, so they must need the same kind",
                    [("decoders", n, "architecture") for names in kinds.values() for n in names],
                )
            )
        for key, wanted in self._disagreed_encoder_defaults().items():
            listing = ", ".join(f"{n} ({self.decoders[n].architecture}) {v}" for n, v in wanted.items())
            issues.append(
                cross_issue(
                    ("encoder",),
                    f"the decoders' architectures default to different encoder.{key} values ({listing}); "
                    f"set encoder.{key} to the one you want",
                    [("decoders", n, "architecture") for n in wanted],
                )
            )
        return issues

    def _head_issues(self) -> list[SpecIssue]:
        """Every ``from`` names a decoder (or ``encoder``), and every decoder is read by a head."""
        issues: list[SpecIssue] = []
        for name in self.decoders:
            if name == ENCODER:
                issues.append(cross_issue(("decoders", name), "'encoder' cannot name a decoder: heads use `from: encoder` for the encoder's features; choose another name"))
        for name, head in self.heads.items():
            source = head.from_
            if isinstance(head, SegmentationHeadSpec) and source == ENCODER:
                issues.append(
                    cross_issue(
                        ("heads", name, "from"),
                        "a segmentation head reads a decoder, not the encoder; name one of the decoders: "
                        + ", ".join(self.decoders),
                    )
                )
            elif source != ENCODER and source not in self.decoders:
                options = list(self.decoders) + ([ENCODER] if isinstance(head, ClassificationHeadSpec) else [])
                hint = did_you_mean(source, options).removeprefix("; ")
                issues.append(
                    cross_issue(
                        ("heads", name, "from"),
                        f"no decoder is named {source!r}" + (f"; {hint}" if hint else "") + f" (`from` must be one of: {', '.join(options)})",
                        [("decoders",)],
                    )
                )
        used = {head.from_ for head in self.heads.values()}
        for name in self.decoders:
            if name not in used and name != ENCODER:
                issues.append(
                    cross_issue(
                        ("decoders", name),
                        f"decoder {name!r} is read by no head, so it would run for nothing; add a head with "
                        f"`from: {name}` or remove the decoder",
                        [("heads",)],
                    )
                )
        return issues

    def _decoder_issues(self, name: str) -> list[SpecIssue]:
        """The version-1 rules of one decoder, with its name in every path and message."""
        decoder = self.decoders[name]
        readers = [h for h, head in self.heads.items() if isinstance(head, SegmentationHeadSpec) and head.from_ == name]
        issues: list[SpecIssue] = []
        for head_name in readers or [None]:
            view = v1_view(self, name, head_name)
            found = decoder.cross_issues(view)
            # The rules on the encoder's channels presume a valid encoder and decoder (as in version 1).
            found = found or feature_channel_issues(view)
            issues += [v2_issue(issue, name, head_name) for issue in found]
        return issues

    def _loss_issues(self) -> list[SpecIssue]:
        """Each head's loss terms against that head's classes and activation."""
        if self.loss is None:
            return []
        issues: list[SpecIssue] = []
        for head_name, loss in self.loss.items():
            head = self.heads.get(head_name)
            if head is None:
                hint = did_you_mean(head_name, list(self.heads)).removeprefix("; ")
                issues.append(
                    cross_issue(
                        ("loss", head_name),
                        f"no head is named {head_name!r}" + (f"; {hint}" if hint else "") + f" (loss keys are head names: {', '.join(self.heads)})",
                        [("heads",)],
                    )
                )
                continue
            related = (("heads", head_name, "classes"), ("heads", head_name, "activation"))
            issues += [issue.under(("loss", head_name), related) for issue in loss_issues(loss, head.classes, head.activation)]
        return issues

    # ------------------------------------------------------------------ queries

    @property
    def architecture(self) -> str:
        """The decoders' architectures, joined with ``+`` in spec order (for summaries)."""
        return "+".join(d.architecture for d in self.decoders.values())

    def head_source(self, head_name: str) -> str:
        """What head ``head_name`` reads: a decoder name or ``encoder``."""
        return self.heads[head_name].from_


def _sections(decoders: dict[str, Any]) -> dict[str, type[DecoderSpec]]:
    """The section class of every well-formed decoder entry of raw data, by decoder name."""
    found: dict[str, type[DecoderSpec]] = {}
    for name, decoder in decoders.items():
        architecture = decoder.get("architecture") if isinstance(decoder, dict) else None
        section = SECTIONS.get(architecture) if isinstance(architecture, str) else None
        if section is not None:
            found[name] = section
    return found


def v1_head(head: SegmentationHeadSpec | None) -> HeadSpec:
    """The version-1 ``head:`` section with a segmentation head's options (the default head for None)."""
    if head is None:
        return HeadSpec()
    return HeadSpec.model_construct(
        classes=head.classes, activation=head.activation, upsampling=head.upsampling, kernel_size=head.kernel_size
    )


def v1_view(spec: MultiTaskSpec, decoder_name: str, head_name: str | None = None) -> ModelSpec:
    """A version-1 spec of one decoder (and one segmentation head) of ``spec``, without validation.

    Decoder sections check their rules and build their modules against a
    version-1 spec; this view lets every version-1 rule and builder serve
    each decoder of a version-2 spec unchanged.
    """
    head = spec.heads[head_name] if head_name is not None else None
    return ModelSpec.model_construct(
        specseg=1,
        name=spec.name,
        description=spec.description,
        metadata=spec.metadata,
        encoder=spec.encoder,
        decoder=spec.decoders[decoder_name],
        head=v1_head(head if isinstance(head, SegmentationHeadSpec) else None),
        aux_params=None,
        seed=spec.seed,
        loss=None,
        weights=None,
    )


def _v2_path(path: tuple[Any, ...], decoder_name: str, head_name: str | None) -> tuple[Any, ...]:
    """A version-1 spec path moved into version 2: ``decoder.x`` -> ``decoders.<name>.x``, ``head.x`` -> ``heads.<head>.x``."""
    path = tuple(path)
    if path[:1] == ("decoder",):
        return ("decoders", decoder_name) + path[1:]
    if path[:1] == ("head",):
        return ("heads", head_name) + path[1:] if head_name is not None else ("decoders", decoder_name)
    return path


_DECODER_WORD = re.compile(r"(?<![\w.])decoder\.")


def _v2_message(message: str, decoder_name: str) -> str:
    """Version-1 messages name ``decoder.<key>``; in version 2 that is ``decoders.<name>.<key>``."""
    return _DECODER_WORD.sub(f"decoders.{decoder_name}.", message)


def v2_issue(issue: SpecIssue, decoder_name: str, head_name: str | None) -> SpecIssue:
    """A version-1 issue of one decoder moved into version 2: paths (its own and related ones) and message."""
    related = tuple((_v2_path(path, decoder_name, head_name), loc) for path, loc in issue.related)
    return SpecIssue(_v2_message(issue.message, decoder_name), _v2_path(issue.path, decoder_name, head_name), issue.location, related)


def _unique(issues: list[SpecIssue]) -> list[SpecIssue]:
    """Issues in order without repeats (a decoder read by two heads is checked twice)."""
    seen: set[tuple[Any, str]] = set()
    out = []
    for issue in issues:
        key = (issue.path, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


def is_identifier(name: str) -> bool:
    """Whether ``name`` may name a decoder or head."""
    return bool(_NAME.match(name))
