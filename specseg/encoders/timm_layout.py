"""How a ``tu-`` encoder picks timm feature levels, and the strides it then declares (torch-free).

Shared by the builder (:mod:`specseg.encoders.timm_universal`) and by
``specseg validate`` (:mod:`specseg.encoders.timm_index`), so that both
reach the same verdict from the same data: a timm model's *full* list of
feature levels (``feature_info.info``: reduction and channels of every
level, not only the ones ``features_only`` returns by default) and the
reductions of its default levels, which tell its style as in SMP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


class LayoutError(ValueError):
    """The model's feature levels cannot give an encoder of the requested depth; ``field`` is the spec key."""

    def __init__(self, message: str, field: str = "depth"):
        super().__init__(message)
        self.field = field


def feature_style(name: str, reductions: Sequence[int]) -> str:
    """``cnn``, ``transformer`` or ``vgg``, from the reductions of a model's default feature levels (SMP's rule)."""
    stages = len(reductions)
    if list(reductions) == [2 ** (i + 2) for i in range(stages)]:
        return "transformer"
    if list(reductions) == [2 ** (i + 1) for i in range(stages)]:
        return "cnn"
    if list(reductions) == [2**i for i in range(stages)]:
        return "vgg"
    raise LayoutError(
        f"timm model {name!r} has feature strides {list(reductions)}; an encoder needs strides doubling "
        "from 2 (CNN), 4 (transformer) or 1 (VGG)",
        "name",
    )


def feature_indices(name: str, style: str, depth: int) -> tuple[int, ...]:
    """The timm ``out_indices`` (positions in the full level list) of an encoder of ``depth`` stages, as SMP picks them."""
    if style == "transformer":
        # tresnet's first timm level is a stride-2 stem that SMP skips: its stages start at level 1.
        start = 1 if "tresnet" in name else 0
        return tuple(range(start, start + depth - 1))
    if style == "vgg":
        return tuple(range(depth + 1))
    # dla's level 0 is a stride-1 stem; its stride-2 level is level 1.
    start = 1 if "dla" in name else 0
    return tuple(range(start, start + depth))


@dataclass(frozen=True)
class Layout:
    """The levels an encoder uses and the stride of every map it returns."""

    style: str
    indices: tuple[int, ...]
    #: Reductions of the selected levels at output stride 32.
    reductions: tuple[int, ...]
    #: Stride of each returned map (the input first, 0-channel stride-2 map for transformers) at output stride 32.
    strides: tuple[int, ...]

    def strides_at(self, output_stride: int) -> tuple[int, ...]:
        """Stride of each returned map once stages deeper than ``output_stride`` are dilated."""
        return tuple(min(s, output_stride) for s in self.strides)

    def needs_dilation(self, output_stride: int) -> bool:
        """Whether any selected level is deeper than ``output_stride``."""
        return max(self.reductions, default=1) > output_stride


def layout(name: str, default_reductions: Sequence[int], all_reductions: Sequence[int], depth: int) -> Layout:
    """The :class:`Layout` of ``tu-<name>`` at ``depth``, or :class:`LayoutError` saying why there is none."""
    style = feature_style(name, default_reductions)
    if style == "transformer" and depth < 2:
        raise LayoutError(
            f"timm model {name!r} has no features at stride 2; use encoder.depth 2..5 (its first features are at stride 4)"
        )
    indices = feature_indices(name, style, depth)
    needed = max(indices, default=-1) + 1
    if needed > len(all_reductions):
        raise LayoutError(f"timm model {name!r} has {len(all_reductions)} feature levels; encoder.depth {depth} needs {needed}")
    reductions = tuple(int(all_reductions[i]) for i in indices)
    if style == "transformer":
        expected = tuple(2 ** (i + 2) for i in range(len(indices)))
        strides = (1, 2) + reductions
    elif style == "vgg":
        expected = tuple(2**i for i in range(len(indices)))
        strides = reductions
    else:
        expected = tuple(2 ** (i + 1) for i in range(len(indices)))
        strides = (1,) + reductions
    if reductions != expected:
        raise LayoutError(
            f"timm model {name!r}: the feature levels {list(indices)} an encoder of depth {depth} takes have strides "
            f"{list(reductions)}, not {list(expected)}; this model cannot be used at encoder.depth {depth}"
        )
    return Layout(style, indices, reductions, strides)
