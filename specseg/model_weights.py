"""A spec's whole-model ``weights``: the file, its hash on a thread, and assigning its tensors to a meta-device build."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from specseg.construct import construct
from specseg.errors import Locator
from specseg.model import SegmentationModel
from specseg.spec.model import ModelSpec

if TYPE_CHECKING:
    from specseg.weights import BackgroundDigest


def weights_file(spec: ModelSpec, base_dir: Path | None) -> tuple[Path, str | None]:
    """The whole-model weights file of a spec, resolved against the spec's directory."""
    assert spec.weights is not None
    raw, sha256 = (spec.weights, None) if isinstance(spec.weights, str) else (spec.weights.path, spec.weights.sha256)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path, sha256


def start_digest(spec: ModelSpec, base_dir: Path | None) -> BackgroundDigest | None:
    """Start hashing the spec's sha256-pinned weights file on a thread (None when nothing is pinned)."""
    if spec.weights is None or isinstance(spec.weights, str) or spec.weights.sha256 is None:
        return None
    from specseg.weights import BackgroundDigest

    path, _ = weights_file(spec, base_dir)
    # Only a regular file: a FIFO or device would block or never end; read_state_dict reports those.
    return BackgroundDigest(path) if path.is_file() else None


def assign_weights(
    model: SegmentationModel, spec: ModelSpec, locate: Locator, base_dir: Path | None, state_dict: dict[str, torch.Tensor], what: str
) -> SegmentationModel:
    """Put ``state_dict``'s tensors into ``model``, built on the meta device without encoder weights, without copying twice."""
    from specseg.weights import load_into

    if _has_non_persistent_buffers(model):
        # Buffers outside the state dict (e.g. relative position tables) must be computed for real.
        model = construct(spec, locate, base_dir, load_encoder_weights=False)
    load_into(model, state_dict, what, assign=True)
    return model


def _has_non_persistent_buffers(model: nn.Module) -> bool:
    persistent = set(model.state_dict())
    return any(name not in persistent for name, _ in model.named_buffers())
