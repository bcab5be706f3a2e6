"""Input normalisation matching an encoder's pretrained weights.

``specseg.preprocessing(spec)`` returns a :class:`Preprocessing` callable for
the spec's encoder and weights: it scales 0..255 inputs to 0..1 where the
weights expect that, reorders RGB to BGR where they expect that, and
subtracts ``mean`` and divides by ``std`` per channel. It accepts numpy
arrays (channels last: ``HWC`` or ``NHWC``, like SMP's
``get_preprocessing_fn``) and torch tensors (channels first: ``CHW`` or
``NCHW``).

This module imports neither torch nor timm for built-in and plugin encoders
whose settings are tabulated; ``tu-`` encoders read timm's pretrained configs.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class Preprocessing:
    """Per-channel normalisation: ``(x / scale - mean) / std``, after optional RGB->BGR reordering.

    ``input_range`` is the value range the weights were trained on (``[0, 1]``
    or ``[0, 255]``); inputs of an integer type, or floats above 1, are
    divided by 255 when the range is ``[0, 1]`` (SMP's rule).
    ``input_space`` is ``RGB`` or ``BGR`` (``BGR`` reverses the channel axis,
    whatever the channel count, as SMP does). For inputs with a channel count
    other than 3, the statistics are averaged (1 channel) or cycled, matching
    how the first convolution's pretrained weights are adapted.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_space: str = "RGB"
    input_range: tuple[float, float] = (0.0, 1.0)

    def params(self) -> dict[str, Any]:
        """The settings as a mapping (``mean``, ``std``, ``input_space``, ``input_range``)."""
        return {"mean": list(self.mean), "std": list(self.std), "input_space": self.input_space, "input_range": list(self.input_range)}

    def _stats(self, channels: int) -> tuple[list[float], list[float]]:
        if channels == len(self.mean):
            return list(self.mean), list(self.std)
        if channels == 1:
            return [sum(self.mean) / len(self.mean)], [sum(self.std) / len(self.std)]
        return [self.mean[i % len(self.mean)] for i in range(channels)], [self.std[i % len(self.std)] for i in range(channels)]

    def __call__(self, x: Any, channel_axis: int | None = None) -> Any:
        """Normalise ``x`` (numpy: channels last; torch: channels first, unless ``channel_axis`` says otherwise)."""
        is_tensor = type(x).__module__.startswith("torch")
        axis = channel_axis if channel_axis is not None else (-3 if is_tensor else -1)
        if x.ndim < 3 and channel_axis is None:
            raise ValueError(f"expected an image with a channel axis (HWC/NHWC arrays, CHW/NCHW tensors), got shape {tuple(x.shape)}")
        channels = x.shape[axis]
        mean, std = self._stats(channels)
        if is_tensor:
            import torch

            y = x if x.is_floating_point() else x.to(torch.float32)
            if self.input_space == "BGR":  # SMP reverses the channel axis whatever the channel count
                y = torch.flip(y, dims=(axis,))
            if self.input_range[1] == 1 and (not x.is_floating_point() or bool(y.max() > 1)):
                y = y / 255.0
            shape = [1] * y.ndim
            shape[axis] = channels
            m = torch.tensor(mean, dtype=y.dtype, device=y.device).reshape(shape)
            s = torch.tensor(std, dtype=y.dtype, device=y.device).reshape(shape)
            return (y - m) / s
        import numpy as np

        y = np.asarray(x)
        floating = np.issubdtype(y.dtype, np.floating)
        y = y if floating else y.astype(np.float32)
        if self.input_space == "BGR":  # SMP reverses the channel axis whatever the channel count
            y = np.flip(y, axis=axis)
        if self.input_range[1] == 1 and (not floating or y.max() > 1):
            y = y / 255.0
        shape = [1] * y.ndim
        shape[axis] = channels
        m = np.asarray(mean, dtype=y.dtype).reshape(shape)
        s = np.asarray(std, dtype=y.dtype).reshape(shape)
        return (y - m) / s


def preprocessing_params(encoder_name: str, weights: Any = "imagenet") -> dict[str, Any]:
    """``mean``, ``std``, ``input_space``, ``input_range`` for an encoder and weights name.

    ``weights`` null or a local file uses the encoder's ``imagenet``
    settings (a fine-tuned file keeps its base weights' normalisation), or
    ImageNet's statistics when the encoder has none.
    """
    from specseg.encoders.pretrained import normalisation
    from specseg.encoders.registry import registry

    entry = None if encoder_name.startswith("tu-") else registry.get(encoder_name)
    if entry is None and not encoder_name.startswith("tu-"):
        raise ValueError(f"unknown encoder {encoder_name!r}")
    return normalisation(entry, encoder_name, weights)


def preprocessing(spec: Any) -> Preprocessing:
    """The input normalisation for a spec's encoder and weights.

    ``spec`` is a :class:`~specseg.spec.model.ModelSpec`, an
    :class:`~specseg.spec.encoder.EncoderSpec`, or anything
    :func:`specseg.load_spec` accepts (a path, YAML/JSON text, a mapping).
    """
    from specseg.spec.encoder import EncoderSpec

    if not isinstance(spec, EncoderSpec):
        encoder = getattr(spec, "encoder", None)
        if not isinstance(encoder, EncoderSpec):
            from specseg.loader import load_spec

            encoder = load_spec(spec).encoder
        spec = encoder
    params = preprocessing_params(spec.name, spec.weights)
    return _from_params(params)


def _from_params(params: dict[str, Any]) -> Preprocessing:
    def floats(values: Sequence[Any]) -> tuple[float, ...]:
        return tuple(float(v) for v in values)

    rng = floats(params.get("input_range", (0, 1)))
    return Preprocessing(
        mean=floats(params["mean"]),
        std=floats(params["std"]),
        input_space=str(params.get("input_space", "RGB")),
        input_range=(rng[0], rng[1]),
    )


class _CallableModule(types.ModuleType):
    """Lets ``specseg.preprocessing(spec)`` work even once this submodule has been imported.

    Importing ``specseg.preprocessing`` binds the package attribute
    ``specseg.preprocessing`` to this module, shadowing the function of the
    same name that ``specseg`` exports; calling the module calls the function.
    """

    def __call__(self, spec: Any) -> Preprocessing:
        return preprocessing(spec)


sys.modules[__name__].__class__ = _CallableModule
