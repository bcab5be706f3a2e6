"""Dry runs: what a spec costs, worked out on the meta device.

A model built under ``torch.device("meta")`` has every parameter's shape and
dtype but no storage, and building it downloads nothing. That is enough to
count parameters, estimate the memory a real build will allocate, infer
output shapes and count FLOPs (``torch.utils.flop_counter`` works on meta
tensors), for a billion-parameter spec as cheaply as for a small one.

This module holds :func:`dry_run`, the FLOPs and shapes summary. The other
jobs it used to hold have their own modules, and their names stay importable
from here: :mod:`specseg.sizes` (``parse_size``, ``format_bytes``),
:mod:`specseg.available_memory` (/proc and cgroup probing),
:mod:`specseg.footprint` (parameters and bytes per part),
:mod:`specseg.memory_limit` (``resolve_limit``), :mod:`specseg.memory_guard`
(``check_memory``, :class:`MemoryLimitError`) and
:mod:`specseg.construct` (``meta_model``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from specseg.available_memory import available_memory
from specseg.construct import meta_model
from specseg.footprint import (
    PARTS,
    Footprint,
    footprint,
    forward_bytes_estimate,
    mask_channels,
    max_upsampling,
    model_parts,
    nested,
)
from specseg.input_shape import DEFAULT_INPUT_SIZE
from specseg.memory_guard import MemoryLimitError, check_memory
from specseg.memory_limit import DEFAULT_MEMORY_FRACTION, resolve_limit
from specseg.sizes import UNLIMITED, format_bytes, parse_size

if TYPE_CHECKING:
    from specseg.loader.document import Document
    from specseg.spec.model import ModelSpec

__all__ = [
    "DEFAULT_MEMORY_FRACTION",
    "PARTS",
    "UNLIMITED",
    "Footprint",
    "MemoryLimitError",
    "available_memory",
    "check_memory",
    "dry_run",
    "footprint",
    "format_bytes",
    "forward_bytes_estimate",
    "mask_channels",
    "max_upsampling",
    "meta_model",
    "model_parts",
    "nested",
    "output_shapes",
    "parse_size",
    "resolve_limit",
]

#: The input height and width of a dry run when no input shape is given.
DEFAULT_DRY_RUN_SIZE = DEFAULT_INPUT_SIZE


def output_shapes(out: Any) -> dict[str, list[int]]:
    """The shapes of a model's outputs by name: ``mask`` (and ``labels``) in version 1, head names in version 2."""
    if isinstance(out, dict):
        return {name: list(value.shape) for name, value in out.items()}
    if isinstance(out, tuple):
        return {"mask": list(out[0].shape), "labels": list(out[1].shape)}
    return {"mask": list(out.shape)}


def dry_run(
    spec: "ModelSpec",
    doc: "Document | None" = None,
    base_dir: Path | None = None,
    input_shape: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Summarise ``spec`` without building it for real: parameters, memory, output shapes and FLOPs.

    Everything runs on the meta device, so memory stays flat and nothing is
    downloaded whatever the model's size. ``input_shape`` defaults to
    ``(1, in_channels, 256, 256)``, or the nearest size a fixed-size encoder takes. Raises ``ValueError`` (naming valid
    sizes) when the model cannot take ``input_shape``.

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``:
    convolutions, matrix products and attention, one multiply-add being two
    FLOPs; elementwise operations, normalisation and resizing are not counted.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = meta_model(spec, doc, base_dir).eval()
    fp = footprint(model)
    size = model.default_input_size(DEFAULT_DRY_RUN_SIZE)
    shape = tuple(input_shape) if input_shape is not None else (1, spec.encoder.in_channels, size, size)
    x = torch.zeros(shape, device="meta")
    model.check_input_shape(x)
    counter = FlopCounterMode(display=False)
    decoded: dict[str, list[int]] = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, y, name=name: decoded.__setitem__(name, list(y.shape)))
        for name, module in getattr(model, "decoders", {}).items()
    ]
    try:
        with counter, torch.no_grad():
            out = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    counts = counter.get_flop_counts()
    root = type(model).__name__
    flops: dict[str, int | None] = {"total": int(counter.get_total_flops())}
    for part, module in model_parts(model):
        flops[part] = None if module is None else int(sum(counts.get(f"{root}.{part}", {}).values()))
    outputs = output_shapes(out)
    if decoded:
        # Version 2: per-decoder and per-head figures, grouped.
        return {
            "name": spec.name,
            "architecture": spec.architecture,
            "encoder": spec.encoder.name,
            "dry_run": True,
            "parameters": {"total": fp.total, "trainable": fp.trainable, **nested(fp.parameters)},
            "memory": {
                "parameters_bytes": fp.parameter_bytes,
                "buffers_bytes": fp.buffer_bytes,
                "total_bytes": fp.total_bytes,
            },
            "input_shape": list(shape),
            "decoder_outputs": decoded,
            "outputs": outputs,
            "flops": nested(flops),
        }
    return {
        "name": spec.name,
        "architecture": spec.architecture,
        "encoder": spec.encoder.name,
        "dry_run": True,
        "parameters": {"total": fp.total, "trainable": fp.trainable, **fp.parameters},
        "memory": {
            "parameters_bytes": fp.parameter_bytes,
            "buffers_bytes": fp.buffer_bytes,
            "total_bytes": fp.total_bytes,
        },
        "input_shape": list(shape),
        "outputs": outputs,
        "flops": flops,
    }
