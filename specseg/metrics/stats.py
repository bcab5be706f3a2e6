"""Per-image, per-class confusion counts: the input of every metric."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

Stats = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

MODES = ("binary", "multiclass", "multilabel")


def get_stats(
    output: torch.Tensor,
    target: torch.Tensor,
    mode: str,
    ignore_index: int | None = None,
    threshold: float | Sequence[float] | None = None,
    num_classes: int | None = None,
) -> Stats:
    """Count true/false positives/negatives for each image and class.

    Args:
        output: predictions.  ``binary``: ``(N, 1, ...)``; ``multilabel``:
            ``(N, C, ...)``, integer 0/1 or float with ``threshold``;
            ``multiclass``: ``(N, ...)`` integer class indices.
        target: integer targets shaped like ``output``.
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        ignore_index: target value to skip (multiclass only; must lie outside
            ``0..num_classes-1``).  Ignored pixels count nowhere, not even as
            true negatives.
        threshold: binarisation threshold (binary/multilabel only), applied
            to ``output`` and ``target`` alike (``>= threshold`` is 1).  A
            sequence gives one threshold per channel.
        num_classes: number of classes, required in multiclass mode; output
            and target values outside ``0..num_classes-1`` are not counted.

    Returns:
        ``(tp, fp, fn, tn)``, each an int64 tensor of shape ``(N, C)``.

    Raises:
        ValueError: on any inconsistent combination of arguments.
    """
    if torch.is_floating_point(target):
        raise ValueError(f"target must have an integer dtype, got {target.dtype}")
    if torch.is_floating_point(output) and threshold is None:
        raise ValueError(f"output of dtype {output.dtype} needs a threshold; pass one or integer predictions")
    if torch.is_floating_point(output) and mode == "multiclass":
        raise ValueError(f"multiclass output must hold integer class indices, got {output.dtype}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if mode == "multiclass" and threshold is not None:
        raise ValueError("threshold is not supported in multiclass mode")
    if output.shape != target.shape:
        raise ValueError(f"output shape {tuple(output.shape)} != target shape {tuple(target.shape)}")
    if mode != "multiclass" and ignore_index is not None:
        raise ValueError(f"ignore_index is not supported in {mode} mode")
    if mode == "multiclass":
        if num_classes is None:
            raise ValueError("num_classes is required in multiclass mode")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if ignore_index is not None and 0 <= ignore_index < num_classes:
            raise ValueError(
                f"ignore_index={ignore_index} is a class value (0..{num_classes - 1}); "
                "use a value outside that range, e.g. -1 or 255"
            )
        return _multiclass_stats(output, target, num_classes, ignore_index)
    if threshold is not None:
        output = _binarize(output, threshold)
        target = _binarize(target, threshold)
    return _multilabel_stats(output, target)


def _binarize(x: torch.Tensor, threshold: float | Sequence[float]) -> torch.Tensor:
    """``1`` where ``x >= threshold`` else ``0``; a sequence thresholds channel by channel."""
    if isinstance(threshold, numbers.Real):
        return torch.where(x >= threshold, 1, 0)
    # Compare in the dtype a Python-scalar comparison would use, so both paths agree bit for bit.
    dtype = x.dtype if torch.is_floating_point(x) else torch.get_default_dtype()
    thresholds = torch.as_tensor(list(threshold), dtype=dtype, device=x.device)
    if thresholds.dim() != 1 or thresholds.numel() != x.size(1):
        raise ValueError(f"threshold has {thresholds.numel()} values but the input has {x.size(1)} channels")
    thresholds = thresholds.reshape(1, -1, *([1] * (x.dim() - 2)))
    return torch.where(x.to(dtype) >= thresholds, 1, 0)


def _class_counts(values: torch.Tensor, mask: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-image histogram ``(N, C)`` of ``values`` in ``0..C-1`` where ``mask`` holds."""
    batch = values.size(0)
    counted = mask & (values >= 0) & (values < num_classes)
    # Offset each image's labels into its own block of C bins so one bincount serves the batch.
    offsets = torch.arange(batch, device=values.device).unsqueeze(1) * num_classes
    flat = (values.long() + offsets)[counted]
    return torch.bincount(flat, minlength=batch * num_classes).reshape(batch, num_classes)


@torch.no_grad()
def _multiclass_stats(
    output: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None
) -> Stats:
    """Confusion counts of class-index maps."""
    batch = output.size(0)
    output = output.reshape(batch, -1)
    target = target.reshape(batch, -1)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    tp = _class_counts(target, valid & (output == target), num_classes)
    fp = _class_counts(output, valid, num_classes) - tp
    fn = _class_counts(target, valid, num_classes) - tp
    tn = valid.sum(1, keepdim=True) - tp - fp - fn
    return tp, fp, fn, tn


@torch.no_grad()
def _multilabel_stats(output: torch.Tensor, target: torch.Tensor) -> Stats:
    """Confusion counts of 0/1 channel maps."""
    batch, num_classes = target.shape[:2]
    output = output.reshape(batch, num_classes, -1)
    target = target.reshape(batch, num_classes, -1)
    tp = (output * target).sum(2)
    fp = output.sum(2) - tp
    fn = target.sum(2) - tp
    tn = target.size(2) - (tp + fp + fn)
    return tp, fp, fn, tn
