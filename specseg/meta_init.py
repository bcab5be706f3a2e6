"""Building on the meta device without paying for initialisers that do nothing there."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


#: In-place initialisers (and the arithmetic they use) that are no-ops on data-less meta tensors:
#: tensor methods, and ``torch.nn.init``'s functions (their own torch-function handling would
#: otherwise run their bodies outside the mode below).
_META_NOOP_FUNCTIONS = frozenset(
    [
        getattr(torch.Tensor, name)
        for name in (
            "normal_", "uniform_", "fill_", "zero_", "erfinv_", "mul_", "add_", "sub_", "div_", "clamp_",
            "clamp_min_", "clamp_max_", "copy_", "exponential_", "bernoulli_", "random_", "cauchy_",
            "log_normal_", "geometric_",
        )
    ]
    + [
        getattr(nn.init, name)
        for name in dir(nn.init)
        if name.endswith("_") and not name.startswith("_") and callable(getattr(nn.init, name))
    ]
)


class _SkipInitOnMeta(TorchFunctionMode):
    """Skip in-place initialisation of meta tensors.

    A meta tensor holds no data, so initialising it only costs time: torch
    runs meta ``normal_``/``uniform_`` through its Python reference
    implementations, whose first use imports ``torch._dynamo`` (about 1.5 s
    and 100 MiB). The result is the same tensor either way.
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func in _META_NOOP_FUNCTIONS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def building_on_meta() -> contextlib.AbstractContextManager[Any]:
    """:class:`_SkipInitOnMeta` when modules are created on the meta device, else nothing."""
    return _SkipInitOnMeta() if torch.empty(()).is_meta else contextlib.nullcontext()
