"""Whether a graph is being captured: the one test every shortcut and input check keys on."""

from __future__ import annotations

import torch


def is_capturing() -> bool:
    """True under ``torch.jit`` scripting or tracing, ``torch.compile`` and ``torch.export``.

    Captured graphs must hold no shape-dependent Python branch and only
    standard operators, so input checks and eager-only shortcuts are skipped then.
    """
    return bool(torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling())
