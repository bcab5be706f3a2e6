"""A safe YAML reader that keeps positions.

Why not ``yaml.safe_load``: it silently keeps the last of two duplicate keys,
reads ``no`` as ``False`` and ``017`` as 15, has no node budget against alias
bombs, recurses once per nesting level (libyaml's C loader can crash the
process on deep input), and drops the positions we need for errors.

So we take PyYAML's pure-Python event stream (iterative, no recursion, never
constructs objects) and compose the tree ourselves:

* only the YAML core tags are accepted; ``!!python/...``, ``!!binary`` and
  custom tags are errors, so nothing is ever imported or called;
* plain scalars resolve with YAML 1.2 core rules (``yes``/``no``/``on``/``off``
  stay strings; integers with a leading zero are refused as ambiguous);
* duplicate keys are errors, including keys brought in by merge keys ``<<``
  from two sources; an explicit key overrides a merged one (YAML merge
  semantics, the point of ``<<``);
* depth is limited while parsing and aliases are expanded under a budget:
  composing counts the nodes the document expands to (an alias counts as
  the whole subtree it stands for, a merge key as the keys it brings) and
  the nesting depth an alias creates, so alias and merge-key bombs stop
  after at most :data:`MAX_NODES` nodes, before any expansion happens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from specseg.errors import Location, SpecError, SpecIssue
from specseg.loader.document import MAX_DEPTH, MAX_NODES, MapNode, Node, ScalarNode, SeqNode

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}

_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")
#: Escapes such as "\ud800" can produce lone surrogates: not characters, refused.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Python refuses int() on more digits than this by default; say so clearly.
_MAX_INT_DIGITS = 4000
#: The same bound for hexadecimal and octal integers (which int() converts without a limit,
#: but which could not be printed back in decimal): |value| < 10**4000.
_MAX_INT_VALUE = 10**_MAX_INT_DIGITS


class _ComposeError(Exception):
    """Internal: one located problem that stops composing."""

    def __init__(self, message: str, location: Location, path: tuple[Any, ...] = ()):
        super().__init__(message)
        self.issue = SpecIssue(message, path, location)


def _loc(mark: Any, file: str) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


def _parse_int(text: str, location: Location) -> int:
    digits = text.lstrip("+-")
    if len(digits) > _MAX_INT_DIGITS:
        raise _ComposeError(f"integer with {len(digits)} digits is too large", location)
    if len(digits) > 1 and digits.startswith("0"):
        raise _ComposeError(
            f"ambiguous integer {text!r}: a leading zero means octal in YAML 1.1 and decimal "
            f"in YAML 1.2; write {int(text)} (decimal) or 0o{digits.lstrip('0') or '0'} (octal)",
            location,
        )
    return int(text)


def _parse_based_int(text: str, base: int, location: Location) -> int:
    """A ``0o``/``0x`` integer, refused when its decimal form would exceed :data:`_MAX_INT_DIGITS` digits."""
    if len(text) - 2 > 4 * _MAX_INT_DIGITS:
        raise _ComposeError(f"integer with {len(text) - 2} digits is too large", location)
    value = int(text[2:], base)
    if value >= _MAX_INT_VALUE:
        raise _ComposeError(f"integer with {len(text) - 2} digits is too large", location)
    return value


def _resolve_plain(text: str, location: Location) -> Any:
    """YAML 1.2 core-schema resolution of a plain (unquoted) scalar."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return _parse_int(text, location)
    if _OCT.match(text):
        return _parse_based_int(text, 8, location)
    if _HEX.match(text):
        return _parse_based_int(text, 16, location)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return text


def _resolve_scalar(event: yaml.ScalarEvent, location: Location) -> Any:
    tag = event.tag
    if tag in (None, "!"):
        # "!" is the non-specific tag: the scalar is a string.
        if event.style is None and tag is None:
            return _resolve_plain(event.value, location)
        return event.value
    if tag not in _ALLOWED_TAGS:
        raise _ComposeError(
            f"YAML tag {_tag_name(tag)} is not allowed in a spec; only plain values, "
            "mappings and lists are (tags could construct objects)",
            location,
        )
    kind = tag[len(_CORE):]
    text = event.value
    if kind == "str":
        return text
    value = _resolve_plain(text, location)
    expected = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}[kind]
    if kind == "int" and isinstance(value, bool) or not isinstance(value, expected):
        raise _ComposeError(f"{text!r} is not a valid {_tag_name(tag)} value", location)
    return float(value) if kind == "float" else value


@dataclass
class _Frame:
    node: MapNode | SeqNode
    anchor: str | None
    path: tuple[Any, ...] = ()
    pending_key: tuple[str, Location] | None = None
    seen: dict[str, Location] = field(default_factory=dict)
    merges: list[tuple[Node, Location]] = field(default_factory=list)
    #: Nodes counted before this one opened (its expanded size is the difference at its end).
    start_count: int = 0
    #: Levels of nesting in this node once aliases are expanded (1 = only scalars inside).
    height: int = 1


def _apply_merges(frame: _Frame) -> None:
    """Fold ``<<`` sources into the mapping: explicit keys win, sources must not clash."""
    node = frame.node
    assert isinstance(node, MapNode)
    merged: dict[str, tuple[Location, Node]] = {}
    for source, merge_loc in frame.merges:
        sources = source.items if isinstance(source, SeqNode) else [source]
        for src in sources:
            if not isinstance(src, MapNode):
                raise _ComposeError(
                    "a merge key '<<' takes a mapping or a list of mappings", merge_loc, frame.path
                )
            for key, key_loc, child in src.items:
                if key in merged:
                    raise _ComposeError(
                        f"duplicate key '{key}' brought in by two merge sources "
                        f"(first at {merged[key][0]})",
                        merge_loc,
                        frame.path + (key,),
                    )
                merged[key] = (key_loc, child)
    for key, (key_loc, child) in merged.items():
        if key not in frame.seen:
            node.items.append((key, key_loc, child))


def compose_yaml(text: str, file: str, max_nodes: int = MAX_NODES) -> Node:
    """Parse YAML text into a node tree, or raise :class:`SpecError` with a location.

    ``max_nodes`` is the node budget left (less than :data:`MAX_NODES` for a
    base file, whose spec's other files used some of it already).
    """
    anchors: dict[str, Node] = {}
    #: anchor -> (expanded node count, expanded height) of the node it names
    anchor_sizes: dict[str, tuple[int, int]] = {}
    open_anchors: set[str] = set()
    count = 0  # nodes the document expands to so far
    stack: list[_Frame] = []
    root: Node | None = None
    documents = 0

    def attach(node: Node, location: Location) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        frame = stack[-1]
        if isinstance(frame.node, SeqNode):
            frame.node.items.append(node)
            return
        if frame.pending_key is None:
            # A mapping key that is itself a mapping, list or alias.
            raise _ComposeError("mapping keys must be plain strings", location, frame.path)
        key, key_loc = frame.pending_key
        frame.pending_key = None
        if key == "<<":
            frame.merges.append((node, key_loc))
            return
        if key in frame.seen:
            raise _ComposeError(
                f"duplicate key '{key}' (first defined at {frame.seen[key]}); "
                "YAML would silently keep only the last one",
                key_loc,
                frame.path + (key,),
            )
        frame.seen[key] = key_loc
        frame.node.items.append((key, key_loc, node))

    def child_path() -> tuple[Any, ...]:
        """The spec path of the node about to be attached."""
        if not stack:
            return ()
        frame = stack[-1]
        if isinstance(frame.node, SeqNode):
            return frame.path + (len(frame.node.items),)
        return frame.path + ((frame.pending_key[0],) if frame.pending_key else ())

    def register_anchor(anchor: str | None, node: Node, size: int = 1, height: int = 0) -> None:
        if anchor is not None:
            anchors[anchor] = node
            anchor_sizes[anchor] = (size, height)

    def charge(nodes: int, height: int, location: Location) -> None:
        """Count ``nodes`` more expanded nodes of nesting ``height`` attached at the current level."""
        nonlocal count
        count += nodes
        if count > max_nodes:
            raise _ComposeError(
                (
                    f"document expands to more than {MAX_NODES} nodes (YAML aliases multiply content); refusing to load it"
                    if max_nodes >= MAX_NODES
                    else f"the spec, its bases and its --set values hold more than {MAX_NODES} nodes together; refusing to load this part"
                ),
                location,
                child_path(),
            )
        if len(stack) + height > MAX_DEPTH:
            raise _ComposeError(
                f"nesting deeper than {MAX_DEPTH} levels once aliases are expanded; a spec never needs that",
                location,
                child_path(),
            )
        if stack and height:
            stack[-1].height = max(stack[-1].height, height + 1)

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _ComposeError(
                        "a spec file holds exactly one YAML document; found a second '---'",
                        _loc(event.start_mark, file),
                    )
                continue
            if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
                continue
            location = _loc(event.start_mark, file)
            if isinstance(event, yaml.ScalarEvent):
                surrogate = _SURROGATE.search(event.value)
                if surrogate is not None:
                    raise _ComposeError(
                        f"string holds a lone surrogate \\u{ord(surrogate.group(0)):04x}, which is not a Unicode character",
                        location,
                        child_path(),
                    )
                frame = stack[-1] if stack else None
                if isinstance(frame, _Frame) and isinstance(frame.node, MapNode) and frame.pending_key is None:
                    if event.tag not in (None, "!", f"{_CORE}str"):
                        raise _ComposeError("mapping keys must be plain strings", location, frame.path)
                    frame.pending_key = (event.value, location)
                    continue
                try:
                    node = ScalarNode(location, _resolve_scalar(event, location))
                except _ComposeError as exc:
                    raise _ComposeError(str(exc), location, child_path()) from None
                charge(1, 0, location)
                register_anchor(event.anchor, node)
                attach(node, location)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise _ComposeError(
                        f"alias *{event.anchor} refers to a node that contains it (a cycle)",
                        location,
                        child_path(),
                    )
                if event.anchor not in anchors:
                    raise _ComposeError(f"unknown alias *{event.anchor}", location, child_path())
                if stack and isinstance(stack[-1].node, MapNode) and stack[-1].pending_key is None:
                    raise _ComposeError("mapping keys must be plain strings", location, stack[-1].path)
                charge(*anchor_sizes[event.anchor], location)
                attach(anchors[event.anchor], location)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                is_map = isinstance(event, yaml.MappingStartEvent)
                expected_tag = f"{_CORE}{'map' if is_map else 'seq'}"
                if event.tag not in (None, "!", expected_tag):
                    raise _ComposeError(
                        f"YAML tag {_tag_name(event.tag)} is not allowed in a spec; only plain "
                        "values, mappings and lists are (tags could construct objects)",
                        location,
                        child_path(),
                    )
                if len(stack) >= MAX_DEPTH:
                    raise _ComposeError(
                        f"nesting deeper than {MAX_DEPTH} levels; a spec never needs that",
                        location,
                        child_path(),
                    )
                node = MapNode(location) if is_map else SeqNode(location)
                path = child_path()
                charge(1, 1, location)
                attach(node, location)
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
                stack.append(_Frame(node, event.anchor, path, start_count=count - 1))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                if frame.merges:
                    _apply_merges(frame)
                if stack:
                    stack[-1].height = max(stack[-1].height, frame.height + 1)
                if frame.anchor is not None:
                    open_anchors.discard(frame.anchor)
                    register_anchor(frame.anchor, frame.node, count - frame.start_count, frame.height)
    except _ComposeError as exc:
        raise SpecError([exc.issue]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _loc(mark, file) if mark is not None else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        raise SpecError([SpecIssue(f"YAML syntax error: {problem}{context}", (), location)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(f"YAML error: {exc}", (), Location(file, 1, 1))]) from None
    if root is None:
        raise SpecError([SpecIssue("the spec file is empty", (), Location(file, 1, 1))])
    return root
