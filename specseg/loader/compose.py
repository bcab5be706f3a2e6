"""Composing the document a spec resolves to: ``extends`` bases, ``--set`` overrides, migrations.

* ``extends: base.yaml`` (or a list) names base files relative to the spec
  file. Bases merge in order, then the file itself on top: mappings merge
  key by key, everything else (lists included) is replaced. Cycles are errors.
* ``--set PATH=VALUE`` overrides apply after that; values parse as YAML with
  the same safe reader as spec files.
* Every value keeps the location where it was written: in a base file, in
  the spec file, or in the override (``--set head.classes=5``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from specseg.errors import Location, SpecError, SpecIssue, SpecPath
from specseg.loader.document import Document, to_document
from specseg.loader.source import load_document
from specseg.loader.yaml_reader import compose_yaml

#: A chain of bases longer than this is a mistake, not a design.
MAX_EXTENDS_CHAIN = 16
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*\Z")
_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _drop_positions(doc: Document, path: SpecPath) -> None:
    n = len(path)
    for table in (doc.values, doc.keys):
        for key in [k for k in table if k[:n] == path and len(k) > n]:
            del table[key]


def _copy_positions(dst: Document, src: Document, path: SpecPath) -> None:
    n = len(path)
    for target, source in ((dst.values, src.values), (dst.keys, src.keys)):
        for key, loc in source.items():
            if key[:n] == path:
                target[key] = loc


def _merge(dst: Document, src: Document, a: Any, b: Any, path: SpecPath) -> Any:
    """``b`` over ``a``: mappings merge recursively, anything else is replaced."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            child = path + (key,)
            if key in a:
                out[key] = _merge(dst, src, a[key], value, child)
                if child in src.keys:
                    dst.keys[child] = src.keys[child]
            else:
                out[key] = value
                _copy_positions(dst, src, child)
        if path in src.values:
            dst.values[path] = src.values[path]
        return out
    _drop_positions(dst, path)
    _copy_positions(dst, src, path)
    return b


def merge_documents(base: Document, top: Document) -> Document:
    """A new document: ``top`` merged over ``base``, positions following their values."""
    merged = Document(data=None, file=top.file, values=dict(base.values), keys=dict(base.keys))
    merged.data = _merge(merged, top, base.data, top.data, ())
    return merged


def _extends_list(doc: Document) -> list[tuple[str, SpecPath]]:
    raw = doc.data.get("extends") if isinstance(doc.data, dict) else None
    if raw is None:
        return []
    if isinstance(raw, str):
        return [(raw, ("extends",))]
    if isinstance(raw, list) and raw and all(isinstance(x, str) and x for x in raw):
        return [(x, ("extends", i)) for i, x in enumerate(raw)]
    raise SpecError(
        [SpecIssue("extends must be a file path or a non-empty list of file paths", ("extends",), doc.locate(("extends",)))]
    )


def _resolve_extends(doc: Document, base_dir: Path | None, chain: tuple[Path, ...]) -> Document:
    bases = _extends_list(doc)
    if not bases:
        return doc
    merged: Document | None = None
    for raw_path, where in bases:
        path = Path(raw_path)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = path.resolve()
        if path in chain:
            cycle = " -> ".join(p.name for p in chain + (path,))
            raise SpecError([SpecIssue(f"extends cycle: {cycle}", where, doc.locate(where))])
        if len(chain) >= MAX_EXTENDS_CHAIN:
            raise SpecError([SpecIssue(f"extends chain longer than {MAX_EXTENDS_CHAIN} files", where, doc.locate(where))])
        try:
            base_doc, _ = load_document(path)
        except SpecError as exc:
            if exc.issues and exc.issues[0].message in ("no such file", "permission denied"):
                raise SpecError(
                    [SpecIssue(f"extends {raw_path!r}: {exc.issues[0].message} ({path})", where, doc.locate(where))]
                ) from None
            raise
        if not isinstance(base_doc.data, dict):
            raise SpecError([SpecIssue("a base spec must be a mapping", (), base_doc.locate(()))])
        base_doc = _resolve_extends(base_doc, path.parent, chain + (path,))
        merged = base_doc if merged is None else merge_documents(merged, base_doc)
    assert merged is not None
    own = Document(
        data={k: v for k, v in doc.data.items() if k != "extends"},
        file=doc.file,
        values={k: v for k, v in doc.values.items() if k[:1] != ("extends",)},
        keys={k: v for k, v in doc.keys.items() if k[:1] != ("extends",)},
    )
    merged.data = {k: v for k, v in merged.data.items() if k != "extends"}
    return merge_documents(merged, own)


def parse_override_path(text: str) -> SpecPath:
    """``decoder.channels[2]`` -> ``("decoder", "channels", 2)``."""
    if not _PATH.match(text):
        raise ValueError(f"invalid spec path {text!r}; write keys separated by dots and list indices in brackets, e.g. decoder.channels[2]")
    return tuple(int(index) if index else key for key, index in _PART.findall(text))


def apply_override(doc: Document, override: str) -> None:
    """Apply one ``PATH=VALUE`` override to ``doc`` (in place); errors name the override."""
    label = f"--set {override}"
    if "=" not in override:
        raise SpecError([SpecIssue("expected PATH=VALUE, e.g. head.classes=5", (), Location(label, 1, 1))])
    raw_path, value_text = override.split("=", 1)
    try:
        path = parse_override_path(raw_path.strip())
    except ValueError as exc:
        raise SpecError([SpecIssue(str(exc), (), Location(label, 1, 1))]) from None
    value_loc = Location(label, 1, len(raw_path) + 2)
    try:
        value_doc = to_document(compose_yaml(value_text, label), label) if value_text.strip() else None
    except SpecError as exc:
        raise SpecError([SpecIssue(i.message, path, value_loc) for i in exc.issues]) from None
    value = value_doc.data if value_doc is not None else None
    if not isinstance(doc.data, dict):
        raise SpecError([SpecIssue("cannot apply --set to a spec that is not a mapping", (), value_loc)])
    node: Any = doc.data
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise SpecError([SpecIssue(f"no list item [{part}] to set", path[: depth + 1], value_loc)])
        elif not isinstance(node, dict):
            raise SpecError([SpecIssue(f"cannot set key {part!r} inside a non-mapping value", path[:depth], value_loc)])
        elif part not in node or node[part] is None:
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise SpecError([SpecIssue(f"no list item [{last}] to set", path, value_loc)])
    elif not isinstance(node, dict):
        raise SpecError([SpecIssue(f"cannot set key {last!r} inside a non-mapping value", path[:-1], value_loc)])
    node[last] = value
    _drop_positions(doc, path)
    doc.values[path] = value_loc
    doc.keys[path] = Location(label, 1, 7)
    if value_doc is not None:
        for sub in value_doc.values:
            doc.values[path + sub] = value_loc


def compose(source: Any, overrides: Sequence[str] = ()) -> tuple[Document, Path | None]:
    """Load ``source``, resolve ``extends``, apply overrides and migrations.

    Returns the document to validate and the directory relative paths
    (weights files) resolve against.
    """
    from specseg.spec.migrations import migrate_document

    doc, base_dir = load_document(source)
    chain: tuple[Path, ...] = ()
    if isinstance(source, (str, Path)) and base_dir is not None:
        chain = (Path(source).resolve(),)
    if isinstance(doc.data, dict):
        doc = _resolve_extends(doc, base_dir, chain)
    for override in overrides:
        apply_override(doc, override)
    migrate_document(doc)
    return doc, base_dir

