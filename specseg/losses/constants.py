"""Names of the three target layouts every mode-aware loss understands.

* ``binary``: one foreground class; prediction ``(N, 1, H, W)``, target
  ``(N, H, W)`` or ``(N, 1, H, W)`` with values 0/1.
* ``multiclass``: mutually exclusive classes; prediction ``(N, C, H, W)``,
  target ``(N, H, W)`` holding class indices ``0..C-1``.
* ``multilabel``: independent classes, one channel each; prediction and
  target both ``(N, C, H, W)`` with 0/1 targets.
"""

from __future__ import annotations

BINARY_MODE: str = "binary"
MULTICLASS_MODE: str = "multiclass"
MULTILABEL_MODE: str = "multilabel"

#: Every accepted ``mode`` value, in documentation order.
MODES: tuple[str, ...] = (BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE)
