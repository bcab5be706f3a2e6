"""Compiling a version-2 spec into a :class:`MultiTaskModel`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from specseg.errors import Location, SpecError, SpecIssue, SpecPath
from specseg.heads import ClassificationHead, SegmentationHead
from specseg.multitask.model import MultiTaskModel
from specseg.spec.heads import ENCODER, SegmentationHeadSpec
from specseg.spec.multitask import MultiTaskSpec, _v2_message, _v2_path, v1_view


def build_multitask(
    spec: MultiTaskSpec, locate: Callable[[SpecPath], Location | None], base_dir: Path | None, load_encoder_weights: bool
) -> MultiTaskModel:
    """Build the network of a validated version-2 spec.

    Modules are created, then initialised, in the order a version-1 build
    uses (encoder, decoders, heads in spec order): a migrated version-1 spec
    with the same seed gets bitwise the same initial weights.
    """
    from specseg.builder import _building_on_meta, initialize_decoder, initialize_head, seeded
    from specseg.encoders.factory import EncoderBuildError, build_encoder, encoder_error

    first = next(iter(spec.decoders.values()))
    with seeded(spec.seed), _building_on_meta():
        try:
            encoder = build_encoder(spec.encoder, base_dir, load_weights=load_encoder_weights, kind=first.encoder_kind)
        except EncoderBuildError as exc:
            raise encoder_error(exc, locate) from None
        decoders: dict[str, nn.Module] = {}
        for name, section in spec.decoders.items():
            try:
                decoders[name] = section.build(encoder, v1_view(spec, name))
            except SpecError as exc:
                # Rules that depend on the built encoder name version-1 paths without positions.
                issues = []
                for issue in exc.issues:
                    if issue.location:
                        issues.append(issue)
                        continue
                    path = _v2_path(issue.path, name, None)
                    related = tuple((_v2_path(r, name, None), loc) for r, loc in issue.related)
                    issues.append(SpecIssue(_v2_message(issue.message, name), path, locate(path), related))
                raise SpecError(issues) from None
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


def _build_head(spec: MultiTaskSpec, name: str, encoder: nn.Module, decoders: dict[str, nn.Module]) -> nn.Module:
    """One head on what it reads; an architecture with its own segmentation head (DPT) builds it."""
    head = spec.heads[name]
    source = head.from_
    if isinstance(head, SegmentationHeadSpec):
        decoder = decoders[source]
        own: Any = spec.decoders[source].build_head(decoder, v1_view(spec, source, name))
        if own is not None:
            return own
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
