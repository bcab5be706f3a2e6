"""Compiling a version-2 spec into a :class:`MultiTaskModel`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch import nn

from specseg.decoders.registry import build_for
from specseg.encoders.base import EncoderMixin
from specseg.encoders.factory import build_encoder, encoder_error
from specseg.errors import EncoderBuildError, Location, SpecError, SpecPath, spec_error
from specseg.heads import ClassificationHead, SegmentationHead
from specseg.initialization import initialize_decoder, initialize_head, seeded
from specseg.meta_init import building_on_meta
from specseg.multitask.model import MultiTaskModel
from specseg.spec.heads import ENCODER, SegmentationHeadSpec
from specseg.spec.multitask import MultiTaskSpec, v1_view, v2_issue


def build_multitask(
    spec: MultiTaskSpec, locate: Callable[[SpecPath], Location | None], base_dir: Path | None, load_encoder_weights: bool
) -> MultiTaskModel:
    """Build the network of a validated version-2 spec.

    Modules are created, then initialised, in the order a version-1 build
    uses (encoder, decoders, heads in spec order): a migrated version-1 spec
    with the same seed gets bitwise the same initial weights.
    """
    first = next(iter(spec.decoders.values()))
    with seeded(spec.seed), building_on_meta():
        try:
            encoder = build_encoder(spec.encoder, base_dir, load_weights=load_encoder_weights, kind=first.encoder_kind)
        except EncoderBuildError as exc:
            raise encoder_error(exc, locate) from None
        decoders: dict[str, nn.Module] = {}
        for name, section in spec.decoders.items():
            try:
                decoders[name] = build_for(section).build_decoder(section, encoder, v1_view(spec, name))
            except SpecError as exc:
                # Rules that depend on the built encoder name version-1 paths without positions; located ones stay.
                issues = [issue if issue.location else v2_issue(issue, name, None).located(locate) for issue in exc.issues]
                raise spec_error(issues) from None
        heads = {name: _build_head(spec, name, encoder, decoders) for name in spec.heads}
        for decoder in decoders.values():
            initialize_decoder(decoder)
        for head in heads.values():
            initialize_head(head)
    return MultiTaskModel(
        encoder,
        decoders,
        heads,
        {name: head.from_ for name, head in spec.heads.items()},
        spec,
        requires_divisible_input=any(type(d).defaults.requires_divisible_input for d in spec.decoders.values()),
    )


def _build_head(spec: MultiTaskSpec, name: str, encoder: EncoderMixin, decoders: dict[str, nn.Module]) -> nn.Module:
    """One head on what it reads; an architecture with its own segmentation head (DPT) builds it."""
    head = spec.heads[name]
    source = head.from_
    if isinstance(head, SegmentationHeadSpec):
        decoder = decoders[source]
        section = spec.decoders[source]
        own_head = build_for(section).head
        if own_head is not None:
            return own_head(section, decoder, v1_view(spec, source, name))
        return SegmentationHead(
            in_channels=decoder.out_channels,
            out_channels=head.classes,
            kernel_size=head.kernel_size,
            activation=head.activation,
            upsampling=head.upsampling,
        )
    in_channels = encoder.out_channels[-1] if source == ENCODER else decoders[source].out_channels
    return ClassificationHead(
        in_channels=in_channels, classes=head.classes, pooling=head.pooling, dropout=head.dropout, activation=head.activation
    )
