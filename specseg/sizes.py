"""Byte sizes as people write them (``8GiB``, ``500MB``) and as specseg prints them."""

from __future__ import annotations

import re

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
