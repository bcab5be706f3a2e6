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


def randomise_batchnorm(model: Any) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so normalisation details show in the outputs.

    Used on the SMP model before its weights are copied, by the parity tests and by ``benchmarks/smp_sweep.py``.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            with torch.no_grad():
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                if module.weight is not None:
                    module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
