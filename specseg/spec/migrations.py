"""Spec format migrations: files written for an older ``specseg:`` version keep working.

When format version N+1 is introduced, add ``MIGRATIONS[N] = upgrade``, a
function taking the raw data of a version-N spec and returning version-N+1
data (a new mapping; it must not mutate its input), and bump
:data:`CURRENT_VERSION`. Loading applies the chain N -> N+1 -> ... -> current
before validation, so a spec file never needs rewriting by hand;
``specseg fmt`` writes the migrated form. Version 1 is the first format, so
the chain is empty today.
"""

from __future__ import annotations

from typing import Any, Callable

from specseg.errors import SpecError, SpecIssue
from specseg.loader.document import Document

CURRENT_VERSION = 1
#: ``MIGRATIONS[n]`` upgrades version-n data to version n+1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade raw spec data to :data:`CURRENT_VERSION`; other values are left to validation."""
    version = data.get("specseg")
    if not isinstance(version, int) or isinstance(version, bool):
        return data
    if version > CURRENT_VERSION:
        raise ValueError(
            f"unsupported spec format version {version}; this release reads version {CURRENT_VERSION} "
            "(older versions are migrated); a newer specseg is needed for this file"
        )
    while version < CURRENT_VERSION and version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version += 1
        data = {**data, "specseg": version}
    return data


def migrate_document(doc: Document) -> None:
    """Migrate a document in place; a spec newer than this release is a located error."""
    if not isinstance(doc.data, dict):
        return
    try:
        doc.data = migrate(doc.data)
    except ValueError as exc:
        raise SpecError([SpecIssue(str(exc), ("specseg",), doc.locate(("specseg",)))]) from None
