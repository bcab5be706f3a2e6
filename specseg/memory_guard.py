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

from specseg.available_memory import available_memory
from specseg.construct import meta_model
from specseg.errors import SpecError, SpecIssue, SpecPath
from specseg.footprint import Footprint, footprint, forward_bytes_estimate
from specseg.sizes import UNLIMITED, format_bytes, parse_size

if TYPE_CHECKING:
    from specseg.loader.document import Document
    from specseg.model import SegmentationModel
    from specseg.spec.model import ModelSpec

#: Share of the available memory a build may use when no limit is given.
DEFAULT_MEMORY_FRACTION = 0.5


class MemoryLimitError(SpecError):
    """A spec whose parameters would not fit the memory limit; ``estimate`` and ``limit`` are bytes."""

    def __init__(self, issues: Sequence[SpecIssue], estimate: int, limit: int):
        super().__init__(issues)
        self.estimate = estimate
        self.limit = limit


def resolve_limit(max_memory: int | float | str | None) -> tuple[float, str]:
    """The limit in bytes (``math.inf`` for none) and how it was set, for messages.

    ``None`` means the default: :data:`DEFAULT_MEMORY_FRACTION` of :func:`available_memory`
    (no limit when that is unknown). A string is parsed with :func:`parse_size`.
    """
    if max_memory is None:
        available = available_memory()
        if available is None:
            return math.inf, "no limit (available memory unknown)"
        share = int(available * DEFAULT_MEMORY_FRACTION)
        return share, f"the default limit of {format_bytes(share)} ({DEFAULT_MEMORY_FRACTION:.0%} of the {format_bytes(available)} available now)"
    if isinstance(max_memory, str):
        parsed = parse_size(max_memory)
        if parsed is None:
            return math.inf, "no limit"
        return parsed, f"the limit of {format_bytes(parsed)} (max memory {max_memory})"
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, float)) or max_memory <= 0:
        raise ValueError(f"max_memory must be a positive number of bytes, a size string such as '8GiB', or None; got {max_memory!r}")
    return max_memory, "no limit" if math.isinf(max_memory) else f"the limit of {format_bytes(max_memory)}"


def _responsible_path(spec: "ModelSpec", part: str) -> SpecPath:
    """The spec key most likely to make ``part`` large, for the error's location."""
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
    total = fp.total_bytes + forward
    if total <= limit:
        return fp
    raise_text = "or raise the limit (specseg build --max-memory SIZE, or specseg.build(..., max_memory=...))"
    if forward > fp.total_bytes:
        path: SpecPath = ("head", "classes")
        message = (
            f"building this model and running it on a {forward_shape} input needs about {format_bytes(total)}: "
            f"{format_bytes(forward)} for the input and the {spec.head.classes:,}-class mask at "
            f"{forward_shape[2]}x{forward_shape[3]}, {format_bytes(fp.total_bytes)} for the parameters; more than {how}; "
            f"refusing to build it. Use a smaller --input-shape, fewer head.classes, --dry-run, {raise_text}"
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
