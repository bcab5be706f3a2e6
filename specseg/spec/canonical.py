"""The canonical form of a spec: the resolved data, canonical JSON, and its hash (torch-free).

The resolved form writes out every default, so two specs that differ only
in key order, formatting, comments, or in writing defaults versus omitting
them have the same canonical JSON and the same hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from specseg.spec.versions import AnySpec


def resolved(spec: AnySpec) -> dict[str, Any]:
    """Every key of the spec with its value, defaults included, as plain JSON data."""
    return spec.model_dump(mode="json")


def canonical_json(spec: AnySpec) -> str:
    """Compact JSON of the resolved spec with sorted keys: stable across runs and machines."""
    return json.dumps(resolved(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def spec_hash(spec: AnySpec) -> str:
    """``sha256:<hex>`` of the canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def _diff(a: Any, b: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            child = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append({"path": child, "change": "removed", "a": a[key], "b": None})
            elif key not in a:
                out.append({"path": child, "change": "added", "a": None, "b": b[key]})
            else:
                _diff(a[key], b[key], child, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and any(isinstance(v, dict) for v in a + b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b or type(a) is not type(b):
        out.append({"path": path, "change": "changed", "a": a, "b": b})


def diff(a: AnySpec, b: AnySpec) -> list[dict[str, Any]]:
    """Semantic differences of two resolved specs, path by path, in spec order.

    Each entry is ``{"path", "change", "a", "b"}`` with ``change`` one of
    ``changed``, ``added`` (a key only b has) or ``removed`` (only a has).
    Lists of scalars compare as one value (``decoder.channels``); a section
    that is null on one side (``aux_params``) changes as a whole.
    """
    out: list[dict[str, Any]] = []
    _diff(resolved(a), resolved(b), "", out)
    return out
