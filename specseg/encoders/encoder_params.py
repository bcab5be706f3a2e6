"""Which ``encoder.params`` a spec may give an encoder: declared data, checked by ``validate`` (torch-free).

* Built-in encoders that specseg implements itself (ResNet, MiT, VGG, ...)
  are SMP's networks, fixed by their name: SMP passes no extra keyword
  arguments to them. A spec may set only the few constructor arguments
  declared below, which change training behaviour, not the network's shape.
  Everything else is refused at ``validate``, naming the params that exist.
* ``tu-`` encoders and catalogue names built on a timm model pass
  ``encoder.params`` to ``timm.create_model``, as SMP does. Which keywords a
  timm model takes is known only to its Python class, so ``validate`` refuses
  just the keywords specseg itself sets (:data:`TIMM_RESERVED`); the build
  checks the rest on the model and refuses, located at ``encoder.params``,
  what timm does not take.
* Plugin encoders declare a Pydantic ``params_model`` (see
  :meth:`~specseg.encoders.registry.EncoderRegistry.params_model`); without
  one, their constructor is the judge, at build time.

``tests/test_encoders.py`` checks this table against the constructors, so it
cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from specseg.loader.suggest import did_you_mean


@dataclass(frozen=True)
class Param:
    """One constructor argument a spec may set: what it does, and its range ``low <= value < high``."""

    meaning: str
    low: float
    high: float

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or None."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value < self.high:
            return f"{self.meaning} is a number in [{self.low:g}, {self.high:g}), got {value!r}"
        return None


_DROPOUT = Param("dropout probability", 0.0, 1.0)
_DROP_PATH = Param("stochastic-depth rate", 0.0, 1.0)

#: Built-in encoder class (the catalogue's import string) -> the ``encoder.params`` a spec may set on it.
#: Classes not listed take none.
BUILTIN_PARAMS: Mapping[str, Mapping[str, Param]] = {
    "specseg.encoders.mix_transformer:MixTransformerEncoder": {"drop_rate": _DROPOUT, "drop_path_rate": _DROP_PATH},
    "specseg.encoders.timm_efficientnet:TimmEfficientNetEncoder": {"drop_path_rate": _DROP_PATH},
}

#: Keywords specseg itself gives a timm model (or its ``tu-`` wrapper), and the spec key that sets each.
TIMM_RESERVED: Mapping[str, str] = {
    "features_only": "specseg (an encoder returns feature maps)",
    "out_indices": "encoder.depth",
    "in_chans": "encoder.in_channels",
    "in_channels": "encoder.in_channels",
    "output_stride": "encoder.output_stride",
    "pretrained": "encoder.weights",
    "pretrained_cfg_overlay": "encoder.weights",
    "name": "encoder.name",
    "patch": "the catalogue (a built-in name's fix of its timm model)",
    "dilation": "specseg (it checks how the model reaches encoder.output_stride)",
}

#: Reserved only for feature-pyramid encoders: a plain ViT (DPT) takes ``depth`` as its number of blocks.
PYRAMID_RESERVED: Mapping[str, str] = {"depth": "encoder.depth"}


def builtin_params_problems(name: str, encoder_class: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, message)`` for each ``encoder.params`` key a built-in (non-timm) encoder does not take."""
    allowed = BUILTIN_PARAMS.get(encoder_class, {})
    problems: list[tuple[str, str]] = []
    for key, value in params.items():
        param = allowed.get(key)
        if param is not None:
            message = param.problem(value)
            if message is not None:
                problems.append((key, message))
            continue
        if allowed:
            hint = did_you_mean(key, allowed)
            listing = f"{' Its' if hint else '; its'} params are: {', '.join(allowed)}"
            problems.append((key, f"encoder {name!r} takes no param {key!r}{hint}{listing}"))
        else:
            problems.append(
                (
                    key,
                    f"encoder {name!r} takes no params (got {key!r}): its network is SMP's, fixed by the name "
                    "(SMP passes extra encoder arguments to tu- encoders only); remove encoder.params "
                    "or use a tu- encoder, whose params go to timm",
                )
            )
    return problems


def timm_params_problems(params: Mapping[str, Any], pyramid: bool = False) -> list[tuple[str, str]]:
    """``(key, message)`` for each ``encoder.params`` key that specseg sets itself on a timm model."""
    reserved = {**TIMM_RESERVED, **(PYRAMID_RESERVED if pyramid else {})}
    return [
        (key, f"encoder.params may not set {key!r}: it is set by {reserved[key]}")
        for key in params
        if key in reserved
    ]
