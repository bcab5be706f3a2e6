"""Compiling a spec into a :class:`SegmentationModel`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from specseg.encoders.factory import EncoderBuildError, build_encoder, encoder_error
from specseg.errors import Location, SpecPath
from specseg.heads import ClassificationHead, SegmentationHead
from specseg.loader.document import Document
from specseg.loader.source import load_document
from specseg.model import SegmentationModel
from specseg.spec.model import ModelSpec
from specseg.spec.validation import validate_document


def initialize_decoder(module: nn.Module) -> None:
    """SMP's decoder initialisation: He-uniform convolutions, unit norms, Xavier linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def initialize_head(module: nn.Module) -> None:
    """SMP's head initialisation: Xavier-uniform weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run a block under ``seed`` without disturbing the caller's global RNG state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def resolve(source: Any) -> tuple[ModelSpec, Document | None, Path | None]:
    """Load and validate any spec source, keeping its document for error locations."""
    if isinstance(source, ModelSpec):
        return source, None, None
    doc, base = load_document(source)
    return validate_document(doc), doc, base


def build_from_spec(spec: ModelSpec, doc: Document | None = None, base_dir: Path | None = None) -> SegmentationModel:
    """Build the model for a validated spec (``doc`` only serves error locations)."""

    def locate(path: SpecPath) -> Location | None:
        return doc.locate(path) if doc is not None else None

    section = spec.decoder
    with seeded(spec.seed):
        try:
            encoder = build_encoder(spec.encoder, base_dir, kind=section.encoder_kind)
        except EncoderBuildError as exc:
            raise encoder_error(exc, locate) from None
        decoder = section.build(encoder, spec)
        head = SegmentationHead(
            in_channels=decoder.out_channels,
            out_channels=spec.head.classes,
            kernel_size=spec.head.kernel_size,
            activation=spec.head.activation,
            upsampling=spec.head.upsampling,
        )
        aux = spec.aux_params
        classification = (
            ClassificationHead(
                in_channels=encoder.out_channels[-1],
                classes=aux.classes,
                pooling=aux.pooling,
                dropout=aux.dropout,
                activation=aux.activation,
            )
            if aux is not None
            else None
        )
        initialize_decoder(decoder)
        initialize_head(head)
        if classification is not None:
            initialize_head(classification)
    return SegmentationModel(
        encoder,
        decoder,
        head,
        classification,
        spec,
        requires_divisible_input=section.defaults.requires_divisible_input,
    )


def build(source: Any) -> SegmentationModel:
    """Build a :class:`SegmentationModel` from a spec path, YAML/JSON text, mapping or ModelSpec.

    Raises :class:`specseg.SpecError` with located issues when the spec is invalid
    or names something that cannot be built.
    """
    spec, doc, base = resolve(source)
    return build_from_spec(spec, doc, base)
