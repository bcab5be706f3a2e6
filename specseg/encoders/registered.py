"""Building a registered encoder class (built-in modules and plugins): construction, weights, dilation."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.encoders.features import EncoderContractError
from specseg.encoders.pretrained import WeightsSource
from specseg.encoders.registry import EncoderEntry
from specseg.encoders.weight_loading import load_encoder_weights, local_weights_path, read, read_source
from specseg.errors import EncoderBuildError
from specseg.spec.encoder import EncoderSpec, WeightsFile


def accepts(cls: Callable[..., Any], name: str) -> tuple[bool, bool]:
    """(explicit parameter ``name``, accepts **kwargs) of a constructor."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return False, True
    params = signature.parameters
    explicit = name in params and params[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return explicit, var_kw


def _trim_features(module: EncoderMixin, args: Any, output: Any) -> Any:
    """Forward hook: keep the ``depth + 1`` maps of an encoder that returns all of its stages."""
    depth = module.depth
    if isinstance(output, (list, tuple)) and len(output) > depth + 1:
        return list(output)[: depth + 1]
    return output


def instantiate(entry: EncoderEntry, params: Mapping[str, Any], depth: int, output_stride: int) -> EncoderMixin:
    """Construct a registered encoder class with ``params``, honouring ``depth`` even if the class ignores it.

    ``depth`` and ``output_stride`` are passed when the constructor takes them
    (explicitly or through ``**kwargs``). An encoder that does not declare a
    ``depth`` parameter and keeps another ``_depth`` gets ``_depth`` set to the
    requested depth, and its extra feature maps are dropped, so SMP-style
    encoders written for depth 5 work at any depth. The result must derive
    from :class:`EncoderMixin` and declare consistent features.

    A ``ValueError`` from the constructor is reported at ``encoder.params``;
    an encoder that knows which key is at fault raises
    :class:`~specseg.errors.EncoderBuildError` with it (``"depth"``, ...).
    """
    try:
        cls = entry.resolve()
    except Exception as exc:  # noqa: BLE001 - an import string that does not resolve
        raise EncoderBuildError(f"encoder {entry.name!r} ({entry.source}) could not be imported: {type(exc).__name__}: {exc}") from None
    kwargs = {**entry.params, **params}
    takes_depth, var_kw = accepts(cls, "depth")
    takes_stride, _ = accepts(cls, "output_stride")
    if takes_depth or var_kw:
        kwargs["depth"] = depth
    if takes_stride or var_kw:
        kwargs["output_stride"] = output_stride
    try:
        encoder = cls(**kwargs)
    except EncoderBuildError:
        raise
    except TypeError as exc:
        raise EncoderBuildError(f"encoder {entry.name!r} rejected its parameters: {exc}", "params") from None
    except ValueError as exc:
        raise EncoderBuildError(f"encoder {entry.name!r} could not be built: {exc}", "params") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's constructor, or one given encoder.params
        if entry.is_builtin and not params:
            raise  # specseg's own encoder failing on its own defaults: a bug, reported as one
        where = "params" if params else "name"
        raise EncoderBuildError(f"encoder {entry.name!r} ({entry.source}) could not be built: {type(exc).__name__}: {exc}", where) from None
    if not isinstance(encoder, nn.Module) or not isinstance(encoder, EncoderMixin):
        raise EncoderBuildError(
            f"encoder {entry.name!r} ({entry.source}) did not build a torch.nn.Module deriving from "
            f"specseg.EncoderMixin but {type(encoder).__name__}"
        )
    if not takes_depth and encoder.depth != depth:
        encoder._depth = depth
        encoder.register_forward_hook(_trim_features)  # type: ignore[arg-type]
    return encoder


def checked_features(encoder: EncoderMixin, name: str) -> None:
    """Refuse an encoder whose declared features are inconsistent (a bug in the encoder, not in the spec)."""
    try:
        encoder.feature_info
    except EncoderContractError as exc:
        raise EncoderBuildError(f"encoder {name!r} breaks the encoder contract: {exc}") from None


def dilate(encoder: EncoderMixin, spec: EncoderSpec) -> None:
    """Dilate ``encoder`` to ``spec.output_stride`` where its depth reaches that deep."""
    wanted = min(spec.output_stride, 2**spec.depth)
    if encoder.output_stride == wanted:
        return
    try:
        encoder.make_dilated(spec.output_stride)
    except (NotImplementedError, ValueError) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise EncoderBuildError(
            f"encoder {spec.name!r} cannot be dilated{detail}; it supports output_stride 32 only", "output_stride"
        ) from None


def build_registered(
    entry: EncoderEntry, spec: EncoderSpec, load_weights: bool, base_dir: Path | None, source: WeightsSource | None
) -> EncoderMixin:
    """Build a registered encoder class for ``spec``: construct, load weights, adapt input channels, dilate."""
    encoder = instantiate(entry, spec.params, spec.depth, spec.output_stride)
    checked_features(encoder, spec.name)
    pretrained = load_weights and spec.weights is not None
    needs_channels = spec.in_channels != encoder.in_channels

    def adapt() -> None:
        try:
            encoder.set_in_channels(spec.in_channels, pretrained=pretrained)
        except (AttributeError, ValueError) as exc:
            raise EncoderBuildError(f"encoder {spec.name!r} cannot take {spec.in_channels} input channels: {exc}", "in_channels") from None

    if pretrained:
        if source is not None:
            what = f"pretrained weights {spec.weights!r} ({source.describe()})"
            state_dict = read_source(source)
        else:
            assert isinstance(spec.weights, WeightsFile)
            what = f"encoder weights from {spec.weights.path}"
            state_dict = read(local_weights_path(spec.weights, base_dir), spec.weights.sha256)
        load_encoder_weights(encoder, state_dict, spec, what, adapt if needs_channels else (lambda: None))
    elif needs_channels:
        adapt()
    dilate(encoder, spec)
    checked_features(encoder, spec.name)
    return encoder
