"""Checking ``tu-<name>`` encoder names against the installed timm."""

from __future__ import annotations

from specseg.errors import EncoderBuildError
from specseg.loader.suggest import closest
from specseg.spec.encoder import EncoderSpec

#: The prefix that makes an encoder name a timm model.
TIMM_PREFIX = "tu-"


def checked_timm_name(spec: EncoderSpec) -> str:
    """The timm model name of a ``tu-`` encoder (tag kept); :class:`EncoderBuildError` with suggestions when timm lacks it."""
    import timm

    model_name = spec.name[len(TIMM_PREFIX) :]
    base_name = model_name.split(".")[0]
    if not timm.is_model(base_name):
        hints = closest(base_name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(TIMM_PREFIX + h for h in hints)}?" if hints else ""
        raise EncoderBuildError(f"timm has no model named {base_name!r}{hint}")
    return model_name
