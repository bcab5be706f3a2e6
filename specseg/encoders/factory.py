"""Building the encoder a spec's ``encoder:`` section describes, with its weights: the dispatch.

The work is done by one module per job (moved out of this module; the old
names stay importable from here):

* :mod:`specseg.encoders.weight_loading`: weights requests, downloads, files, loading, first-conv adaptation;
* :mod:`specseg.encoders.timm_build`: ``tu-`` encoders and catalogue names backed by timm models;
* :mod:`specseg.encoders.registered`: registered classes (built-ins, plugins): construction, dilation;
* :mod:`specseg.encoders.timm_vit`: plain ViT encoders for DPT;
* :mod:`specseg.encoders.timm_names`: ``tu-`` name checks with suggestions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from specseg.encoders.base import EncoderMixin
from specseg.encoders.registered import build_registered, instantiate
from specseg.encoders.registry import PluginError, registry
from specseg.encoders.timm_build import build_timm_encoder
from specseg.encoders.timm_names import TIMM_PREFIX, checked_timm_name
from specseg.encoders.timm_vit import build_vit_encoder
from specseg.encoders.weight_loading import local_weights_path, weights_request
from specseg.errors import EncoderBuildError, Locator, SpecError, spec_error
from specseg.spec.decoders.base import EncoderKind
from specseg.spec.encoder import EncoderSpec

__all__ = [
    "EncoderBuildError",
    "build_encoder",
    "checked_timm_name",
    "encoder_error",
    "instantiate",
    "local_weights_path",
]

#: Former private names, kept for code that imported them from here.
_build_registered = build_registered


def build_pyramid_encoder(spec: EncoderSpec, base_dir: Path | None = None, load_weights: bool = True) -> EncoderMixin:
    """Build a feature-pyramid encoder: ``tu-<timm model>`` or a registered name (built-in or plugin)."""
    if spec.output_indices is not None:
        raise EncoderBuildError("output_indices applies to ViT encoders (architecture dpt) only", "output_indices")
    if spec.name.startswith(TIMM_PREFIX):
        model_name = checked_timm_name(spec)
        source = weights_request(spec, None) if load_weights else None
        return build_timm_encoder(spec, model_name, {}, load_weights, base_dir, source)
    try:
        entry = registry.get(spec.name)
    except PluginError as exc:
        raise EncoderBuildError(str(exc), "name") from None
    if entry is None:
        raise EncoderBuildError(f"unknown encoder {spec.name!r}")
    try:
        params_model = entry.resolve_params_model()
    except Exception as exc:  # noqa: BLE001 - a plugin's params module that fails to import
        raise EncoderBuildError(f"the params model of encoder {spec.name!r} could not be imported: {exc}", "params") from None
    if params_model is not None:
        from pydantic import ValidationError

        try:
            params_model.model_validate(dict(spec.params))
        except ValidationError as exc:
            raise EncoderBuildError(f"invalid encoder.params for {spec.name!r}: {exc}", "params") from None
    source = weights_request(spec, entry) if load_weights else None
    if entry.timm_model is not None:
        return build_timm_encoder(spec, entry.timm_model, entry.timm_options, load_weights, base_dir, source)
    return build_registered(entry, spec, load_weights, base_dir, source)


def _build_vit(spec: EncoderSpec, base_dir: Path | None, load_weights: bool) -> EncoderMixin:
    return build_vit_encoder(spec, load_weights)


#: The encoder build for each kind a decoder section may ask for (:attr:`DecoderSpec.encoder_kind`).
BUILDS: dict[str, Callable[[EncoderSpec, Path | None, bool], EncoderMixin]] = {
    "pyramid": build_pyramid_encoder,
    "vit": _build_vit,
}


def build_encoder(
    spec: EncoderSpec, base_dir: Path | None = None, load_weights: bool = True, kind: EncoderKind = "pyramid"
) -> EncoderMixin:
    """Build the encoder for ``spec``; ``load_weights=False`` skips pretrained weights.

    ``kind`` is the decoder's :attr:`DecoderSpec.encoder_kind`: ``vit`` builds
    a plain-ViT encoder (DPT) instead of a feature pyramid. ``base_dir`` is
    the directory relative weight paths are resolved against (the spec
    file's). Raises :class:`EncoderBuildError` naming the spec key at fault.
    """
    return BUILDS[kind](spec, base_dir, load_weights)


def encoder_error(exc: EncoderBuildError, locate: Locator | Any) -> SpecError:
    """Turn an :class:`EncoderBuildError` into a located :class:`SpecError`.

    SMP raises ``ValueError`` for an encoder that cannot be dilated; so does
    specseg (a :class:`SpecValueError`, still located: :func:`spec_error`).
    """
    return spec_error([exc.issue(locate)])
