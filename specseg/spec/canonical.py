"""The canonical form of a spec: the resolved data, canonical JSON, and its hash (torch-free).

The resolved form writes out every default, so two specs that differ only
in key order, formatting, comments, or in writing defaults versus omitting
them have the same canonical JSON and the same hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from specseg.spec.multitask import MultiTaskSpec
from specseg.spec.versions import AnySpec


def resolved(spec: AnySpec) -> dict[str, Any]:
    """Every key of the spec with its value, defaults included, as plain JSON data."""
    return spec.model_dump(mode="json")


#: Version 2's named entries, whose order is meaningful (outputs come in head order; ONNX outputs are positional).
ORDERED_MAPS = ("decoders", "heads", "loss")


def _sorted_keys(value: Any, keep_order: bool = False) -> Any:
    """``value`` with every mapping's keys sorted, except a mapping of named entries (``keep_order``)."""
    if isinstance(value, dict):
        items = value.items() if keep_order else sorted(value.items())
        return {k: _sorted_keys(v) for k, v in items}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def canonical_json(spec: AnySpec) -> str:
    """Compact JSON of the resolved spec with sorted keys: stable across runs and machines.

    The named decoders, heads and losses of version 2 keep the spec's order
    (two specs that list heads in another order give outputs in another
    order, so they hash differently); every other mapping is sorted.
    """
    data = resolved(spec)
    ordered = {
        key: _sorted_keys(value, keep_order=key in ORDERED_MAPS and isinstance(spec, MultiTaskSpec))
        for key, value in sorted(data.items())
    }
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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
    ``changed``, ``added`` (a key only b has), ``removed`` (only a has) or
    ``reordered`` (version 2's named decoders, heads or losses, listed in
    another order; ``a`` and ``b`` are the names in each order). A renamed
    head is a removal plus an addition.
    Lists of scalars compare as one value (``decoder.channels``); a section
    that is null on one side (``aux_params``) changes as a whole.
    """
    out: list[dict[str, Any]] = []
    data_a, data_b = resolved(a), resolved(b)
    _diff(data_a, data_b, "", out)
    for key in ORDERED_MAPS:
        # Named entries in another order are a change of their own (the outputs' order).
        names_a, names_b = data_a.get(key), data_b.get(key)
        if isinstance(names_a, dict) and isinstance(names_b, dict):
            common_a = [n for n in names_a if n in names_b]
            common_b = [n for n in names_b if n in names_a]
            if common_a != common_b:
                out.append({"path": key, "change": "reordered", "a": common_a, "b": common_b})
    return out
