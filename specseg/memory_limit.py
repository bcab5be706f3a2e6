"""The memory limit a build runs under: given (bytes or a size string), off, or a share of the memory available now."""

from __future__ import annotations

import math

from specseg.available_memory import available_memory
from specseg.sizes import UNLIMITED, format_bytes, parse_size

#: Share of the available memory a build may use when no limit is given.
DEFAULT_MEMORY_FRACTION = 0.5


def resolve_limit(max_memory: int | float | str | None) -> tuple[float, str]:
    """The limit in bytes (``math.inf`` for none) and how it was set, for messages.

    ``None`` means the default: :data:`DEFAULT_MEMORY_FRACTION` of :func:`available_memory`
    (no limit when that is unknown). A string is parsed with :func:`parse_size`.
    """
    if max_memory is None:
        available = available_memory()
        if available is None:
            return math.inf, "no limit (available memory unknown)"
        share = int(available * DEFAULT_MEMORY_FRACTION)
        return share, f"the default limit of {format_bytes(share)} ({DEFAULT_MEMORY_FRACTION:.0%} of the {format_bytes(available)} available now)"
    if isinstance(max_memory, str):
        parsed = parse_size(max_memory)
        if parsed is None:
            return math.inf, "no limit"
        return parsed, f"the limit of {format_bytes(parsed)} (max memory {max_memory})"
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, float)) or max_memory <= 0:
        raise ValueError(f"max_memory must be a positive number of bytes, a size string such as '8GiB', or None; got {max_memory!r}")
    return max_memory, "no limit" if math.isinf(max_memory) else f"the limit of {format_bytes(max_memory)}"
