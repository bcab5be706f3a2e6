"""Reading an encoder's weights (pretrained downloads or local files) and loading them into the built encoder.

Every failure is an :class:`~specseg.errors.EncoderBuildError` at ``encoder.weights``
(or ``encoder.in_channels`` when the first convolution cannot be adapted).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.encoders.entries import resolve_import
from specseg.encoders.pretrained import WeightsRequestError, WeightsSource, download, source_for
from specseg.encoders.registry import EncoderEntry
from specseg.errors import EncoderBuildError
from specseg.spec.encoder import EncoderSpec, WeightsFile
from specseg.weights import WeightsError, load_into, mismatch_report, read_state_dict

#: Input channels of the pretrained checkpoints (RGB): first convolutions are adapted from these.
PRETRAINED_IN_CHANNELS = 3
#: The key prefix of an encoder's tensors inside a whole model's state dict.
ENCODER_PREFIX = "encoder."


def local_weights_path(weights: WeightsFile, base_dir: Path | None) -> Path:
    """The file a ``{path, sha256}`` weights entry points at (relative paths are relative to the spec file)."""
    path = Path(os.path.expanduser(weights.path))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def weights_request(spec: EncoderSpec, entry: EncoderEntry | None) -> WeightsSource | None:
    """Where a named ``encoder.weights`` comes from (None for no weights or a local file)."""
    if not isinstance(spec.weights, str):
        return None
    try:
        return source_for(entry, spec.name, spec.weights)
    except WeightsRequestError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def fetch(source: WeightsSource) -> Path:
    """Download (or find in the cache) the file of a weights source."""
    try:
        return download(source)
    except WeightsRequestError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def read(path: Path, sha256: str | None) -> dict[str, torch.Tensor]:
    """Read a weights file, checking its sha256 when pinned."""
    try:
        return read_state_dict(path, sha256)
    except WeightsError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def read_source(source: WeightsSource) -> dict[str, torch.Tensor]:
    """Download and read a named source's file, with its keys converted to specseg's module (``key_map``)."""
    state_dict = read(fetch(source), source.sha256)
    if source.key_map:
        state_dict = resolve_import(source.key_map)(state_dict)
    return state_dict


def strip_prefix(state_dict: dict[str, torch.Tensor], own_keys: set[str]) -> dict[str, torch.Tensor]:
    """Accept an encoder saved inside a whole model (``encoder.``-prefixed keys only)."""
    if state_dict and not (own_keys & set(state_dict)) and all(k.startswith(ENCODER_PREFIX) for k in state_dict):
        return {k[len(ENCODER_PREFIX) :]: v for k, v in state_dict.items()}
    return state_dict


def adapt_first_conv(encoder: nn.Module, state_dict: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
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
            and tensor.shape[1] == PRETRAINED_IN_CHANNELS
            and target.shape[1] != PRETRAINED_IN_CHANNELS
        ):
            out[key] = adapt_input_conv(target.shape[1], tensor)
    return out


def load_encoder_weights(
    encoder: EncoderMixin, state_dict: dict[str, torch.Tensor], spec: EncoderSpec, what: str, adapt: Callable[[], None] | None
) -> None:
    """Load ``state_dict`` strictly; ``adapt`` (set_in_channels) runs before or after, whichever makes it fit."""
    module: nn.Module = encoder  # type: ignore[assignment]
    drop = set(encoder.classifier_keys)
    state_dict = {k: v for k, v in strip_prefix(state_dict, set(module.state_dict())).items() if k not in drop}
    try:
        if adapt is None:
            if spec.in_channels != PRETRAINED_IN_CHANNELS:
                state_dict = adapt_first_conv(module, state_dict, spec.in_channels)
            load_into(module, state_dict, what)
            return
        if mismatch_report(module, state_dict):
            # Perhaps saved with spec.in_channels inputs already: adapt first, then load.
            adapt()
            load_into(module, state_dict, what)
        else:
            load_into(module, state_dict, what)
            adapt()
    except WeightsError as exc:
        raise EncoderBuildError(str(exc), "weights") from None


def temporary_safetensors(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Write ``state_dict`` to a temporary .safetensors file (for timm, which loads checkpoints by path)."""
    from safetensors.torch import save_file

    handle, name = tempfile.mkstemp(suffix=".safetensors", prefix="specseg-weights-")
    os.close(handle)
    save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, name)
    return name
