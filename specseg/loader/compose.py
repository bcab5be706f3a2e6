"""Composing the document a spec resolves to: ``extends`` bases, ``--set`` overrides, migrations.

* ``extends: base.yaml`` (or a list) names base files relative to the spec
  file. Bases merge in order, then the file itself on top: mappings merge
  key by key, everything else (lists included) is replaced. Cycles are errors.
* ``--set PATH=VALUE`` overrides apply after that; values parse as YAML with
  the same safe reader as spec files.
* Every value keeps the location where it was written: in a base file, in
  the spec file, or in the override (``--set head.classes=5``).

Composing is bounded by its total work, not only by the chain's length: a
spec may load at most :data:`MAX_EXTENDS_LOADS` files in all (a base named
twice counts twice, so a "diamond" of files each extending the next one
several times is refused after a few dozen loads instead of running for
4^12 loads), holding at most :data:`MAX_COMPOSED_NODES` nodes together, and
merging costs time linear in those nodes. A spec and its bases must state
the same format version (``specseg:``) where they state one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from specseg.errors import Location, SpecError, SpecIssue, SpecPath
from specseg.loader.document import MAX_DEPTH, MAX_NODES, Document, to_document
from specseg.loader.source import load_document
from specseg.loader.yaml_reader import compose_yaml

#: A chain of bases longer than this is a mistake, not a design.
MAX_EXTENDS_CHAIN = 16
#: Files one spec may load through ``extends`` in all, counting each time a file is named.
MAX_EXTENDS_LOADS = 64
#: Nodes all the files of one spec may hold together (the same budget as one file); ``--set`` values count too.
MAX_COMPOSED_NODES = MAX_NODES
#: ``--set`` overrides one command may apply (each costs time in the size of the spec).
MAX_OVERRIDES = 1000
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*\Z")
_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _drop_positions(doc: Document, path: SpecPath) -> None:
    n = len(path)
    for table in (doc.values, doc.keys):
        for key in [k for k in table if k[:n] == path and len(k) > n]:
            del table[key]


def _merge(a: Any, b: Any, path: SpecPath, replaced: set[SpecPath]) -> Any:
    """``b`` over ``a``: mappings merge recursively, anything else is replaced (its path noted in ``replaced``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merge(a[key], value, path + (key,), replaced) if key in a else value
        return out
    replaced.add(path)
    return b


def _kept(path: SpecPath, replaced: set[SpecPath]) -> bool:
    """Whether a base position at ``path`` survives: no prefix of it was replaced by the top document."""
    return not any(path[:i] in replaced for i in range(len(path) + 1))


def merge_documents(base: Document, top: Document) -> Document:
    """A new document: ``top`` merged over ``base``, positions following their values.

    Linear in the two documents' sizes (times their depth): every position of
    ``top`` is kept, and those of ``base`` that no replaced value covers.
    """
    replaced: set[SpecPath] = set()
    data = _merge(base.data, top.data, (), replaced)
    values = {p: loc for p, loc in base.values.items() if not replaced or _kept(p, replaced)}
    keys = {p: loc for p, loc in base.keys.items() if not replaced or _kept(p, replaced)}
    values.update(top.values)
    keys.update(top.keys)
    return Document(data=data, file=top.file, values=values, keys=keys)


class _Budget:
    """What composing one spec may still load: files and nodes, shared by every branch of ``extends``."""

    def __init__(self, nodes: int) -> None:
        self.loads = 0
        self.nodes = nodes

    def nodes_left(self) -> int:
        """Nodes the next base may hold (at least one, so that it is read and refused with its location)."""
        return max(MAX_COMPOSED_NODES - self.nodes, 1)

    def charge_load(self, where: SpecPath, parent: Document) -> None:
        """Count one more file to load, refusing it (at the ``extends`` entry naming it) past the limit."""
        self.loads += 1
        if self.loads > MAX_EXTENDS_LOADS:
            raise SpecError(
                [
                    SpecIssue(
                        f"extends loads more than {MAX_EXTENDS_LOADS} files in all (a base named several times, "
                        "or by several files, counts each time); refusing to compose this spec",
                        where,
                        parent.locate(where),
                    )
                ]
            )

    def charge_nodes(self, doc: Document) -> None:
        """Count a loaded base's nodes (its reader refused it already if they exceeded what was left)."""
        self.nodes += len(doc.values)


def _version(doc: Document) -> Any:
    return doc.data.get("specseg") if isinstance(doc.data, dict) else None


def _is_version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_same_version(base: Document, top: Document) -> None:
    """A base stating another format version than the file extending it is refused, naming both."""
    a, b = _version(base), _version(top)
    if a is None or b is None or a == b:
        return
    raise SpecError(
        [
            SpecIssue(
                f"this base states spec format version {a!r} but {top.file} states {b!r}; a spec and its bases "
                "must use the same format version"
                + (f" (write the older file in version {max(a, b)})" if _is_version(a) and _is_version(b) else ""),
                ("specseg",),
                base.locate(("specseg",)),
                related=((("specseg",), top.locate(("specseg",))),),
            )
        ]
    )


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


def _resolve_extends(doc: Document, base_dir: Path | None, chain: tuple[Path, ...], budget: _Budget) -> Document:
    bases = _extends_list(doc)
    if not bases:
        return doc
    merged: Document | None = None
    for raw_path, where in bases:
        path = Path(raw_path)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        try:
            path = path.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop (Python < 3.13)
            reason = getattr(exc, "strerror", None) or "symbolic link loop"
            raise SpecError([SpecIssue(f"extends {raw_path!r}: cannot resolve the path ({reason})", where, doc.locate(where))]) from None
        if path in chain:
            cycle = " -> ".join(p.name for p in chain + (path,))
            raise SpecError([SpecIssue(f"extends cycle: {cycle}", where, doc.locate(where))])
        if len(chain) >= MAX_EXTENDS_CHAIN:
            raise SpecError([SpecIssue(f"extends chain longer than {MAX_EXTENDS_CHAIN} files", where, doc.locate(where))])
        budget.charge_load(where, doc)
        try:
            base_doc, _ = load_document(path, max_nodes=budget.nodes_left())
        except SpecError as exc:
            if len(exc.issues) == 1 and not exc.issues[0].path and _is_file_problem(exc.issues[0].message):
                raise SpecError(
                    [SpecIssue(f"extends {raw_path!r}: {exc.issues[0].message} ({path})", where, doc.locate(where))]
                ) from None
            raise
        budget.charge_nodes(base_doc)
        if not isinstance(base_doc.data, dict):
            raise SpecError([SpecIssue("a base spec must be a mapping", (), base_doc.locate(()))])
        _check_same_version(base_doc, doc)
        base_doc = _resolve_extends(base_doc, path.parent, chain + (path,), budget)
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


def _is_file_problem(message: str) -> bool:
    """Whether a loader message is about the file itself (missing, unreadable), not its content."""
    return message in ("no such file", "permission denied") or message.startswith("cannot read file")


def parse_override_path(text: str) -> SpecPath:
    """``decoder.channels[2]`` -> ``("decoder", "channels", 2)``."""
    if not _PATH.match(text):
        raise ValueError(f"invalid spec path {text!r}; write keys separated by dots and list indices in brackets, e.g. decoder.channels[2]")
    return tuple(int(index) if index else key for key, index in _PART.findall(text))


def _override_label(override: str) -> str:
    """How messages name an override: ``--set PATH=VALUE``, cut short when the value is long."""
    return f"--set {override}" if len(override) <= 100 else f"--set {override[:97]}..."


def apply_override(doc: Document, override: str, max_nodes: int = MAX_NODES) -> None:
    """Apply one ``PATH=VALUE`` override to ``doc`` (in place); errors name the override.

    ``max_nodes`` bounds the value's nodes (what the spec's other parts left of the budget).
    """
    label = _override_label(override)
    if "=" not in override:
        raise SpecError([SpecIssue("expected PATH=VALUE, e.g. head.classes=5", (), Location(label, 1, 1))])
    raw_path, value_text = override.split("=", 1)
    try:
        path = parse_override_path(raw_path.strip())
    except ValueError as exc:
        raise SpecError([SpecIssue(str(exc), (), Location(label, 1, 1))]) from None
    value_loc = Location(label, 1, len(raw_path) + 2)
    try:
        value_doc = to_document(compose_yaml(value_text, label, max_nodes), label, max_nodes) if value_text.strip() else None
    except SpecError as exc:
        raise SpecError([SpecIssue(i.message, path, value_loc) for i in exc.issues]) from None
    value = value_doc.data if value_doc is not None else None
    height = max((len(sub) for sub in value_doc.values), default=0) if value_doc is not None else 0
    if len(path) + height > MAX_DEPTH:
        # The same limit as in a file: a spec --set wrote must load again (from an artifact, say).
        raise SpecError(
            [SpecIssue(f"nesting deeper than {MAX_DEPTH} levels (path and value together); a spec never needs that", (), Location(label, 1, 1))]
        )
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
    if path in doc.values or path in doc.keys:  # only a replaced value has positions below it to drop
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
        doc = _resolve_extends(doc, base_dir, chain, _Budget(len(doc.values)))
    if len(overrides) > MAX_OVERRIDES:
        label = _override_label(overrides[MAX_OVERRIDES])
        raise SpecError([SpecIssue(f"more than {MAX_OVERRIDES} --set overrides; put the values in a spec file", (), Location(label, 1, 1))])
    for override in overrides:
        apply_override(doc, override, max(MAX_COMPOSED_NODES - len(doc.values), 1))
    migrate_document(doc)
    return doc, base_dir

