"""Building the encoder a spec's ``encoder:`` section describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from specseg.encoders.registry import registry
from specseg.errors import SpecError, SpecIssue
from specseg.loader.suggest import closest
from specseg.spec.encoder import EncoderSpec, WeightsFile


class EncoderBuildError(Exception):
    """An encoder could not be built; ``field`` names the spec key at fault."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


def _timm_encoder(spec: EncoderSpec, load_pretrained: bool) -> nn.Module:
    import timm

    from specseg.encoders.timm_universal import TimmUniversalEncoder

    model_name = spec.name[3:]
    base_name = model_name.split(".")[0]
    if not timm.is_model(base_name):
        hints = closest(base_name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join('tu-' + h for h in hints)}?" if hints else ""
        raise EncoderBuildError(f"timm has no model named {base_name!r}{hint}")
    pretrained: bool | str = False
    if load_pretrained and isinstance(spec.weights, str):
        if spec.weights not in ("imagenet",) and "." not in model_name:
            model_name = f"{model_name}.{spec.weights}"
        pretrained = True
    try:
        return TimmUniversalEncoder(
            model_name,
            depth=spec.depth,
            output_stride=spec.output_stride,
            in_channels=spec.in_channels,
            pretrained=pretrained,
            **spec.params,
        )
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        text = str(exc)
        if "encoder.depth" in text:
            field = "depth"
        elif spec.output_stride != 32 and "stride" in text.lower():
            field = "output_stride"
        else:
            field = "params" if isinstance(exc, TypeError) else "name"
        raise EncoderBuildError(f"timm could not build {spec.name!r}: {exc}", field) from None


def _registered_encoder(spec: EncoderSpec) -> nn.Module:
    entry = registry.get(spec.name)
    assert entry is not None
    cls = entry.resolve()
    kwargs = {**entry.params, **spec.params, "depth": spec.depth, "output_stride": spec.output_stride}
    try:
        encoder = cls(**kwargs)
    except TypeError as exc:
        raise EncoderBuildError(f"encoder {spec.name!r} rejected its parameters: {exc}", "params") from None
    if spec.in_channels != encoder.in_channels:
        encoder.set_in_channels(spec.in_channels, pretrained=spec.weights is not None)
    wanted = min(spec.output_stride, 2**spec.depth)
    if encoder.output_stride != wanted:
        try:
            encoder.make_dilated(spec.output_stride)
        except NotImplementedError:
            raise EncoderBuildError(
                f"encoder {spec.name!r} cannot be dilated; it supports output_stride 32 only", "output_stride"
            ) from None
    return encoder


def build_encoder(spec: EncoderSpec, base_dir: Path | None = None, load_weights: bool = True, kind: str = "hierarchical") -> nn.Module:
    """Build the encoder for ``spec``; ``load_weights=False`` skips pretrained weights.

    ``kind`` is the decoder's :attr:`DecoderSpec.encoder_kind`: ``vit`` builds
    a plain-ViT encoder (DPT) instead of a feature pyramid.
    Raises :class:`EncoderBuildError` naming the spec key at fault.
    """
    if kind == "vit":
        from specseg.encoders.timm_vit import build_vit_encoder

        return build_vit_encoder(spec, load_weights)
    if spec.output_indices is not None:
        raise EncoderBuildError("output_indices applies to ViT encoders (architecture dpt) only", "output_indices")
    if isinstance(spec.weights, WeightsFile) or (load_weights and isinstance(spec.weights, str) and not spec.name.startswith("tu-")):
        if load_weights:
            raise EncoderBuildError(
                "pretrained encoder weights are not supported for this encoder yet", "weights"
            )
    if spec.name.startswith("tu-"):
        return _timm_encoder(spec, load_weights)
    return _registered_encoder(spec)


def encoder_error(exc: EncoderBuildError, locate: Any) -> SpecError:
    """Turn an :class:`EncoderBuildError` into a located :class:`SpecError`."""
    path = ("encoder", exc.field)
    return SpecError([SpecIssue(str(exc), path, locate(path))])
