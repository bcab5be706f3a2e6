"""Building the encoder a spec's ``encoder:`` section describes, with its weights."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from specseg.encoders.pretrained import WeightsRequestError, WeightsSource, download, source_for
from specseg.encoders.registry import EncoderEntry, PluginError, registry
from specseg.errors import SpecError, SpecIssue, SpecValueError
from specseg.loader.suggest import closest
from specseg.spec.encoder import EncoderSpec, WeightsFile
from specseg.weights import WeightsError, load_into, mismatch_report, read_state_dict


class EncoderBuildError(Exception):
    """An encoder could not be built; ``field`` names the spec key at fault."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


# --- weights ------------------------------------------------------------------


def local_weights_path(weights: WeightsFile, base_dir: Path | None) -> Path:
    """The file a ``{path, sha256}`` weights entry points at (relative paths are relative to the spec file)."""
    path = Path(os.path.expanduser(weights.path))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def _weights_request(spec: EncoderSpec, entry: EncoderEntry | None) -> WeightsSource | None:
    if not isinstance(spec.weights, str):
        return None
    try:
        return source_for(entry, spec.name, spec.weights)
    except WeightsRequestError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def _fetch(source: WeightsSource) -> Path:
    try:
        return download(source)
    except WeightsRequestError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def _read(path: Path, sha256: str | None) -> dict[str, torch.Tensor]:
    try:
        return read_state_dict(path, sha256)
    except WeightsError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def _read_source(source: WeightsSource) -> dict[str, torch.Tensor]:
    """Download and read a named source's file, with its keys converted to specseg's module (``key_map``)."""
    state_dict = _read(_fetch(source), source.sha256)
    if source.key_map:
        from specseg.encoders.registry import _resolve_import

        state_dict = _resolve_import(source.key_map)(state_dict)
    return state_dict


def _strip_prefix(state_dict: dict[str, torch.Tensor], own_keys: set[str]) -> dict[str, torch.Tensor]:
    """Accept an encoder saved inside a whole model (``encoder.``-prefixed keys only)."""
    if state_dict and not (own_keys & set(state_dict)) and all(k.startswith("encoder.") for k in state_dict):
        return {k[len("encoder.") :]: v for k, v in state_dict.items()}
    return state_dict


def _adapt_first_conv(encoder: nn.Module, state_dict: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
    """Give 3-channel first-convolution weights ``in_channels`` inputs, as timm does (summed or cycled and rescaled)."""
    from timm.models import adapt_input_conv

    own = encoder.state_dict()
    out = dict(state_dict)
    for key, tensor in state_dict.items():
        target = own.get(key)
        if (
            target is not None
            and tensor.ndim == 4
            and target.ndim == 4
            and tensor.shape[0] == target.shape[0]
            and tensor.shape[2:] == target.shape[2:]
            and tensor.shape[1] == 3
            and target.shape[1] != 3
        ):
            out[key] = adapt_input_conv(target.shape[1], tensor)
    return out


def _load_module_weights(
    encoder: nn.Module, state_dict: dict[str, torch.Tensor], spec: EncoderSpec, what: str, adapt: Callable[[], None] | None
) -> None:
    """Load ``state_dict`` strictly; ``adapt`` (set_in_channels) runs before or after, whichever makes it fit."""
    drop = set(getattr(encoder, "classifier_keys", ()))
    state_dict = {k: v for k, v in _strip_prefix(state_dict, set(encoder.state_dict())).items() if k not in drop}
    try:
        if adapt is None:
            if spec.in_channels != 3:
                state_dict = _adapt_first_conv(encoder, state_dict, spec.in_channels)
            load_into(encoder, state_dict, what)
            return
        if mismatch_report(encoder, state_dict):
            # Perhaps saved with spec.in_channels inputs already: adapt first, then load.
            adapt()
            load_into(encoder, state_dict, what)
        else:
            load_into(encoder, state_dict, what)
            adapt()
    except WeightsError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def _temporary_safetensors(state_dict: Mapping[str, torch.Tensor]) -> str:
    from safetensors.torch import save_file

    handle, name = tempfile.mkstemp(suffix=".safetensors", prefix="specseg-weights-")
    os.close(handle)
    save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, name)
    return name


# --- timm-backed encoders -----------------------------------------------------------


def _timm_error_field(spec: EncoderSpec, exc: BaseException) -> str:
    from specseg.encoders.timm_universal import NotDilatableError

    if isinstance(exc, NotDilatableError):
        return "output_stride"
    text = str(exc)
    if "encoder.depth" in text:
        return "depth"
    if "encoder.params" in text or isinstance(exc, TypeError):
        return "params"
    return "name"


def _build_timm(
    spec: EncoderSpec,
    model_name: str,
    options: Mapping[str, Any],
    load_weights: bool,
    base_dir: Path | None,
    source: WeightsSource | None,
) -> nn.Module:
    from specseg.encoders.timm_universal import TimmUniversalEncoder

    pretrained: bool | str = False
    temporary: str | None = None
    own_layout: dict[str, torch.Tensor] | None = None
    if load_weights and source is not None and source.layout == "smp":
        own_layout = _read_source(source)  # SMP's encoder state dict: loaded below, as SMP loads it
    elif load_weights and source is not None:
        pretrained = str(_fetch(source))
    elif load_weights and isinstance(spec.weights, WeightsFile):
        state_dict = _read(local_weights_path(spec.weights, base_dir), spec.weights.sha256)
        if any(k.startswith("model.") or k.startswith("encoder.model.") for k in state_dict):
            own_layout = state_dict  # saved from a specseg/SMP tu- encoder: loaded below
        else:
            temporary = _temporary_safetensors(state_dict)  # a timm checkpoint: timm adapts and filters it
            pretrained = temporary
    kwargs = {**options, **spec.params}
    try:
        encoder = TimmUniversalEncoder(
            model_name,
            depth=spec.depth,
            output_stride=spec.output_stride,
            in_channels=spec.in_channels,
            pretrained=pretrained,
            **kwargs,
        )
    except EncoderBuildError:
        raise
    except (RuntimeError, OSError) as exc:
        if pretrained:
            raise EncoderBuildError(f"the weights for {spec.name!r} do not fit timm's {model_name!r}: {exc}", "weights") from None
        raise EncoderBuildError(f"timm could not build {spec.name!r}: {exc}", _timm_error_field(spec, exc)) from None
    except (TypeError, ValueError, AssertionError, KeyError) as exc:
        raise EncoderBuildError(f"timm could not build {spec.name!r}: {exc}", _timm_error_field(spec, exc)) from None
    finally:
        if temporary is not None:
            os.unlink(temporary)
    if own_layout is not None:
        what = f"pretrained weights {spec.weights!r} ({source.describe()})" if source is not None else f"encoder weights from {spec.weights.path}"  # type: ignore[union-attr]
        _load_module_weights(encoder, own_layout, spec, what, adapt=None)
    return encoder


def checked_timm_name(spec: EncoderSpec) -> str:
    """The timm model name of a ``tu-`` encoder (tag kept); :class:`EncoderBuildError` with suggestions when timm lacks it."""
    import timm

    model_name = spec.name[3:]
    base_name = model_name.split(".")[0]
    if not timm.is_model(base_name):
        hints = closest(base_name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join('tu-' + h for h in hints)}?" if hints else ""
        raise EncoderBuildError(f"timm has no model named {base_name!r}{hint}")
    return model_name


# --- registered encoders (built-in modules and plugins) ----------------------------------


def _accepts(cls: Callable[..., Any], name: str) -> tuple[bool, bool]:
    """(explicit parameter ``name``, accepts **kwargs) of a constructor."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return False, True
    params = signature.parameters
    explicit = name in params and params[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return explicit, var_kw


def _trim_features(module: nn.Module, args: Any, output: Any) -> Any:
    depth = getattr(module, "_depth", None)
    if depth is not None and isinstance(output, (list, tuple)) and len(output) > depth + 1:
        return list(output)[: depth + 1]
    return output


def instantiate(entry: EncoderEntry, params: Mapping[str, Any], depth: int, output_stride: int) -> nn.Module:
    """Construct a registered encoder class with ``params``, honouring ``depth`` even if the class ignores it.

    ``depth`` and ``output_stride`` are passed when the constructor takes them
    (explicitly or through ``**kwargs``). An encoder that does not declare a
    ``depth`` parameter and keeps another ``_depth`` gets ``_depth`` set to the
    requested depth, and its extra feature maps are dropped, so SMP-style
    encoders written for depth 5 work at any depth.
    """
    try:
        cls = entry.resolve()
    except Exception as exc:  # noqa: BLE001 - an import string that does not resolve
        raise EncoderBuildError(f"encoder {entry.name!r} ({entry.source}) could not be imported: {type(exc).__name__}: {exc}") from None
    kwargs = {**entry.params, **params}
    takes_depth, var_kw = _accepts(cls, "depth")
    takes_stride, _ = _accepts(cls, "output_stride")
    if takes_depth or var_kw:
        kwargs["depth"] = depth
    if takes_stride or var_kw:
        kwargs["output_stride"] = output_stride
    try:
        encoder = cls(**kwargs)
    except TypeError as exc:
        raise EncoderBuildError(f"encoder {entry.name!r} rejected its parameters: {exc}", "params") from None
    except ValueError as exc:
        raise EncoderBuildError(f"encoder {entry.name!r} could not be built: {exc}", "depth" if "depth" in str(exc) else "params") from None
    if not isinstance(encoder, nn.Module):
        raise EncoderBuildError(f"encoder {entry.name!r} ({entry.source}) did not build a torch.nn.Module but {type(encoder).__name__}")
    if not takes_depth and getattr(encoder, "_depth", depth) != depth:
        encoder._depth = depth  # type: ignore[assignment]
        encoder.register_forward_hook(_trim_features)
    return encoder


def _dilate(encoder: nn.Module, spec: EncoderSpec) -> None:
    wanted = min(spec.output_stride, 2**spec.depth)
    if int(getattr(encoder, "output_stride", 32)) == wanted:
        return
    make_dilated = getattr(encoder, "make_dilated", None)
    try:
        if make_dilated is None:
            raise NotImplementedError
        make_dilated(spec.output_stride)
    except (NotImplementedError, ValueError) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise EncoderBuildError(
            f"encoder {spec.name!r} cannot be dilated{detail}; it supports output_stride 32 only", "output_stride"
        ) from None


def _build_registered(entry: EncoderEntry, spec: EncoderSpec, load_weights: bool, base_dir: Path | None, source: WeightsSource | None) -> nn.Module:
    encoder = instantiate(entry, spec.params, spec.depth, spec.output_stride)
    pretrained = load_weights and spec.weights is not None
    needs_channels = spec.in_channels != getattr(encoder, "in_channels", 3)

    def adapt() -> None:
        try:
            encoder.set_in_channels(spec.in_channels, pretrained=pretrained)  # type: ignore[operator]
        except (AttributeError, ValueError) as exc:
            raise EncoderBuildError(f"encoder {spec.name!r} cannot take {spec.in_channels} input channels: {exc}", "in_channels") from None

    if pretrained:
        if source is not None:
            what = f"pretrained weights {spec.weights!r} ({source.describe()})"
            state_dict = _read_source(source)
        else:
            assert isinstance(spec.weights, WeightsFile)
            what = f"encoder weights from {spec.weights.path}"
            state_dict = _read(local_weights_path(spec.weights, base_dir), spec.weights.sha256)
        _load_module_weights(encoder, state_dict, spec, what, adapt if needs_channels else (lambda: None))
    elif needs_channels:
        adapt()
    _dilate(encoder, spec)
    return encoder


def build_encoder(spec: EncoderSpec, base_dir: Path | None = None, load_weights: bool = True, kind: str = "hierarchical") -> nn.Module:
    """Build the encoder for ``spec``; ``load_weights=False`` skips pretrained weights.

    ``kind`` is the decoder's :attr:`DecoderSpec.encoder_kind`: ``vit`` builds
    a plain-ViT encoder (DPT) instead of a feature pyramid. ``base_dir`` is
    the directory relative weight paths are resolved against (the spec
    file's). Raises :class:`EncoderBuildError` naming the spec key at fault.
    """
    if kind == "vit":
        from specseg.encoders.timm_vit import build_vit_encoder

        return build_vit_encoder(spec, load_weights)
    if spec.output_indices is not None:
        raise EncoderBuildError("output_indices applies to ViT encoders (architecture dpt) only", "output_indices")
    if spec.name.startswith("tu-"):
        model_name = checked_timm_name(spec)
        source = _weights_request(spec, None) if load_weights else None
        return _build_timm(spec, model_name, {}, load_weights, base_dir, source)
    try:
        entry = registry.get(spec.name)
    except PluginError as exc:
        raise EncoderBuildError(str(exc), "name") from None
    if entry is None:
        raise EncoderBuildError(f"unknown encoder {spec.name!r}")
    params_model = None
    try:
        params_model = entry.resolve_params_model()
    except Exception as exc:  # noqa: BLE001
        raise EncoderBuildError(f"the params model of encoder {spec.name!r} could not be imported: {exc}", "params") from None
    if params_model is not None:
        from pydantic import ValidationError

        try:
            params_model.model_validate(dict(spec.params))
        except ValidationError as exc:
            raise EncoderBuildError(f"invalid encoder.params for {spec.name!r}: {exc}", "params") from None
    source = _weights_request(spec, entry) if load_weights else None
    if entry.timm_model is not None:
        return _build_timm(spec, entry.timm_model, entry.timm_options, load_weights, base_dir, source)
    return _build_registered(entry, spec, load_weights, base_dir, source)


def encoder_error(exc: EncoderBuildError, locate: Any) -> SpecError:
    """Turn an :class:`EncoderBuildError` into a located :class:`SpecError`."""
    path = ("encoder", exc.field)
    # SMP raises ValueError for an encoder that cannot be dilated; so does specseg (still located).
    kind = SpecValueError if exc.field == "output_stride" else SpecError
    return kind([SpecIssue(str(exc), path, locate(path))])
