"""Spec errors as values: every problem is a located :class:`SpecIssue`.

A :class:`SpecError` carries all issues found in one pass, so a user fixes a
file once instead of once per problem. This module must stay torch-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

PathPart = str | int
SpecPath = tuple[PathPart, ...]

#: Characters that would break a message out of its line: C0/C1 controls and Unicode line separators.
_LINE_BREAKERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``), so one problem stays one line.

    Lone surrogates (non-UTF-8 bytes of a file name, as Python decodes them) are escaped too.
    """
    text = _LINE_BREAKERS.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def format_path(path: Sequence[PathPart]) -> str:
    """Render a spec path the way users write it: ``decoder.channels[2]``.

    The empty path (the document itself) renders as ``<root>``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


@dataclass(frozen=True)
class Location:
    """A position in a source text; ``line`` and ``column`` are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where it is, which spec path, and what is wrong.

    ``related`` names other places that take part in a cross-field rule, so
    that both ends of e.g. ``len(decoder.channels) == encoder.depth`` are shown.
    """

    message: str
    path: SpecPath = ()
    location: Location | None = None
    related: tuple[tuple[SpecPath, Location | None], ...] = field(default=())

    def format(self) -> str:
        """One line: ``file:line:col: spec.path: message``."""
        where = str(self.location) if self.location else "<spec>"
        text = f"{where}: {format_path(self.path)}: {self.message}"
        for path, loc in self.related:
            at = f" at {loc}" if loc else ""
            text += f" (see {format_path(path)}{at})"
        return one_line(text)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, used by ``--json`` output."""
        return {
            "file": self.location.file if self.location else None,
            "line": self.location.line if self.location else None,
            "column": self.location.column if self.location else None,
            "path": format_path(self.path),
            "message": self.message,
        }


class SpecError(Exception):
    """Raised when a spec cannot be loaded, validated or built.

    ``issues`` holds every problem found, each with its location.
    """

    def __init__(self, issues: Iterable[SpecIssue]):
        self.issues: list[SpecIssue] = list(issues)
        super().__init__(self._summary())

    def _summary(self) -> str:
        lines = [issue.format() for issue in self.issues]
        if not lines:
            return "invalid spec"
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._summary()


class SpecValueError(SpecError, ValueError):
    """A :class:`SpecError` that SMP raises as ``ValueError`` (an encoder that cannot be dilated).

    Code written against SMP (``except ValueError``) catches it; it is still a
    located :class:`SpecError` for the CLI and for specseg's own callers.
    """


class InputShapeError(ValueError, RuntimeError):
    """An input the model cannot take (rank, channels, height or width); the message names valid sizes.

    Also a ``RuntimeError``, the type SMP raises for the same inputs, so code
    written against SMP keeps catching it.
    """


def single_issue(message: str, path: SpecPath = (), location: Location | None = None) -> SpecError:
    """Shorthand for a :class:`SpecError` with exactly one issue."""
    return SpecError([SpecIssue(message=message, path=path, location=location)])
