"""How much memory this process may still allocate: /proc/meminfo, cgroup v2 limits, sysconf."""

from __future__ import annotations

import os
from pathlib import Path


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), or None when there is none."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        if limit == "max":
            return None
        current = int(Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii").strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def available_memory() -> int | None:
    """Bytes of memory available now: ``MemAvailable`` from /proc/meminfo, capped by a cgroup limit.

    Falls back to ``os.sysconf`` (free physical pages); None when the platform tells nothing.
    """
    # MemAvailable counts reclaimable page cache, unlike sysconf's free pages, so prefer it.
    host = _meminfo_available() or _sysconf_available()
    cgroup = _cgroup_available()
    known = [v for v in (host, cgroup) if v is not None]
    return min(known) if known else None
