"""SMP parity cases, one module per architecture, each exporting ``CASES``.

A case is ``(smp_class, kwargs, input_hw)``: the SMP constructor arguments
(always with ``encoder_weights=None`` added by the test) and the input size.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

Case = tuple[str, dict[str, Any], tuple[int, int]]


def all_cases() -> list[Case]:
    """Every case of every architecture module in this package."""
    cases: list[Case] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        cases.extend(importlib.import_module(f"{__name__}.{info.name}").CASES)
    return cases
