"""A small JSON reader that keeps positions and refuses duplicate keys.

Python's ``json`` module gives no positions and keeps the last duplicate key;
this reader is iterative (no recursion, so deep nesting is a clean error)
and follows RFC 8259 strictly: no NaN/Infinity, no comments, no trailing commas.
"""

from __future__ import annotations

import json
import re
from typing import Any

from specseg.errors import Location, SpecError, SpecIssue
from specseg.loader.document import MAX_DEPTH, MapNode, Node, ScalarNode, SeqNode

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
_MAX_INT_DIGITS = 4000
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Reader:
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.pos = 0

    def location(self, pos: int | None = None) -> Location:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return Location(self.file, line, column)

    def fail(self, message: str, pos: int | None = None) -> SpecError:
        return SpecError([SpecIssue(f"JSON syntax error: {message}", (), self.location(pos))])

    def skip_ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def string(self) -> str:
        match = _STRING.match(self.text, self.pos)
        if match is None:
            raise self.fail("invalid string (unterminated, bad escape or control character)")
        value = json.loads(match.group(0))
        surrogate = _SURROGATE.search(value)
        if surrogate is not None:
            # "\ud800" alone is valid JSON syntax but not a character: it cannot be validated or written as UTF-8.
            raise self.fail(f"string holds a lone surrogate \\u{ord(surrogate.group(0)):04x}, which is not a Unicode character")
        self.pos = match.end()
        return value

    def scalar(self) -> ScalarNode:
        start = self.pos
        location = self.location()
        ch = self.peek()
        if ch == '"':
            return ScalarNode(location, self.string())
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return ScalarNode(location, value)
        match = _NUMBER.match(self.text, self.pos)
        if match is None or match.end() == start:
            found = ch or "end of file"
            raise self.fail(f"expected a value, found {found!r}")
        self.pos = match.end()
        text = match.group(0)
        if match.group(2) is None and match.group(3) is None:
            if len(text.lstrip("-")) > _MAX_INT_DIGITS:
                raise SpecError([SpecIssue(f"integer with {len(text)} digits is too large", (), location)])
            return ScalarNode(location, int(text))
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise SpecError([SpecIssue(f"number {text} is out of range", (), location)])
        return ScalarNode(location, value)


def compose_json(text: str, file: str) -> Node:
    """Parse JSON text into a node tree, or raise :class:`SpecError` with a location."""
    reader = _Reader(text, file)
    # Each frame: [node, pending key, seen keys, expecting-more flag]
    stack: list[list[Any]] = []
    root: Node | None = None
    reader.skip_ws()
    if not reader.peek():
        raise SpecError([SpecIssue("the spec file is empty", (), Location(file, 1, 1))])

    def attach(node: Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        frame = stack[-1]
        if isinstance(frame[0], SeqNode):
            frame[0].items.append(node)
        else:
            key, key_loc = frame[1]
            frame[0].items.append((key, key_loc, node))
            frame[1] = None

    while True:
        reader.skip_ws()
        ch = reader.peek()
        frame = stack[-1] if stack else None
        # Inside a mapping that waits for a key.
        if frame is not None and isinstance(frame[0], MapNode) and frame[1] is None:
            if ch == "}" and not frame[3]:
                reader.pos += 1
                stack.pop()
            else:
                if ch != '"':
                    raise reader.fail("expected a string key in double quotes")
                key_loc = reader.location()
                key = reader.string()
                if key in frame[2]:
                    raise SpecError(
                        [
                            SpecIssue(
                                f"duplicate key '{key}' (first defined at {frame[2][key]})",
                                (),
                                key_loc,
                            )
                        ]
                    )
                frame[2][key] = key_loc
                reader.skip_ws()
                if reader.peek() != ":":
                    raise reader.fail("expected ':' after a key")
                reader.pos += 1
                frame[1] = (key, key_loc)
                frame[3] = False
                continue
        elif frame is not None and isinstance(frame[0], SeqNode) and ch == "]" and not frame[3]:
            reader.pos += 1
            stack.pop()
        elif ch in "{[" and ch:
            if len(stack) >= MAX_DEPTH:
                raise SpecError(
                    [SpecIssue(f"nesting deeper than {MAX_DEPTH} levels; a spec never needs that", (), reader.location())]
                )
            node: Node = MapNode(reader.location()) if ch == "{" else SeqNode(reader.location())
            reader.pos += 1
            attach(node)
            stack.append([node, None, {}, False])
            continue
        else:
            attach(reader.scalar())

        # After a complete value: a separator, a closer, or the end.
        while True:
            reader.skip_ws()
            if not stack:
                if reader.peek():
                    raise reader.fail("unexpected content after the top-level value")
                assert root is not None
                return root
            frame = stack[-1]
            closer = "}" if isinstance(frame[0], MapNode) else "]"
            ch = reader.peek()
            if ch == ",":
                reader.pos += 1
                frame[3] = True  # a value must follow; a closer now is a trailing comma
                break
            if ch == closer:
                reader.pos += 1
                stack.pop()
                continue
            raise reader.fail(f"expected ',' or '{closer}'")
