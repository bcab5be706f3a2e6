"""The input a model is run on when the user gives none (torch-free).

One rule for every place that needs it: ``specseg build``'s test pass, its
memory estimate and error messages, dry runs, and the export example's size.
"""

from __future__ import annotations

#: Height and width of the input used when none is given.
DEFAULT_INPUT_SIZE = 256


def default_input_shape(in_channels: int, batch: int = 1) -> tuple[int, int, int, int]:
    """``(batch, in_channels, 256, 256)``: the input used when none is given."""
    return batch, int(in_channels), DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE
