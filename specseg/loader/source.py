"""Turning a spec source (path, text or dict) into a located :class:`Document`."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Mapping

from specseg.errors import Location, SpecError, SpecIssue
from specseg.loader.document import MAX_NODES, Document, MapNode, Node, ScalarNode, SeqNode, to_document
from specseg.loader.json_reader import compose_json
from specseg.loader.yaml_reader import compose_yaml

#: A spec is a few kilobytes; anything near this is not a spec.
MAX_FILE_BYTES = 1 << 20
SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _fail(message: str, file: str) -> SpecError:
    return SpecError([SpecIssue(message, (), Location(file, 1, 1))])


def read_spec_file(path: str | os.PathLike[str]) -> str:
    """Read a spec file as text, refusing what cannot be a spec, with a located error."""
    file = str(path)
    p = Path(path)
    if p.suffix.lower() not in SPEC_SUFFIXES:
        raise _fail(f"unsupported spec file type '{p.suffix}'; use .yaml, .yml or .json", file)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise _fail("is a directory, not a spec file", file)
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or a device would block or never end: only regular files are specs.
            raise _fail("is not a regular file (a pipe, socket or device); a spec must be a file", file)
        size = st.st_size
        if size > MAX_FILE_BYTES:
            raise _fail(f"file is {size} bytes; a spec file may be at most {MAX_FILE_BYTES} bytes", file)
        with open(p, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _fail("no such file", file) from None
    except PermissionError:
        raise _fail("permission denied", file) from None
    except OSError as exc:
        raise _fail(f"cannot read file: {exc.strerror or exc}", file) from None
    if len(raw) > MAX_FILE_BYTES:
        raise _fail(f"a spec file may be at most {MAX_FILE_BYTES} bytes", file)
    return decode_spec_bytes(raw, file)


def decode_spec_bytes(raw: bytes, file: str) -> str:
    """Decode UTF-8 spec bytes; a byte-order mark or invalid bytes are located errors."""
    if raw.startswith(b"\xef\xbb\xbf") or raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail("file starts with a byte-order mark; save it as UTF-8 without BOM", file)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start]
        line = prefix.count(b"\n") + 1
        column = exc.start - (prefix.rfind(b"\n") + 1) + 1
        raise SpecError(
            [SpecIssue(f"invalid UTF-8 byte 0x{raw[exc.start]:02x}; spec files must be UTF-8", (), Location(file, line, column))]
        ) from None


def parse_text(text: str, file: str, fmt: str | None = None, max_nodes: int = MAX_NODES) -> Document:
    """Parse spec text as YAML or JSON (by ``fmt``, else by the file's suffix, else YAML).

    JSON is a subset of YAML 1.2, but a ``.json`` file gets the strict JSON
    reader so that JSON-only mistakes (trailing commas, single quotes) are named.
    """
    if fmt is None:
        fmt = "json" if file.lower().endswith(".json") else "yaml"
    if "\x00" in text:
        raise _fail("file contains NUL characters; it is not a text spec", file)
    root = compose_json(text, file) if fmt == "json" else compose_yaml(text, file, max_nodes)
    return to_document(root, file, max_nodes)


def _node_from_python(value: Any, file: str, depth: int = 0) -> Node:
    """Wrap an in-memory dict as a node tree (no positions, only paths)."""
    here = Location(file, 0, 0)
    if depth > 64:
        raise _fail("nesting deeper than 64 levels", file)
    if isinstance(value, Mapping):
        node = MapNode(here)
        for key, child in value.items():
            if not isinstance(key, str):
                raise _fail(f"mapping keys must be strings, got {type(key).__name__} {key!r}", file)
            node.items.append((key, here, _node_from_python(child, file, depth + 1)))
        return node
    if isinstance(value, (list, tuple)):
        return SeqNode(here, [_node_from_python(v, file, depth + 1) for v in value])
    return ScalarNode(here, value)


def load_document(source: Any, max_nodes: int = MAX_NODES) -> tuple[Document, Path | None]:
    """Load a spec source into a :class:`Document` and the directory paths are relative to.

    ``source`` may be a path (str or PathLike naming an existing .yaml/.yml/.json
    file), YAML or JSON text, or a mapping. ``max_nodes`` is the node budget
    (lower for the bases of a spec, which share one budget).
    """
    if isinstance(source, Mapping):
        doc = to_document(_node_from_python(source, "<dict>"), "<dict>")
        doc.values = {}
        doc.keys = {}
        return doc, None
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and source.strip().lower().endswith(SPEC_SUFFIXES)
    ):
        path = Path(source)
        text = read_spec_file(path)
        return parse_text(text, str(source), max_nodes=max_nodes), path.resolve().parent
    if isinstance(source, bytes):
        source = decode_spec_bytes(source, "<string>")
    if isinstance(source, str):
        if len(source.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            raise _fail(f"a spec may be at most {MAX_FILE_BYTES} bytes", "<string>")
        if source.lstrip().startswith("{"):
            # Most likely JSON; a YAML flow mapping is the other possibility.
            try:
                return parse_text(source, "<string>", "json"), None
            except SpecError as json_error:
                try:
                    return parse_text(source, "<string>", "yaml"), None
                except SpecError:
                    raise json_error from None
        return parse_text(source, "<string>", "yaml"), None
    raise TypeError(f"a spec source is a path, a YAML/JSON string or a mapping, not {type(source).__name__}")
