"""What a model costs: parameters and bytes per part (on any device, meta included)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from torch import nn

    from specseg.spec.model import ModelSpec

#: The parts of a :class:`~specseg.model.SegmentationModel`, in summary order.
PARTS = ("encoder", "decoder", "segmentation_head", "classification_head")


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
