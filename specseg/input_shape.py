"""The input a model is run on when the user gives none (torch-free).

One rule for every place that needs it: ``specseg build``'s test pass, its
memory estimate and error messages, dry runs, and the export example's size.
"""

from __future__ import annotations

from typing import Any

#: Height and width of the input used when none is given.
DEFAULT_INPUT_SIZE = 256


def default_input_shape(in_channels: int, batch: int = 1) -> tuple[int, int, int, int]:
    """``(batch, in_channels, 256, 256)``: the input used when none is given."""
    return batch, int(in_channels), DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE


def fixed_input_size(model: Any) -> tuple[int, int] | None:
    """The one (height, width) a model accepts, when a timm patch embedding fixes it; else None."""
    for module in model.modules():
        size = getattr(module, "img_size", None)
        if getattr(module, "strict_img_size", False) and size is not None:
            return int(size[0]), int(size[1])
    return None
