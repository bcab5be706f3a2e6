"""Dry runs and the memory guard: what a spec costs, worked out on the meta device.

A model built under ``torch.device("meta")`` has every parameter's shape and
dtype but no storage, and building it downloads nothing. That is enough to
count parameters, estimate the memory a real build will allocate, infer
output shapes and count FLOPs (``torch.utils.flop_counter`` works on meta
tensors), for a billion-parameter spec as cheaply as for a small one.

:func:`check_memory` is the guard ``specseg.build`` runs before allocating:
a spec whose parameters and buffers would exceed the limit is refused with a
:class:`MemoryLimitError` naming the estimate, instead of taking the machine down.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from specseg.errors import SpecError, SpecIssue, SpecPath

if TYPE_CHECKING:
    from torch import nn

    from specseg.loader.document import Document
    from specseg.model import SegmentationModel
    from specseg.spec.model import ModelSpec

#: Share of the available memory a build may use when no limit is given.
DEFAULT_MEMORY_FRACTION = 0.5

#: The parts of a :class:`~specseg.model.SegmentationModel`, in summary order.
PARTS = ("encoder", "decoder", "segmentation_head", "classification_head")

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*\Z")
#: Words that turn the guard off (``--max-memory off``).
UNLIMITED = ("off", "none", "unlimited")


class MemoryLimitError(SpecError):
    """A spec whose parameters would not fit the memory limit; ``estimate`` and ``limit`` are bytes."""

    def __init__(self, issues: Sequence[SpecIssue], estimate: int, limit: int):
        super().__init__(issues)
        self.estimate = estimate
        self.limit = limit


def parse_size(text: str) -> int | None:
    """Bytes for a size such as ``8GiB``, ``500MB``, ``1.5G`` or ``1048576``; None for ``off``.

    ``KB``/``MB``/``GB``/``TB`` are decimal (1000-based); ``KiB``/``MiB``/``GiB``/``TiB``
    and the one-letter ``K``/``M``/``G``/``T`` are binary (1024-based), as in
    ``docker --memory``. Raises ``ValueError`` with the accepted forms.
    """
    if text.strip().lower() in UNLIMITED:
        return None
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"not a memory size: {text!r}; write a number with an optional unit, e.g. 8GiB, 500MB, 1.5G "
            "(KB/MB/GB are 1000-based, KiB/MiB/GiB and K/M/G 1024-based), or 'off' for no limit"
        )
    value = float(match.group(1)) * _UNITS[unit]
    if value < 1:
        raise ValueError(f"memory size {text!r} is less than one byte")
    return int(value)


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units with three significant digits: ``1.50 GiB``, ``812 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if n < 1000 else f"{n:.0f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), or None when there is none."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        if limit == "max":
            return None
        current = int(Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii").strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def available_memory() -> int | None:
    """Bytes of memory available now: ``MemAvailable`` from /proc/meminfo, capped by a cgroup limit.

    Falls back to ``os.sysconf`` (free physical pages); None when the platform tells nothing.
    """
    # MemAvailable counts reclaimable page cache, unlike sysconf's free pages, so prefer it.
    host = _meminfo_available() or _sysconf_available()
    cgroup = _cgroup_available()
    known = [v for v in (host, cgroup) if v is not None]
    return min(known) if known else None


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


@dataclass(frozen=True)
class Footprint:
    """Parameter counts and memory of a model, per part (``None`` for an absent classification head)."""

    parameters: dict[str, int | None]
    trainable: int
    parameter_bytes: int
    buffer_bytes: int
    part_bytes: dict[str, int | None]

    @property
    def total(self) -> int:
        """All parameters."""
        return sum(v for v in self.parameters.values() if v is not None)

    @property
    def total_bytes(self) -> int:
        """Bytes a real build allocates for parameters and buffers."""
        return self.parameter_bytes + self.buffer_bytes


def _tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def model_parts(model: "nn.Module") -> list[tuple[str, "nn.Module | None"]]:
    """A network's named parts: its own ``parts()``, else the version-1 :data:`PARTS` it has."""
    parts = getattr(model, "parts", None)
    if callable(parts):
        return list(parts())
    return [(part, getattr(model, part, None)) for part in PARTS]


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"decoders.main": v}`` as ``{"decoders": {"main": v}}`` (summaries of version-2 networks)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        group, _, name = key.partition(".")
        if name:
            out.setdefault(group, {})[name] = value
        else:
            out[key] = value
    return out


def footprint(model: "nn.Module") -> Footprint:
    """Count parameters and bytes of ``model`` (on any device, meta included) per part.

    Tensors shared between modules are counted once, in the first part that holds them.
    """
    seen: set[int] = set()

    def unique(tensors: Any) -> list[Any]:
        out = [t for t in tensors if id(t) not in seen]
        seen.update(id(t) for t in out)
        return out

    parameters: dict[str, int | None] = {}
    part_bytes: dict[str, int | None] = {}
    for part, module in model_parts(model):
        if module is None:
            parameters[part] = part_bytes[part] = None
            continue
        params, buffers = unique(module.parameters()), unique(module.buffers())
        parameters[part] = sum(p.numel() for p in params)
        part_bytes[part] = _tensor_bytes(params) + _tensor_bytes(buffers)
    # Anything held outside the four parts (nothing today) still counts.
    rest_params, rest_buffers = unique(model.parameters()), unique(model.buffers())
    if rest_params or rest_buffers:
        parameters["other"] = sum(p.numel() for p in rest_params)
        part_bytes["other"] = _tensor_bytes(rest_params) + _tensor_bytes(rest_buffers)
    all_params = list({id(p): p for p in model.parameters()}.values())
    all_buffers = list({id(b): b for b in model.buffers()}.values())
    return Footprint(
        parameters=parameters,
        trainable=sum(p.numel() for p in all_params if p.requires_grad),
        parameter_bytes=_tensor_bytes(all_params),
        buffer_bytes=_tensor_bytes(all_buffers),
        part_bytes=part_bytes,
    )


def meta_model(spec: "ModelSpec", doc: "Document | None" = None, base_dir: Path | None = None) -> "SegmentationModel":
    """Build ``spec`` on the meta device: no parameter memory, no random initialisation, no downloads."""
    import torch

    from specseg.builder import _build, _locator

    with torch.device("meta"):
        return _build(spec, _locator(doc), base_dir, load_encoder_weights=False)


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


def forward_bytes_estimate(spec: "ModelSpec", shape: Sequence[int]) -> int:
    """A cheap estimate of what a forward pass on ``shape`` allocates: the input and the mask, three times.

    The mask (N x classes x H x W) is the one activation that validation
    cannot bound (100,000 classes at full resolution is tens of GiB); the head
    makes it up to three times (convolution, upsampling, activation). The
    decoder's own maps scale with its parameters, which the guard bounds already.
    """
    n, c, h, w = (int(v) for v in shape)
    return 4 * n * h * w * (c + 3 * mask_channels(spec))


def mask_channels(spec: Any) -> int:
    """Channels of every full-resolution map the model returns (all segmentation heads in version 2)."""
    heads = getattr(spec, "heads", None)
    if heads is None:
        return spec.head.classes
    return sum(h.classes for h in heads.values() if h.type == "segmentation")


def max_upsampling(spec: Any) -> int:
    """The largest head upsampling of a spec (every segmentation head's in version 2)."""
    heads = getattr(spec, "heads", None)
    if heads is None:
        return spec.head.upsampling
    return max((h.upsampling for h in heads.values() if h.type == "segmentation"), default=1)


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
    ``(1, in_channels, 256, 256)``. Raises ``ValueError`` (naming valid
    sizes) when the model cannot take ``input_shape``.

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``:
    convolutions, matrix products and attention, one multiply-add being two
    FLOPs; elementwise operations, normalisation and resizing are not counted.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = meta_model(spec, doc, base_dir).eval()
    fp = footprint(model)
    shape = tuple(input_shape) if input_shape is not None else (1, spec.encoder.in_channels, 256, 256)
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
