"""Problems as values: every problem is one :class:`SpecIssue`, every error a :class:`SpecsegError`.

A :class:`SpecIssue` (spec path, file location, message, related places) is
made wherever a problem is found: by the loader, by a section's cross-field
rules (without a location: :meth:`SpecIssue.located` adds it once the
document is known), by the encoder builder, by the CLI. A :class:`SpecError`
carries all issues found in one pass, so a user fixes a file once instead of
once per problem. Every exception specseg raises on purpose derives from
:class:`SpecsegError`, so ``except SpecsegError`` separates a user's problem
from a bug. This module must stay torch-free.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

PathPart = str | int
SpecPath = tuple[PathPart, ...]
#: Where a spec path sits in the document being checked (None where unknown).
Locator = Callable[[SpecPath], "Location | None"]

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

    def describe(self) -> str:
        """``spec.path: message (see other.path at file:line:col)``, without this issue's own location."""
        text = f"{format_path(self.path)}: {self.message}"
        for path, loc in self.related:
            at = f" at {loc}" if loc else ""
            text += f" (see {format_path(path)}{at})"
        return one_line(text)

    def format(self) -> str:
        """One line: ``file:line:col: spec.path: message``."""
        where = str(self.location) if self.location else "<spec>"
        return one_line(f"{where}: {self.describe()}")

    def located(self, locate: Locator) -> "SpecIssue":
        """This issue with file locations filled in where it (or a related place) has none."""
        location = self.location if self.location is not None else locate(self.path)
        related = tuple((path, loc if loc is not None else locate(path)) for path, loc in self.related)
        return SpecIssue(self.message, self.path, location, related)

    def under(self, prefix: SpecPath, related: Iterable[SpecPath] = ()) -> "SpecIssue":
        """This issue moved under ``prefix`` (a section's issue made relative to it), with more related paths."""
        extra = tuple((tuple(p), None) for p in related)
        moved = tuple((prefix + tuple(p), loc) for p, loc in self.related)
        return SpecIssue(self.message, prefix + tuple(self.path), self.location, moved + extra)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, used by ``--json`` output."""
        return {
            "file": self.location.file if self.location else None,
            "line": self.location.line if self.location else None,
            "column": self.location.column if self.location else None,
            "path": format_path(self.path),
            "message": self.message,
        }


def cross_issue(path: SpecPath, message: str, related: Iterable[SpecPath] = ()) -> SpecIssue:
    """An issue found by a rule that spans sections: not located yet, other paths it involves named."""
    return SpecIssue(message, tuple(path), None, tuple((tuple(r), None) for r in related))


class SpecsegError(Exception):
    """Base of every exception specseg raises on purpose (a user's problem, not a bug).

    ``issues`` holds the located problems when the error is about a spec;
    other errors (a bad artifact file, an export that failed) have none.
    """

    @property
    def issues(self) -> list[SpecIssue]:
        """The spec problems behind this error (empty for errors not about a spec)."""
        return []


class NotScriptableError(SpecsegError, RuntimeError):
    """``torch.jit.script`` was asked to compile a part that TorchScript cannot compile (nor can it in SMP).

    A ``RuntimeError``, as TorchScript's own compilation errors are; the
    message names the part and the capture methods that work instead.
    """


class ArtifactError(SpecsegError):
    """An artifact cannot be written, read or rebuilt; the message says why and what to do.

    Defined here (and importable from :mod:`specseg.artifacts`) so that modules
    that fetch artifacts need not import the artifact writer.
    """


class SpecError(SpecsegError):
    """Raised when a spec cannot be loaded, validated or built.

    ``issues`` holds every problem found, each with its location.
    """

    def __init__(self, issues: Iterable[SpecIssue]):
        self._issues: list[SpecIssue] = list(issues)
        super().__init__(self._summary())

    @property
    def issues(self) -> list[SpecIssue]:
        """Every problem found, each with its location."""
        return self._issues

    def located(self, locate: Locator) -> "SpecError":
        """The same error (same class and attributes) with file locations filled in where an issue has none."""
        located = copy.copy(self)
        located._issues = [issue.located(locate) for issue in self._issues]
        located.args = (located._summary(),)
        return located

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
    Made by :func:`spec_error` wherever validation or the build finds such a problem.
    """


#: Spec paths whose problems SMP reports as ``ValueError``: ``encoder_output_stride`` that the
#: encoder cannot be dilated to (vgg11, densenet121, ...) or the decoder does not take.
VALUE_ERROR_PATHS: frozenset[SpecPath] = frozenset({("encoder", "output_stride")})


def spec_error(issues: Iterable[SpecIssue]) -> SpecError:
    """The error for ``issues``: a :class:`SpecValueError` when one of them is a problem SMP raises as ``ValueError``.

    Used where validation and the build turn problems into an exception, so
    that ``except ValueError`` (SMP's type) catches the same refusals from
    ``specseg.build`` as from SMP's constructors, found at validation or at build.
    """
    issues = list(issues)
    if any(tuple(issue.path[:2]) in VALUE_ERROR_PATHS for issue in issues):
        return SpecValueError(issues)
    return SpecError(issues)


class InputShapeError(SpecsegError, ValueError, RuntimeError):
    """An input the model cannot take (rank, channels, height or width); the message names valid sizes.

    Also a ``RuntimeError``, the type SMP raises for the same inputs, so code
    written against SMP keeps catching it.
    """


def single_issue(message: str, path: SpecPath = (), location: Location | None = None) -> SpecError:
    """Shorthand for a :class:`SpecError` with exactly one issue."""
    return SpecError([SpecIssue(message=message, path=path, location=location)])


class EncoderBuildError(SpecsegError, ValueError):
    """An encoder could not be built; ``path`` names the ``encoder:`` key at fault (``("depth",)``).

    Raised by encoder classes and their builders with the key they know is at
    fault, so that nothing downstream guesses it from the message. ``field``
    (the first key, a string) is kept for compatibility.
    """

    def __init__(self, message: str, field: str | SpecPath = "name"):
        super().__init__(message)
        self.path: SpecPath = (field,) if isinstance(field, str) else tuple(field)

    @property
    def field(self) -> str:
        """The ``encoder:`` key at fault, e.g. ``depth``."""
        return str(self.path[0]) if self.path else "name"

    def issue(self, locate: Locator | None = None) -> SpecIssue:
        """This error as a located issue at ``encoder.<path>``."""
        path = ("encoder",) + self.path
        return SpecIssue(str(self), path, locate(path) if locate is not None else None)


class NotDilatableError(EncoderBuildError):
    """The encoder cannot produce features at the requested output stride (``encoder.output_stride``)."""

    def __init__(self, message: str):
        super().__init__(message, "output_stride")
