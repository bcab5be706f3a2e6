"""The memory guard ``specseg.build`` runs before allocating: a spec measured on the meta device and refused when too large.

A spec whose parameters and buffers (and, for a known input, the forward
pass's mask) would exceed the limit is refused with a :class:`MemoryLimitError`
naming the estimate, instead of taking the machine down.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from specseg.construct import meta_model
from specseg.errors import SpecError, SpecIssue, SpecPath
from specseg.footprint import Footprint, footprint, forward_bytes_estimate, mask_channels, max_upsampling
from specseg.memory_limit import DEFAULT_MEMORY_FRACTION, resolve_limit
from specseg.sizes import format_bytes

__all__ = ["DEFAULT_MEMORY_FRACTION", "MemoryLimitError", "check_memory", "resolve_limit"]

if TYPE_CHECKING:
    from specseg.loader.document import Document
    from specseg.model import SegmentationModel
    from specseg.spec.model import ModelSpec


class MemoryLimitError(SpecError):
    """A spec whose parameters would not fit the memory limit; ``estimate`` and ``limit`` are bytes."""

    def __init__(self, issues: Sequence[SpecIssue], estimate: int, limit: int):
        super().__init__(issues)
        self.estimate = estimate
        self.limit = limit


def _responsible_path(spec: "ModelSpec", part: str) -> SpecPath:
    """The spec key most likely to make ``part`` large, for the error's location."""
    group, _, name = part.partition(".")
    if group == "heads":
        return ("heads", name, "classes")
    if group == "decoders":
        keys = [k for k in type(spec.decoders[name]).model_fields if "channels" in k]  # type: ignore[attr-defined]
        return ("decoders", name, keys[0]) if len(keys) == 1 else ("decoders", name)
    if part == "segmentation_head":
        return ("head", "classes")
    if part == "classification_head":
        return ("aux_params", "classes")
    if part == "decoder":
        # A decoder's size is its channel counts; point at them when there is one such key.
        keys = [k for k in type(spec.decoder).model_fields if "channels" in k]
        return ("decoder", keys[0]) if len(keys) == 1 else ("decoder",)
    if part == "encoder":
        return ("encoder", "params") if spec.encoder.params else ("encoder", "name")
    return ()


def _activations(
    model: "SegmentationModel", spec: "ModelSpec", shapes: Sequence[Sequence[int]], room: float, forward: int, forward_shape: tuple[int, ...]
) -> tuple[int, tuple[int, ...]]:
    """The largest forward-pass estimate among ``shapes``: measured on the meta device unless a quick bound fits ``room``."""
    from specseg.activations import WORKSPACE_FACTOR, activation_upper_bound, peak_activation_bytes

    for shape in shapes:
        bound = activation_upper_bound(model, shape, max_upsampling(spec))
        if bound is not None and bound <= room:
            continue
        try:
            measured = int(WORKSPACE_FACTOR * peak_activation_bytes(model, shape))
        except Exception:  # noqa: BLE001 - e.g. an input size the model refuses: the caller reports that
            measured = bound or 0
        if measured > forward:
            forward, forward_shape = measured, tuple(shape)
    return forward, forward_shape


def check_memory(
    spec: "ModelSpec",
    doc: "Document | None" = None,
    base_dir: Path | None = None,
    max_memory: int | float | str | None = None,
    forward_shapes: Sequence[Sequence[int]] = (),
    model: "SegmentationModel | None" = None,
) -> Footprint | None:
    """Refuse a spec whose parameters and buffers exceed the memory limit, before anything is allocated.

    Builds ``spec`` on the meta device to measure it, or measures ``model``,
    that build done already by the caller. ``max_memory`` is as in
    :func:`resolve_limit`. ``forward_shapes`` are inputs the caller will run
    (``specseg build``'s test pass, a TorchScript trace): the largest
    :func:`forward_bytes_estimate` among them counts too. Returns the
    footprint (None when the guard is off or the meta build is impossible for
    this encoder); raises :class:`MemoryLimitError`.
    """
    limit, how = resolve_limit(max_memory)
    if math.isinf(limit):
        return None
    try:
        model = meta_model(spec, doc, base_dir) if model is None else model
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a plugin encoder that cannot be built on meta
        # The real build will report any genuine problem; the guard cannot measure this one.
        warnings.warn(f"specseg could not estimate the model's memory on the meta device ({type(exc).__name__}: {exc}); building without the memory guard", stacklevel=3)
        return None
    fp = footprint(model)
    forward, forward_shape = max(((forward_bytes_estimate(spec, s), tuple(s)) for s in forward_shapes), default=(0, ()))
    forward, forward_shape = _activations(model, spec, forward_shapes, limit - fp.total_bytes, forward, forward_shape)
    total = fp.total_bytes + forward
    if total <= limit:
        return fp
    raise_text = "or raise the limit (specseg build --max-memory SIZE, or specseg.build(..., max_memory=...))"
    if forward > fp.total_bytes:
        upsampling = max_upsampling(spec)
        if getattr(spec, "heads", None) is not None:
            widest = max((n for n, h in spec.heads.items() if h.type == "segmentation"), key=lambda n: spec.heads[n].classes)
            key = "upsampling" if spec.heads[widest].upsampling > 1 else "classes"
            path: SpecPath = ("heads", widest, key)
            fewer = "head classes, a smaller heads.<name>.upsampling"
        else:
            path = ("head", "upsampling") if spec.head.upsampling > 1 else ("head", "classes")
            fewer = "head.classes, a smaller head.upsampling"
        message = (
            f"building this model and running it on a {forward_shape} input needs about {format_bytes(total)}: "
            f"{format_bytes(forward)} for the activations of the forward pass (input, feature maps and the "
            f"{mask_channels(spec):,}-class mask at {forward_shape[2] * upsampling}x{forward_shape[3] * upsampling}), "
            f"{format_bytes(fp.total_bytes)} for the parameters; more than {how}; "
            f"refusing to build it. Use a smaller --input-shape, fewer {fewer}, --dry-run, {raise_text}"
        )
    else:
        parts = {k: v for k, v in fp.part_bytes.items() if v}
        largest = max(parts, key=lambda k: parts[k]) if parts else ""
        breakdown = ", ".join(f"{k} {format_bytes(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        path = _responsible_path(spec, largest)
        message = (
            f"this model needs about {format_bytes(fp.total_bytes)} for its parameters and buffers "
            f"({fp.total:,} parameters; {breakdown})"
            + (f", {format_bytes(forward)} more to run it on a {forward_shape} input" if forward else "")
            + f", more than {how}; refusing to build it. Make the {largest.replace('_', ' ') or 'model'} smaller, {raise_text}"
        )
    location = doc.locate(path) if doc is not None else None
    raise MemoryLimitError([SpecIssue(message, path, location)], estimate=total, limit=int(limit))
