"""Constructor argument validation shared by the loss modules.

Each helper raises ``ValueError`` with a message naming the loss and the
option, so a bad configuration fails when the loss is built rather than
deep inside the first forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .constants import BINARY_MODE, MODES


def check_mode(loss: str, mode: str) -> str:
    """Return ``mode`` if it is one of :data:`MODES`, else raise ``ValueError``."""
    if mode not in MODES:
        raise ValueError(f"{loss}: mode must be one of {list(MODES)}, got {mode!r}")
    return mode


def check_choice(loss: str, option: str, value: object, choices: Sequence[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{loss}: {option} must be one of {list(choices)}, got {value!r}")


def check_range(
    loss: str,
    option: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as float if it is a finite number inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{loss}: {option} must be a finite number, got {value!r}")
    below = low is not None and (value < low if low_inclusive else value <= low)
    above = high is not None and (value > high if high_inclusive else value >= high)
    if below or above:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        bounds = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{loss}: {option} must lie in {bounds}, got {value!r}")
    return float(value)


def check_classes(loss: str, mode: str, classes: Sequence[int] | None) -> tuple[int, ...] | None:
    """Validate the ``classes`` subset: distinct non-negative ints, not in binary mode."""
    if classes is None:
        return None
    if mode == BINARY_MODE:
        raise ValueError(f"{loss}: classes cannot be used with mode='binary' (there is only one class)")
    values = tuple(classes)
    if not values:
        raise ValueError(f"{loss}: classes must not be empty; use None to include every class")
    for c in values:
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise ValueError(f"{loss}: classes must be non-negative integers, got {c!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{loss}: classes must be distinct, got {list(values)}")
    return values


def check_class_weights(
    loss: str, mode: str, class_weights: Sequence[float] | torch.Tensor | None
) -> torch.Tensor | None:
    """Turn ``class_weights`` into a float tensor after checking it is a usable weighting."""
    if class_weights is None:
        return None
    if mode == BINARY_MODE:
        raise ValueError(f"{loss}: class_weights cannot be used with mode='binary'")
    weights = torch.as_tensor(class_weights, dtype=torch.float).reshape(-1)
    if weights.numel() == 0:
        raise ValueError(f"{loss}: class_weights must not be empty")
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"{loss}: class_weights must be finite and non-negative, got {weights.tolist()}")
    if weights.sum() <= 0:
        raise ValueError(f"{loss}: class_weights must not all be zero")
    return weights


def check_channel_count(loss: str, option: str, length: int, num_classes: int) -> None:
    """Raise ``ValueError`` when a per-class option does not match the prediction's channels."""
    if length != num_classes:
        raise ValueError(
            f"{loss}: {option} has {length} entries but the prediction has {num_classes} classes"
        )


def check_class_indices(loss: str, classes: tuple[int, ...], num_classes: int) -> None:
    """Raise ``ValueError`` when a selected class index is not a channel of the prediction."""
    too_big = [c for c in classes if c >= num_classes]
    if too_big:
        raise ValueError(
            f"{loss}: classes {too_big} are out of range for a prediction with {num_classes} classes"
        )
