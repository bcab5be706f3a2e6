"""Spec format migrations: files written for an older ``specseg:`` version keep working.

``MIGRATIONS[N]`` upgrades the raw data of a version-N spec to version N+1
(a new mapping; it must not mutate its input). Versions this release still
reads natively (:data:`NATIVE_VERSIONS`) load as written, so a version-1
file keeps building the version-1 model (a mask, or ``(mask, labels)``);
older ones are upgraded along the chain before validation. ``specseg fmt
--to N`` writes a file migrated to version N.

1 -> 2: ``decoder`` becomes the decoder ``main``, ``head`` the segmentation
head ``mask`` (``from: main``), ``aux_params`` the classification head
``labels`` (``from: encoder``), and ``loss`` the loss of ``mask``. The
network is the same, parameter for parameter; whole-model weights of the
version-1 model load into it (see :mod:`specseg.multitask.state_dict`).
"""

from __future__ import annotations

from typing import Any, Callable

from specseg.errors import SpecError, SpecIssue
from specseg.loader.document import Document

CURRENT_VERSION = 2
#: Versions validated as they are written (no migration on load).
NATIVE_VERSIONS = (1, 2)
#: The names version 1's parts get in version 2.
V1_DECODER, V1_MASK_HEAD, V1_LABELS_HEAD = "main", "mask", "labels"


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version-1 spec data as version 2: one decoder, a segmentation head and an optional classification head.

    Keys that are not mappings where a mapping belongs are carried over as
    they are, for validation to report in version 2's terms.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "decoder":
            out["decoders"] = {V1_DECODER: value}
        elif key == "head":
            heads = out.setdefault("heads", {})
            heads[V1_MASK_HEAD] = {"type": "segmentation", "from": V1_DECODER, **value} if isinstance(value, dict) else value
        elif key == "aux_params":
            if value is not None:
                heads = out.setdefault("heads", {})
                heads[V1_LABELS_HEAD] = {"type": "classification", "from": "encoder", **value} if isinstance(value, dict) else value
        elif key == "loss":
            out["loss"] = None if value is None else {V1_MASK_HEAD: value}
        else:
            out[key] = value
    heads = out.setdefault("heads", {})
    if V1_MASK_HEAD not in heads:
        # Version 1's head section is optional (all defaults); version 2 names every head.
        out["heads"] = {V1_MASK_HEAD: {"type": "segmentation", "from": V1_DECODER}, **heads}
    if "decoders" in out:
        # Keep version 1's section order: decoders, then heads.
        out = _reorder(out, "decoders", "heads")
    return out


def _reorder(data: dict[str, Any], first: str, then: str) -> dict[str, Any]:
    """``data`` with key ``then`` moved right after ``first``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == then:
            continue
        out[key] = value
        if key == first:
            out[then] = data[then]
    return out


#: ``MIGRATIONS[n]`` upgrades version-n data to version n+1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: v1_to_v2}


def migrate(data: dict[str, Any], to: int | None = None) -> dict[str, Any]:
    """Upgrade raw spec data to version ``to`` (default :data:`CURRENT_VERSION`); other values are left to validation."""
    target = CURRENT_VERSION if to is None else to
    version = data.get("specseg")
    if not isinstance(version, int) or isinstance(version, bool):
        return data
    if version > CURRENT_VERSION:
        raise ValueError(
            f"unsupported spec format version {version}; this release reads versions up to {CURRENT_VERSION} "
            "(older versions are migrated); a newer specseg is needed for this file"
        )
    if target < version:
        raise ValueError(f"cannot migrate a version-{version} spec down to version {target}")
    while version < target and version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version += 1
        data = {**data, "specseg": version}
    return data


def migrate_document(doc: Document, to: int | None = None) -> None:
    """Migrate a document in place; a spec newer than this release is a located error.

    Without ``to``, a version read natively stays as written and an older one
    is upgraded to the oldest native version.
    """
    if not isinstance(doc.data, dict):
        return
    version = doc.data.get("specseg")
    if to is None and isinstance(version, int) and not isinstance(version, bool) and version <= CURRENT_VERSION:
        to = max(version, min(NATIVE_VERSIONS))
    try:
        doc.data = migrate(doc.data, to)
    except ValueError as exc:
        raise SpecError([SpecIssue(str(exc), ("specseg",), doc.locate(("specseg",)))]) from None
