"""Building a ``tu-`` encoder (or a catalogue name backed by a timm model) with its weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from specseg.encoders.pretrained import WeightsSource
from specseg.encoders.timm_universal import TimmUniversalEncoder
from specseg.encoders.weight_loading import (
    fetch,
    load_encoder_weights,
    local_weights_path,
    read,
    read_source,
    temporary_safetensors,
)
from specseg.errors import EncoderBuildError
from specseg.spec.encoder import EncoderSpec, WeightsFile

#: Key prefixes of a state dict saved from a specseg or SMP ``tu-`` encoder (rather than a timm checkpoint).
OWN_LAYOUT_PREFIXES = ("model.", "encoder.model.")


def build_timm_encoder(
    spec: EncoderSpec,
    model_name: str,
    options: Mapping[str, Any],
    load_weights: bool,
    base_dir: Path | None,
    source: WeightsSource | None,
) -> TimmUniversalEncoder:
    """Build timm's ``model_name`` for ``spec``; ``options`` are the catalogue's :class:`TimmUniversalEncoder` options.

    Pretrained weights go through timm (which adapts the first convolution
    and drops the classifier); a local file saved from a specseg/SMP ``tu-``
    encoder is loaded after building. timm's own exceptions become
    :class:`EncoderBuildError`: a ``TypeError`` means an argument timm does not
    take (``encoder.params``), anything else the model itself (``encoder.name``).
    """
    pretrained: bool | str = False
    temporary: str | None = None
    own_layout: dict[str, torch.Tensor] | None = None
    if load_weights and source is not None and source.layout == "smp":
        own_layout = read_source(source)  # SMP's encoder state dict: loaded below, as SMP loads it
    elif load_weights and source is not None:
        pretrained = str(fetch(source))
    elif load_weights and isinstance(spec.weights, WeightsFile):
        state_dict = read(local_weights_path(spec.weights, base_dir), spec.weights.sha256)
        if any(k.startswith(OWN_LAYOUT_PREFIXES) for k in state_dict):
            own_layout = state_dict  # saved from a specseg/SMP tu- encoder: loaded below
        else:
            temporary = temporary_safetensors(state_dict)  # a timm checkpoint: timm adapts and filters it
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
        raise EncoderBuildError(f"timm could not build {spec.name!r}: {exc}", "name") from None
    except TypeError as exc:
        raise EncoderBuildError(f"timm could not build {spec.name!r}: {exc}", "params") from None
    except (ValueError, AssertionError, KeyError) as exc:
        raise EncoderBuildError(f"timm could not build {spec.name!r}: {exc}", "params" if spec.params else "name") from None
    except Exception as exc:  # noqa: BLE001 - what encoder.params do to a timm model is known only to timm
        if not spec.params:
            raise
        raise EncoderBuildError(
            f"timm could not build {spec.name!r} with encoder.params {dict(spec.params)}: {type(exc).__name__}: {exc}", "params"
        ) from None
    finally:
        if temporary is not None:
            os.unlink(temporary)
    if own_layout is not None:
        what = (
            f"pretrained weights {spec.weights!r} ({source.describe()})"
            if source is not None
            else f"encoder weights from {spec.weights.path}"  # type: ignore[union-attr]
        )
        load_encoder_weights(encoder, own_layout, spec, what, adapt=None)
    return encoder
