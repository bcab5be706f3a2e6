"""Compiling a validated spec into a :class:`SegmentationModel`: encoder, decoder, heads, initialisation.

The encoder comes from :func:`specseg.encoders.factory.build_encoder` (the
build the decoder section's ``encoder_kind`` asks for), the decoder and any
own head from the module registered for the section's architecture
(:mod:`specseg.decoders.registry`). Problems are located in the spec's document.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from specseg.blocks.pointwise import use_pointwise_convolutions
from specseg.decoders.registry import build_for
from specseg.encoders.factory import build_encoder, encoder_error
from specseg.errors import EncoderBuildError, Location, Locator, SpecError, SpecPath
from specseg.heads import ClassificationHead, SegmentationHead
from specseg.initialization import initialize_decoder, initialize_head, seeded
from specseg.meta_init import building_on_meta
from specseg.model import SegmentationModel, SpecNetwork
from specseg.multitask.build import build_multitask
from specseg.spec.model import ModelSpec
from specseg.spec.multitask import MultiTaskSpec
from specseg.spec.versions import AnySpec

if TYPE_CHECKING:
    from specseg.loader.document import Document


def locator(doc: "Document | None") -> Locator:
    """Where a spec path sits in ``doc`` (None without a document)."""

    def locate(path: SpecPath) -> Location | None:
        return doc.locate(path) if doc is not None else None

    return locate


def construct(spec: AnySpec, locate: Locator, base_dir: Path | None, load_encoder_weights: bool) -> SpecNetwork:
    """Build the network of a validated spec (on the current default device); problems raise a located SpecError.

    Version 1 gives a :class:`SegmentationModel`, version 2 a :class:`~specseg.multitask.MultiTaskModel`.
    """
    if isinstance(spec, MultiTaskSpec):
        network = build_multitask(spec, locate, base_dir, load_encoder_weights)
        use_pointwise_convolutions(network)
        return network
    return _construct_v1(spec, locate, base_dir, load_encoder_weights)


def _construct_v1(spec: ModelSpec, locate: Locator, base_dir: Path | None, load_encoder_weights: bool) -> SegmentationModel:
    """One encoder, one decoder, the segmentation head and the optional classification head."""
    section = spec.decoder
    architecture = build_for(section)
    with seeded(spec.seed), building_on_meta():
        try:
            encoder = build_encoder(spec.encoder, base_dir, load_weights=load_encoder_weights, kind=section.encoder_kind)
        except EncoderBuildError as exc:
            raise encoder_error(exc, locate) from None
        try:
            decoder = architecture.build_decoder(section, encoder, spec)
        except SpecError as exc:
            # Rules that depend on the built encoder are raised without positions; add them.
            raise exc.located(locate) from None
        # An architecture with its own head (DPT) builds it; the others share SegmentationHead.
        if architecture.head is not None:
            head = architecture.head(section, decoder, spec)
        else:
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
    model = SegmentationModel(
        encoder,
        decoder,
        head,
        classification,
        spec,
        requires_divisible_input=section.defaults.requires_divisible_input,
    )
    # 1x1 convolutions take oneDNN on channels_last inputs at one thread too (2-3x faster there).
    use_pointwise_convolutions(model)
    return model


def meta_model(spec: AnySpec, doc: "Document | None" = None, base_dir: Path | None = None) -> SpecNetwork:
    """Build ``spec`` on the meta device: no parameter memory, no random initialisation, no downloads."""
    with torch.device("meta"):
        return construct(spec, locator(doc), base_dir, load_encoder_weights=False)
