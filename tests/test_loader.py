"""Reading spec text safely: YAML/JSON parsing, positions, hostile input.

Every bad input is a :class:`SpecError` with a location, in bounded time,
and nothing in a spec can construct objects or run code.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest

from specseg import SpecError
from specseg.errors import format_path
from specseg.loader.source import MAX_FILE_BYTES, load_document


def _issue(source) -> tuple[str, int, int, str]:
    with pytest.raises(SpecError) as info:
        load_document(source)
    issue = info.value.issues[0]
    assert issue.location is not None
    return issue.message, issue.location.line, issue.location.column, format_path(issue.path)


def test_positions_point_at_values_and_keys() -> None:
    doc, _ = load_document("a: 1\nb:\n  c: [x, {d: 2}]\n")
    assert (doc.values[("b", "c", 1, "d")].line, doc.values[("b", "c", 1, "d")].column) == (3, 14)
    assert (doc.keys[("b", "c")].line, doc.keys[("b", "c")].column) == (3, 3)


@pytest.mark.parametrize(
    "text, value",
    [
        ("v: yes", "yes"),
        ("v: off", "off"),
        ("v: 1.10", 1.1),
        ("v: 1e-3", 0.001),
        ("v: 0o17", 15),
        ("v: 0x1F", 31),
        ("v: ~", None),
        ("v: '017'", "017"),
        ("v: True", True),
        ("v: !!str 12", "12"),
        ("v: 2024-01-01", "2024-01-01"),
    ],
)
def test_yaml_scalars_follow_yaml_1_2_core_rules(text: str, value: object) -> None:
    doc, _ = load_document(text)
    assert doc.data["v"] == value and type(doc.data["v"]) is type(value)


def test_inf_and_nan_are_read_as_floats_for_validation_to_refuse() -> None:
    doc, _ = load_document("a: .inf\nb: .nan")
    assert math.isinf(doc.data["a"]) and math.isnan(doc.data["b"])


@pytest.mark.parametrize(
    "text, fragment, line, column, path",
    [
        ("a: 017", "ambiguous integer", 1, 4, "a"),
        ("a: !!binary aGVsbG8=", "tag !!binary is not allowed", 1, 4, "a"),
        ("a: !!python/name:os.system ''", "not allowed", 1, 4, "a"),
        ("a:\n  - !!python/object/new:os.system [ls]", "not allowed", 2, 5, "a[0]"),
        ("a: !custom 1", "tag !custom is not allowed", 1, 4, "a"),
        ("a: 1\na: 2", "duplicate key 'a'", 2, 1, "a"),
        ("x: {a: 1, a: 1}", "duplicate key 'a'", 1, 11, "x.a"),
        ("b1: &b1 {k: 1}\nb2: &b2 {k: 2}\nx:\n  <<: [*b1, *b2]", "two merge sources", 4, 3, "x.k"),
        ("a: &a [*a]", "cycle", 1, 8, "a[0]"),
        ("a: *nope", "unknown alias", 1, 4, "a"),
        ("a: 1\n---\nb: 2", "exactly one YAML document", 2, 1, "<root>"),
        ("a: [1, 2", "YAML syntax error", 1, 9, "<root>"),
        ("? [a]\n: 1", "mapping keys must be plain strings", 1, 3, "<root>"),
        ("", "empty", 1, 1, "<root>"),
        ("a: " + "9" * 5000, "too large", 1, 4, "a"),
    ],
)
def test_bad_yaml_is_a_located_error(text: str, fragment: str, line: int, column: int, path: str) -> None:
    message, got_line, got_column, got_path = _issue(text)
    assert fragment in message
    assert (got_line, got_column, got_path) == (line, column, path)


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    doc, _ = load_document("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n")
    assert doc.data["c"] == {"x": 1, "y": 3}
    assert doc.values[("c", "x")].line == 1  # where the merged value was written


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    start = time.perf_counter()
    message, *_ = _issue("\n".join(lines))
    assert "more than" in message and "nodes" in message
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    "kind, depth",
    # Block style grows quadratically with depth, so 1,000 levels is what fits under the size cap.
    [("yaml-block", 1_000)] + [(k, d) for k in ("yaml-flow", "json") for d in (1_000, 30_000, 100_000)],
)
def test_deep_nesting_is_a_clean_error(kind: str, depth: int) -> None:
    if kind == "yaml-block":
        text = "".join(f"{' ' * i}k:\n" for i in range(depth)) + " " * depth + "k: 1\n"
    elif kind == "json":
        text = '{"a": ' + "[" * depth + "]" * depth + "}"
    else:
        text = "a: " + "[" * depth + "]" * depth
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_document(text)
    assert "nesting deeper than" in info.value.issues[0].message
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "text, fragment, column",
    [
        ('{"a": 1,}', "string key", 9),
        ('{"a": NaN}', "expected a value", 7),
        ("{'a': 1}", "string key", 2),
        ('{"a": 1} x', "after the top-level value", 10),
        ('{"a": "\\q"}', "invalid string", 7),
        ('{"a": 1e999}', "out of range", 7),
    ],
)
def test_bad_json_is_a_located_error(tmp_path: Path, text: str, fragment: str, column: int) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    message, line, got_column, _ = _issue(path)
    assert fragment in message and (line, got_column) == (1, column)


def test_json_allows_tabs_and_escapes(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{\t"a":\t"x\\/y\\u00e9",\n"b": [1, 2.5, true, null]}')
    doc, _ = load_document(path)
    assert doc.data == {"a": "x/yé", "b": [1, 2.5, True, None]}
    assert doc.values[("b", 1)].line == 2


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"\xef\xbb\xbfspecseg: 1\n", "byte-order mark"),
        (b"a: 1\nb: \xff\xfe\n", "invalid UTF-8"),
        (b"a: 1\x00", "NUL"),
    ],
)
def test_bad_bytes_are_refused(tmp_path: Path, raw: bytes, fragment: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(raw)
    message, *_ = _issue(path)
    assert fragment in message


def test_invalid_utf8_position(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"a: 1\nb: \xff\n")
    _, line, column, _ = _issue(path)
    assert (line, column) == (2, 4)


def test_files_that_cannot_be_specs(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    assert "at most" in _issue(big)[0]
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert "directory" in _issue(folder)[0]
    assert "no such file" in _issue(tmp_path / "missing.yaml")[0]
    (tmp_path / "spec.txt").write_text("a: 1")
    assert "unsupported spec file type" in _issue(Path(tmp_path / "spec.txt"))[0]


def test_no_code_runs_while_loading(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    events: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event in ("os.system", "subprocess.Popen", "exec", "os.exec", "import") and "yaml" not in str(args):
            events.append(event)

    payloads = [
        f"a: !!python/object/apply:os.system ['touch {marker}']",
        f"a: !!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "a: !!python/name:builtins.eval",
        "a: !!python/module:os",
    ]
    sys.addaudithook(audit)
    for text in payloads:
        with pytest.raises(SpecError):
            load_document(text)
    assert not marker.exists()
    assert [e for e in events if e != "import"] == []
