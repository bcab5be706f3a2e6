"""Mapping SMP constructor arguments onto a specseg spec (torch-free).

The rule, documented in the README:

* ``decoder_X`` -> ``decoder.X``; ``decoder_use_norm`` (and the deprecated
  ``decoder_use_batchnorm``) -> ``decoder.norm``; ``decoder_attention_type``
  -> ``decoder.attention``; architecture-specific exceptions are each
  section's ``smp_renames`` (PSPNet's ``psp_out_channels`` -> ``decoder.out_channels``);
* ``encoder_name/weights/depth/output_stride/output_indices`` -> ``encoder.*``,
  ``in_channels`` -> ``encoder.in_channels``;
* ``classes``, ``activation``, ``upsampling`` -> ``head.*``; ``aux_params`` -> ``aux_params``;
* any other keyword argument goes to ``encoder.params`` (SMP passes it to
  ``tu-`` encoders; for its other encoders SMP drops it, and specseg's
  encoder refuses it with a reason rather than guess);
* ``encoder_output_stride`` on a class without that parameter (all but
  DeepLabV3, DeepLabV3+ and PAN), and ``upsampling`` on U-Net, U-Net++, MAnet,
  LinkNet and DPT, are such arguments: SMP records them in config.json but
  builds without them for non-``tu-`` encoders, so the mapping leaves them
  out, with a warning, and the network is the one SMP built.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

from specseg.errors import SpecsegError
from specseg.spec.decoders import SECTIONS

_ENCODER_KEYS = {
    "encoder_name": "name",
    "encoder_weights": "weights",
    "encoder_depth": "depth",
    "encoder_output_stride": "output_stride",
    "encoder_output_indices": "output_indices",
    "in_channels": "in_channels",
}
_HEAD_KEYS = {"classes": "classes", "activation": "activation", "upsampling": "upsampling"}
_DECODER_SPECIAL = {
    "decoder_use_norm": "norm",
    "decoder_attention_type": "attention",
}
#: SMP 0.6's model classes whose constructor takes ``encoder_output_stride``; elsewhere it lands in ``**kwargs``.
OUTPUT_STRIDE_CLASSES = frozenset({"DeepLabV3", "DeepLabV3Plus", "PAN"})
#: Those whose constructor takes ``upsampling`` (U-Net, U-Net++, MAnet, LinkNet and DPT do not).
UPSAMPLING_CLASSES = frozenset({"FPN", "PSPNet", "DeepLabV3", "DeepLabV3Plus", "PAN", "UPerNet", "Segformer"})
#: Arguments only some SMP classes name: on the others SMP hands them to the encoder (see _without_ignored).
CLASS_ARGUMENTS: dict[str, frozenset[str]] = {"encoder_output_stride": OUTPUT_STRIDE_CLASSES, "upsampling": UPSAMPLING_CLASSES}
#: The encoder SMP builds when ``encoder_name`` is not given.
SMP_DEFAULT_ENCODER = "resnet34"

#: SMP 0.6's deprecated arguments: old name -> (current name, the model classes that accept the old one).
#: SMP warns with a DeprecationWarning and lets the old argument, when not None, override the new one.
DEPRECATED_ARGUMENTS: dict[str, tuple[str, frozenset[str]]] = {
    "decoder_use_batchnorm": ("decoder_use_norm", frozenset({"Unet", "UnetPlusPlus", "MAnet", "Linknet"})),
    "psp_use_batchnorm": ("decoder_use_norm", frozenset({"PSPNet"})),
    "upscale_mode": ("decoder_interpolation", frozenset({"PAN"})),
}


class SMPConfigError(SpecsegError, ValueError):
    """An SMP argument that specseg cannot represent; ``argument`` names it."""

    def __init__(self, argument: str, message: str):
        super().__init__(f"{argument}: {message}")
        self.argument = argument


def architecture_for_smp_class(model_class: str) -> str:
    """The ``decoder.architecture`` value for an SMP model class name."""
    for arch, section in SECTIONS.items():
        if section.smp_class == model_class:
            return arch
    known = ", ".join(sorted(s.smp_class for s in SECTIONS.values()))
    raise SMPConfigError("_model_class", f"unknown SMP model class {model_class!r}; specseg supports {known}")


def spec_from_smp_kwargs(
    model_class: str,
    kwargs: Mapping[str, Any],
    origins: dict[tuple[str, ...], str] | None = None,
    ignored: list[str] | None = None,
) -> dict[str, Any]:
    """The spec mapping equivalent to ``smp.<model_class>(**kwargs)``.

    Tuples become lists; ``None`` arguments are left out where they mean
    "default". ``origins``, when given, is filled with spec path -> SMP
    argument, so that errors can point back at the argument; ``ignored``
    with the arguments SMP ignores (left out, with a UserWarning). Raises
    :class:`SMPConfigError` for arguments specseg cannot represent.
    """
    arch = architecture_for_smp_class(model_class)
    section = SECTIONS[arch]
    kwargs, renamed = _current_names(model_class, kwargs)
    kwargs, dropped = _without_ignored(model_class, kwargs)
    if ignored is not None:
        ignored.extend(dropped)
    spec: dict[str, Any] = {"specseg": 1, "encoder": {}, "decoder": {"architecture": arch}, "head": {}}
    params: dict[str, Any] = {}
    for key, value in kwargs.items():
        value = _plain(value)
        if key in section.smp_renames:
            spec["decoder"][section.smp_renames[key]] = value
        elif key in CLASS_ARGUMENTS and model_class not in CLASS_ARGUMENTS[key]:
            if value is not None:
                params[key] = value  # not SMP's parameter here: SMP hands it to the (tu-) encoder as is
        elif key in _ENCODER_KEYS:
            if key == "encoder_weights":
                if value not in (None, False):
                    spec["encoder"]["weights"] = "imagenet" if value is True else value
                continue
            if key == "encoder_output_indices" and value is None:
                continue
            spec["encoder"][_ENCODER_KEYS[key]] = value
        elif key in _HEAD_KEYS:
            if key == "upsampling" and value is None:
                continue  # SMP's "use the architecture's default"
            if key == "activation" and value is not None and not isinstance(value, str):
                raise SMPConfigError(key, "only named activations can be written in a spec")
            spec["head"][_HEAD_KEYS[key]] = value
        elif key == "aux_params":
            if value is not None:
                if not isinstance(value, dict):
                    raise SMPConfigError(key, f"must be a mapping of classification-head arguments or null, not {type(value).__name__} {value!r}")
                spec["aux_params"] = dict(value)
        elif key in _DECODER_SPECIAL:
            if value is not None:
                spec["decoder"][_DECODER_SPECIAL[key]] = value
        elif key.startswith("decoder_"):
            spec["decoder"][key[len("decoder_"):]] = value
        else:
            if value is not None:
                params[key] = value
    if params:
        spec["encoder"]["params"] = params
    if origins is not None:
        found = _origins(model_class, kwargs, section.smp_renames)
        origins.update({path: renamed.get(arg, arg) for path, arg in found.items()})
    return spec


def spec_path_of(argument: str) -> str:
    """The spec key an SMP argument maps to by the general rule (``decoder_use_norm`` -> ``decoder.norm``)."""
    if argument in _DECODER_SPECIAL:
        return f"decoder.{_DECODER_SPECIAL[argument]}"
    if argument in _ENCODER_KEYS:
        return f"encoder.{_ENCODER_KEYS[argument]}"
    if argument.startswith("decoder_"):
        return f"decoder.{argument[len('decoder_'):]}"
    return f"encoder.params.{argument}"


def _without_ignored(model_class: str, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``kwargs`` without the :data:`CLASS_ARGUMENTS` SMP ignores, and their names (with a UserWarning).

    SMP hands keyword arguments its constructor does not name to
    ``get_encoder``, which passes them on to ``tu-`` encoders only: on U-Net
    with any other encoder, ``encoder_output_stride`` and ``upsampling`` are
    recorded in config.json and change nothing (output stride 32, no
    upsampling in the head). Other such arguments are left to the encoder,
    which refuses what it does not take.
    """
    encoder_name = str(kwargs.get("encoder_name", SMP_DEFAULT_ENCODER))
    if encoder_name.startswith("tu-"):
        return dict(kwargs), []
    dropped = [
        key for key, classes in CLASS_ARGUMENTS.items() if model_class not in classes and kwargs.get(key) is not None
    ]
    if dropped:
        warnings.warn(
            f"SMP's {model_class} ignores {', '.join(dropped)} for encoder {encoder_name!r} (SMP passes such arguments "
            "to tu- encoders only, and builds the network without them); they are left out, so the spec builds "
            "the network SMP built",
            UserWarning,
            stacklevel=3,
        )
    return {k: v for k, v in kwargs.items() if k not in dropped}, dropped


def _current_names(model_class: str, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``kwargs`` with SMP's deprecated names replaced as SMP does (with its DeprecationWarning).

    Also returns current name -> the deprecated name it came from, so that
    errors point at the argument as written.
    """
    out = dict(kwargs)
    renamed: dict[str, str] = {}
    for old, (new, classes) in DEPRECATED_ARGUMENTS.items():
        if old not in out or model_class not in classes:
            continue
        value = out.pop(old)
        if value is None:
            continue  # SMP ignores a deprecated argument left at None
        warnings.warn(
            f"SMP argument {old} is deprecated (SMP 0.6 reads it as {new}); specseg maps it the same way: "
            f"write {new} instead",
            DeprecationWarning,
            stacklevel=3,
        )
        out[new] = value
        renamed[new] = old
    return out, renamed


def _origins(model_class: str, kwargs: Mapping[str, Any], renames: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Spec path -> SMP argument, mirroring :func:`spec_from_smp_kwargs`'s rule."""
    out: dict[tuple[str, ...], str] = {}
    for key in kwargs:
        if key in renames:
            out[("decoder", renames[key])] = key
        elif key in CLASS_ARGUMENTS and model_class not in CLASS_ARGUMENTS[key]:
            out[("encoder", "params", key)] = key
        elif key in _ENCODER_KEYS:
            out[("encoder", _ENCODER_KEYS[key])] = key
        elif key in _HEAD_KEYS:
            out[("head", _HEAD_KEYS[key])] = key
        elif key == "aux_params":
            out[("aux_params",)] = key
        elif key in _DECODER_SPECIAL:
            out[("decoder", _DECODER_SPECIAL[key])] = key
        elif key.startswith("decoder_"):
            out[("decoder", key[len("decoder_"):])] = key
        else:
            out[("encoder", "params", key)] = key
    return out


def _plain(value: Any) -> Any:
    """JSON-like form of a config value: tuples to lists, recursively."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
