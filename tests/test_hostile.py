"""Hostile and broken input: nothing crashes, nothing executes, nothing hangs.

A corpus of hostile spec files (tables below, one per kind of attack or
mistake) is fed to ``specseg validate FILE`` and ``specseg build FILE``. Each
run is its own process with its own argv, stdout, stderr, exit code,
address-space limit (``RLIMIT_AS``), CPU time and peak RSS (``os.wait4``):
it is forked from a warmed interpreter that has already imported what the
command imports (torch for ``build``), and runs the command line's ``main``.
Starting a fresh interpreter (and torch) per file would cost minutes on a
two-core machine; a few files also go through real ``python -m specseg``
subprocesses to check that they report exactly the same.

Every file must exit 1 with one located line per problem
(``file:line:col: spec.path: message``), no traceback, in bounded CPU time
and memory, and payloads (YAML python tags, pickles) must never run: they
would leave marker files behind.

The same corpus checks that the JSON Schema and Pydantic agree on every file
that parses, except the cases JSON Schema cannot express (listed with their
reason). Further sections: encoder names cannot smuggle code in, weight files
are read safely, the memory guard, plugin isolation, exit codes and output files.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import resource
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import specseg
from specseg import SpecError
from specseg.errors import format_path
from specseg.loader.document import MAX_NODES
from specseg.loader.source import MAX_FILE_BYTES, load_document
from tests.conftest import ROOT

#: Each command may use this much CPU time on one hostile file (the interpreter's start included).
CPU_LIMIT_S = 5.0
#: A command still running after this long is killed: the test then fails as a hang.
WALL_LIMIT_S = 60
#: Address-space limit of a fresh ``validate`` subprocess (no torch): hostile input must fit in it.
VALIDATE_AS_LIMIT = 1 << 30
#: Extra address space a forked command may map beyond its warmed interpreter's.
AS_HEADROOM = 1 << 30
#: RSS a forked command may add to its warmed interpreter's on a hostile file.
RSS_GROWTH_KIB = 256 * 1024

#: ``file:line:col: spec.path: message`` (the spec path may hold any character but ": ").
ISSUE_LINE = re.compile(r"^(?P<file>.+?):(?P<line>[1-9][0-9]*):(?P<col>[1-9][0-9]*): (?P<path>.+?): (?P<message>.+)$")

BASE = "specseg: 1\ndecoder: {architecture: unet}\n"


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile file: its content (text, bytes, or a function creating it) and the expected error.

    ``fragment`` must appear in the message of an issue; ``where`` (``"line:col spec.path"``),
    when given, is that issue's position and path. Text may use ``{MARKER}`` (a file a payload
    would create) and ``{MARKERS}`` (the folder it would be in).
    """

    id: str
    content: str | bytes | Callable[[Path], Path]
    fragment: str
    where: str | None = None
    suffix: str = ".yaml"


def _alias_bomb(levels: int, width: int = 9) -> str:
    lines = ["specseg: 1", "decoder: {architecture: unet}", "metadata:", '  a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _mapping_alias_bomb(levels: int) -> str:
    lines = ["specseg: 1", "decoder: {architecture: unet}", "metadata:", "  m0: &m0 {k: v}"]
    for i in range(1, levels + 1):
        lines.append(f"  m{i}: &m{i} {{" + ", ".join(f"x{j}: *m{i - 1}" for j in range(10)) + "}")
    return "\n".join(lines) + "\n"


def _merge_key_bomb(keys: int = 5000, merges: int = 2000) -> str:
    # Each `<<: *a` copies 5000 keys: before composing charged merges to the node budget,
    # this 84 KB file took 22 s and 750 MiB to refuse (regression case).
    mapping = ", ".join(f"k{i}: 0" for i in range(keys))
    body = "".join(f"  b{i}: {{<<: *a}}\n" for i in range(merges))
    return f"{BASE}metadata:\n  a: &a {{{mapping}}}\n{body}"


def _deep_alias_chain(links: int = 20, depth: int = 50) -> str:
    # Each anchor nests 50 levels and holds the previous one: 1,000 levels once expanded.
    # Before the loader checked the expanded depth, flattening it raised RecursionError (regression case).
    lines = [f"  a{i}: &a{i} " + "[" * depth + (f"*a{i - 1}" if i else "1") + "]" * depth for i in range(links)]
    return f"{BASE}metadata:\n" + "\n".join(lines) + "\n"


def _yaml_block_nesting(depth: int) -> str:
    return BASE + "metadata:\n" + "".join(f"{' ' * (i + 1)}k:\n" for i in range(depth)) + " " * (depth + 1) + "k: 1\n"


def _special(kind: str) -> Callable[[Path], Path]:
    """A file-system object that is not a readable spec file."""

    def make(folder: Path) -> Path:
        path = folder / f"{kind}.yaml"
        if kind == "directory":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "device":
            path.symlink_to("/dev/zero")
        elif kind == "symlink-loop":
            path.symlink_to(path.name)
        elif kind == "unreadable":
            path.write_text(BASE)
            path.chmod(0)
        elif kind == "missing":
            pass
        elif kind == "wrong-suffix":
            path = folder / "spec.txt"
            path.write_text(BASE)
        else:  # pragma: no cover
            raise AssertionError(kind)
        return path

    make.__name__ = kind
    return make


#: YAML tags that would construct objects (PyYAML's unsafe loaders import and call what they name).
#: ``evilmod`` is an importable module (on the children's PYTHONPATH) that leaves a marker when imported.
TAG_CASES = [
    Case("python-object-apply", BASE + 'seed: !!python/object/apply:os.system ["touch {MARKER}"]\n', "tag !!python/object/apply:os.system is not allowed", "3:7 seed"),
    Case("python-object-new", BASE + "seed: !!python/object/new:subprocess.Popen [[touch, '{MARKER}']]\n", "tag !!python/object/new:subprocess.Popen is not allowed", "3:7 seed"),
    Case("python-name", BASE + "name: !!python/name:evilmod.payload ''\n", "tag !!python/name:evilmod.payload is not allowed", "3:7 name"),
    Case("python-module", BASE + "name: !!python/module:evilmod ''\n", "tag !!python/module:evilmod is not allowed", "3:7 name"),
    Case("python-object", BASE + "metadata: !!python/object:evilmod.Evil {x: 1}\n", "tag !!python/object:evilmod.Evil is not allowed", "3:11 metadata"),
    Case("python-apply-nested", BASE + 'metadata:\n  x: [1, {y: !!python/object/apply:evilmod.payload ["{MARKER}"]}]\n', "not allowed", "4:14 metadata.x[1].y"),
    Case("python-tag-on-key", BASE + "head:\n  !!python/name:evilmod.payload : 1\n", "mapping keys must be plain strings", "4:3 head"),
    Case("tag-directive", '%TAG !p! tag:yaml.org,2002:python/\n---\nspecseg: 1\nseed: !p!object/apply:os.system ["touch {MARKER}"]\n', "tag !!python/object/apply:os.system is not allowed", "4:7 seed"),
    Case("verbatim-tag", 'specseg: 1\nseed: !<tag:yaml.org,2002:python/object/apply:os.system> ["touch {MARKER}"]\n', "not allowed", "2:7 seed"),
    Case("binary-tag", BASE + "name: !!binary aGVsbG8=\n", "tag !!binary is not allowed", "3:7 name"),
    Case("set-tag", BASE + "metadata: !!set {a, b}\n", "tag !!set is not allowed", "3:11 metadata"),
    Case("custom-tag", BASE + "head: {classes: !env CLASSES}\n", "tag !env is not allowed", "3:17 head.classes"),
]

ALIAS_CASES = [
    Case("bomb-lists-9-levels", _alias_bomb(9), f"more than {MAX_NODES} nodes"),
    Case("bomb-lists-7-levels-wide", _alias_bomb(7, width=12), f"more than {MAX_NODES} nodes"),
    Case("bomb-mappings-7-levels", _mapping_alias_bomb(7), f"more than {MAX_NODES} nodes"),
    Case("bomb-merge-keys", _merge_key_bomb(), f"more than {MAX_NODES} nodes"),
    Case("self-reference-list", BASE + "metadata: &a [*a]\n", "refers to a node that contains it", "3:15 metadata[0]"),
    Case("self-reference-mapping", BASE + "metadata: &a {x: {y: *a}}\n", "refers to a node that contains it", "3:22 metadata.x.y"),
    Case("self-reference-merge", BASE + "head: &h {classes: 2, <<: *h}\n", "refers to a node that contains it"),
    Case("unknown-alias", BASE + "head: *nothing\n", "unknown alias *nothing", "3:7 head"),
    Case("alias-as-key", BASE + "metadata: {k: &k x, *k : 1}\n", "mapping keys must be plain strings"),
    Case("deep-alias-chain", _deep_alias_chain(), "nesting deeper than 64 levels once aliases are expanded"),
]

NESTING_CASES = [
    Case(f"{kind}-{depth}", text, "nesting deeper than 64 levels", suffix=suffix)
    for depth in (1_000, 30_000, 100_000)
    for kind, text, suffix in (
        ("yaml-flow", BASE + "metadata: " + "[" * depth + "]" * depth + "\n", ".yaml"),
        ("json", '{"specseg": 1, "metadata": ' + "[" * depth + "]" * depth + "}", ".json"),
        ("json-objects", '{"specseg": 1, "metadata": ' + '{"a": ' * depth + "1" + "}" * depth + "}", ".json"),
    )
    # Block style grows quadratically with depth: 1,000 levels is what fits in a spec-sized file.
] + [Case("yaml-block-1000", _yaml_block_nesting(1_000), "nesting deeper than 64 levels")]

DUPLICATE_CASES = [
    Case("top-level", BASE + "specseg: 1\n", "duplicate key 'specseg'", "3:1 specseg"),
    Case("nested", "specseg: 1\ndecoder:\n  architecture: unet\n  channels: [8]\n  architecture: fpn\n", "duplicate key 'architecture'", "5:3 decoder.architecture"),
    Case("quoted-and-plain", BASE + "head:\n  classes: 2\n  'classes': 3\n", "duplicate key 'classes'", "5:3 head.classes"),
    Case("in-list-item", BASE + "metadata:\n  runs: [{id: 1}, {id: 2, id: 3}]\n", "duplicate key 'id'", "4:27 metadata.runs[1].id"),
    Case("deep-in-metadata", BASE + "metadata:\n  a:\n    b:\n      c: 1\n      c: 2\n", "duplicate key 'c'", "7:7 metadata.a.b.c"),
    Case("two-merge-sources", BASE + "metadata:\n  x: &x {k: 1}\n  y: &y {k: 2}\nhead:\n  <<: [*x, *y]\n", "two merge sources", "7:3 head.k"),
    Case("two-merge-keys", BASE + "metadata:\n  x: &x {k: 1}\n  y: &y {k: 2}\nhead:\n  <<: *x\n  <<: *y\n", "two merge sources"),
    Case("merge-not-a-mapping", BASE + "metadata:\n  x: &x [1]\nhead:\n  <<: *x\n", "a merge key '<<' takes a mapping"),
    Case("json-nested", '{"specseg": 1, "decoder": {"architecture": "unet", "architecture": "fpn"}}', "duplicate key 'architecture'", suffix=".json"),
]

#: YAML 1.1 readings (PyYAML's safe_load) that a spec must not silently get: each is refused
#: where it lands, or read as YAML 1.2 types it and then refused by the field's type.
YAML11_CASES = [
    Case("on-for-bool", "specseg: 1\ndecoder: {architecture: deeplabv3, aspp_separable: on}\n", "write true or false", "2:52 decoder.aspp_separable"),
    Case("yes-for-bool", BASE + "encoder:\n  params: {}\nhead: {classes: 1}\nmetadata: {}\naux_params: {classes: 2, dropout: yes}\n", "got the string 'yes'", "7:35 aux_params.dropout"),
    Case("no-for-norm", "specseg: 1\ndecoder: {architecture: unet, norm: no}\n", "the string 'no' is not valid", "2:37 decoder.norm"),
    Case("off-for-int", BASE + "head: {classes: off}\n", "got the string 'off'", "3:17 head.classes"),
    Case("version-float-for-string", BASE + "encoder: {name: 1.10}\n", "got the number 1.1", "3:17 encoder.name"),
    Case("leading-zero", BASE + "head: {classes: 017}\n", "ambiguous integer '017'", "3:17 head.classes"),
    Case("leading-zero-in-list", "specseg: 1\ndecoder: {architecture: unet, channels: [256, 128, 064, 32, 16]}\n", "ambiguous integer '064'", "2:52 decoder.channels[2]"),
    Case("exponent-for-string", BASE + "name: 1e-3\n", "got the number 0.001", "3:7 name"),
    Case("exponent-for-int", BASE + "head: {classes: 1e3}\n", "valid integer", "3:17 head.classes"),
    Case("inf", BASE + "encoder: {depth: .inf}\n", "got the number inf", "3:18 encoder.depth"),
    Case("nan", BASE + "aux_params: {classes: 2, dropout: .nan}\n", "finite number", "3:35 aux_params.dropout"),
    Case("nan-in-norm", "specseg: 1\ndecoder: {architecture: unet, norm: {type: batchnorm, eps: .NaN}}\n", "finite number", "2:60 decoder.norm.eps"),
    Case("binary-for-string", BASE + "name: !!binary aGVsbG8=\n", "tag !!binary is not allowed", "3:7 name"),
    Case("sexagesimal", BASE + "head: {classes: 1:30}\n", "got the string '1:30'", "3:17 head.classes"),
    Case("timestamp", BASE + "seed: 2001-12-14\n", "got the string '2001-12-14'", "3:7 seed"),
    Case("tagged-int-leading-zero", BASE + "seed: !!int 017\n", "ambiguous integer", "3:7 seed"),
    Case("tagged-bool-yes", BASE + "seed: !!bool yes\n", "'yes' is not a valid !!bool value", "3:7 seed"),
]

TYPE_CASES = [
    Case("string-for-int", BASE + "head: {classes: '5'}\n", "got the string '5'", "3:17 head.classes"),
    Case("bool-for-int", BASE + "head: {classes: true}\n", "got a boolean", "3:17 head.classes"),
    Case("bool-for-float", BASE + "aux_params: {classes: 2, dropout: false}\n", "a boolean", "3:35 aux_params.dropout"),
    Case("float-for-int", BASE + "encoder: {depth: 4.5}\n", "got the number 4.5", "3:18 encoder.depth"),
    Case("whole-float-for-int", BASE + "head: {classes: 5.0}\n", "got the number 5.0", "3:17 head.classes"),
    # Literal choices of integers compared by equality: true (== 1) and 16.0 (== 16) used to pass (regression cases).
    Case("bool-for-version", "specseg: true\ndecoder: {architecture: unet}\n", "unsupported spec format version True", "1:10 specseg"),
    Case("bool-for-kernel-size", BASE + "head: {kernel_size: true}\n", "got a boolean", "3:21 head.kernel_size"),
    Case("whole-float-for-choice", BASE + "encoder: {output_stride: 16.0}\n", "got the number 16.0", "3:26 encoder.output_stride"),
    Case("int-for-string", BASE + "name: 5\n", "valid string", "3:7 name"),
    Case("list-for-int", BASE + "head: {classes: [5]}\n", "got a list", "3:17 head.classes"),
    Case("mapping-for-list", "specseg: 1\ndecoder: {architecture: unet, channels: {a: 1}}\n", "a mapping", "2:41 decoder.channels"),
    Case("null-for-int", BASE + "head: {classes: null}\n", "got null", "3:17 head.classes"),
    Case("5000-digits", BASE + "head: {classes: " + "9" * 5000 + "}\n", "integer with 5000 digits is too large", "3:17 head.classes"),
    Case("5000-hex-digits", BASE + "name: 0x" + "f" * 5000 + "\n", "integer with 5000 digits is too large", "3:7 name"),
    Case("20000-octal-digits", BASE + "metadata: {big: 0o" + "7" * 20000 + "}\n", "integer with 20000 digits is too large", "3:17 metadata.big"),
    Case("4000-digits-for-string", BASE + "name: " + "9" * 4000 + "\n", "got the number 99999999999999999999... (4000 digits)", "3:7 name"),
    Case("4000-digits-for-int", BASE + "head: {classes: " + "9" * 4000 + "}\n", "less than or equal to 100000", "3:17 head.classes"),
    Case("huge-float", BASE + "aux_params: {classes: 2, dropout: 1e999}\n", "finite number", "3:35 aux_params.dropout"),
    Case("negative-classes", BASE + "head: {classes: -1}\n", "greater than or equal to 1", "3:17 head.classes"),
    Case("zero-channel", "specseg: 1\ndecoder: {architecture: unet, channels: [256, 0, 64, 32, 16]}\n", "greater than or equal to 1", "2:47 decoder.channels[1]"),
    Case("zero-in-channels", BASE + "encoder: {in_channels: 0}\n", "greater than or equal to 1", "3:24 encoder.in_channels"),
    Case("negative-seed", BASE + "seed: -1\n", "greater than or equal to 0", "3:7 seed"),
    Case("empty-channels", "specseg: 1\ndecoder: {architecture: unet, channels: []}\n", "at least 1 item", "2:41 decoder.channels"),
    Case("empty-atrous-rates", "specseg: 1\ndecoder: {architecture: deeplabv3, atrous_rates: []}\n", "needs exactly 3 dilation rates", "2:50 decoder.atrous_rates"),
    Case("depth-million", BASE + "encoder: {depth: 1000000}\n", "less than or equal to 5", "3:18 encoder.depth"),
    Case("channels-length", "specseg: 1\nencoder: {depth: 3}\ndecoder: {architecture: unet, channels: [8, 8]}\n", "has 2 entries but encoder.depth is 3"),
    Case("huge-string-for-int", BASE + "head: {classes: '" + "x" * 500_000 + "'}\n", "... (500000 characters)", "3:17 head.classes"),
    Case("huge-name", BASE + "name: " + "x" * 500_000 + "\n", "at most 200 characters", "3:7 name"),
    Case("target-key", BASE + "encoder: {_target_: os.system}\n", "unknown key '_target_'", "3:11 encoder._target_"),
    Case("version-string", 'specseg: "1"\ndecoder: {architecture: unet}\n', "unsupported spec format version '1'", "1:10 specseg"),
    Case("version-missing", "decoder: {architecture: unet}\n", "missing the format version"),
    Case("top-level-list", "- specseg: 1\n- decoder: {architecture: unet}\n", "top level of a spec must be a mapping, found a list", "1:1 <root>"),
    Case("top-level-string", "specseg\n", "found the string 'specseg'", "1:1 <root>"),
    Case("top-level-null", "---\n...\n", "found null"),
    Case("big-flow-list", BASE + "metadata: [" + "1, " * ((MAX_FILE_BYTES - 100) // 3) + "1]\n", f"more than {MAX_NODES} nodes"),
]

FILE_CASES = [
    Case("empty-file", b"", "the spec file is empty", "1:1 <root>"),
    Case("only-comments", b"# nothing here\n\n# at all\n", "the spec file is empty", "1:1 <root>"),
    Case("empty-json", b"  \n", "the spec file is empty", "1:1 <root>", suffix=".json"),
    Case("non-utf8", BASE.encode() + b"name: caf\xe9\n", "invalid UTF-8 byte 0xe9", "3:10 <root>"),
    Case("latin1-json", b'{"specseg": 1, "name": "caf\xe9"}', "invalid UTF-8 byte 0xe9", "1:28 <root>", suffix=".json"),
    Case("utf8-bom", b"\xef\xbb\xbf" + BASE.encode(), "byte-order mark", "1:1 <root>"),
    Case("utf16-bom", "\ufeff".encode("utf-16-le") + BASE.encode("utf-16-le"), "byte-order mark", "1:1 <root>"),
    Case("nul-bytes", BASE.encode() + b"name: a\x00b\n", "NUL characters", "1:1 <root>"),
    Case("over-1-MiB", b"#" * (MAX_FILE_BYTES + 1), f"at most {MAX_FILE_BYTES} bytes", "1:1 <root>"),
    Case("two-documents", (BASE + "---\n" + BASE).encode(), "exactly one YAML document", "3:1 <root>"),
    Case("yaml-syntax", b"specseg: 1\ndecoder: {architecture: unet\n", "YAML syntax error", "3:1 <root>"),
    Case("json-nan", b'{"specseg": 1, "decoder": {"architecture": "unet"}, "seed": NaN}', "expected a value", "1:61 <root>", suffix=".json"),
    Case("json-huge-int", ('{"specseg": 1, "seed": ' + "9" * 5000 + "}").encode(), "too large", "1:24 <root>", suffix=".json"),
    Case("json-1e999", b'{"specseg": 1, "aux_params": {"classes": 2, "dropout": 1e999}}', "out of range", "1:56 <root>", suffix=".json"),
    Case("json-whole-float", b'{"specseg": 1, "decoder": {"architecture": "unet"}, "head": {"classes": 5.0}}', "got the number 5.0", "1:73 head.classes", suffix=".json"),
    Case("lone-surrogate-yaml", BASE.encode() + b'name: "caf\\udce9"\n', "lone surrogate \\udce9", "3:7 name"),
    Case("lone-surrogate-json-key", b'{"specseg": 1, "metadata": {"\\ud800": 1}}', "lone surrogate \\ud800", "1:29 <root>", suffix=".json"),
    Case("json-top-level-array", b'[{"specseg": 1}]', "top level of a spec must be a mapping", "1:1 <root>", suffix=".json"),
    Case("directory", _special("directory"), "is a directory", "1:1 <root>"),
    Case("fifo", _special("fifo"), "not a regular file", "1:1 <root>"),
    Case("device", _special("device"), "not a regular file", "1:1 <root>"),
    Case("symlink-loop", _special("symlink-loop"), "cannot read file", "1:1 <root>"),
    Case("unreadable", _special("unreadable"), "permission denied", "1:1 <root>"),
    Case("missing", _special("missing"), "no such file", "1:1 <root>"),
    Case("wrong-suffix", _special("wrong-suffix"), "unsupported spec file type '.txt'", "1:1 <root>"),
]

GROUPS = {
    "tags": TAG_CASES,
    "aliases": ALIAS_CASES,
    "nesting": NESTING_CASES,
    "duplicates": DUPLICATE_CASES,
    "yaml11": YAML11_CASES,
    "types": TYPE_CASES,
    "files": FILE_CASES,
}
ALL_CASES = [pytest.param(case, id=f"{group}/{case.id}") for group, cases in GROUPS.items() for case in cases]
#: Cases that need root not to be root (chmod 000 does not stop root from reading).
NEEDS_NON_ROOT = {"unreadable"}

#: What JSON Schema cannot express: the schema accepts these, Pydantic refuses them.
_WHOLE_FLOAT = "JSON Schema counts 5.0 as an integer (draft 2020-12: 'integer' is any number with a zero fraction)"
SCHEMA_CANNOT_EXPRESS = {
    "whole-float-for-int": _WHOLE_FLOAT,
    "json-whole-float": _WHOLE_FLOAT,
    "exponent-for-int": _WHOLE_FLOAT + "; YAML 1.2 reads 1e3 as the float 1000.0",
    "whole-float-for-choice": _WHOLE_FLOAT + " (enum [8, 16, 32] holds 16.0)",
    "nan": "JSON Schema has no NaN: jsonschema's range checks are false for NaN, so it passes",
    "nan-in-norm": "JSON Schema has no NaN: jsonschema's range checks are false for NaN, so it passes",
}


def _skip_if_root(case: Case) -> None:
    if case.id in NEEDS_NON_ROOT and os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not keep root from reading a file")


#: Installed plugin distributions (dist-info folders on the path): mostly broken at import, one good.
#: name -> (entry points {group: {entry point: value}}, {module file: source})
_GOOD_ENCODER = """
import torch
from specseg import EncoderMixin

class GoodEncoder(torch.nn.Module, EncoderMixin):
    def __init__(self, depth=5, **kwargs):
        super().__init__()
        self._depth, self._in_channels = depth, 3
        self._out_channels = [3, 4, 4, 8, 8, 8][: depth + 1]
        chans = self._out_channels
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1) for i in range(depth))

    def forward(self, x):
        out = [x]
        for conv in self.convs:
            x = conv(x)
            out.append(x)
        return out
"""
PLUGINS: dict[str, tuple[dict[str, dict[str, str]], dict[str, str]]] = {
    "hostile-import-error": ({"specseg.encoders": {"imp_err": "hostile_imp:Encoder"}}, {"hostile_imp.py": "import specseg_no_such_dependency\n"}),
    "hostile-syntax-error": ({"specseg.encoders": {"syn_err": "hostile_syn:Encoder"}}, {"hostile_syn.py": "def broken(:\n    pass\n"}),
    "hostile-runtime-error": ({"specseg.encoders": {"rt_err": "hostile_rt:Encoder"}}, {"hostile_rt.py": "raise RuntimeError('boom at import')\n"}),
    "hostile-sys-exit": ({"specseg.encoders": {"exit_err": "hostile_exit:Encoder"}}, {"hostile_exit.py": "import sys\nsys.exit(0)\n"}),
    "hostile-params-error": (
        {"specseg.encoders": {"params_err": "hostile_params:Encoder"}, "specseg.encoder_params": {"params_err": "hostile_params_model:Params"}},
        {"hostile_params.py": "raise AssertionError('never imported at validate time')\n", "hostile_params_model.py": "raise ValueError('bad params module')\n"},
    ),
    "hostile-good": ({"specseg.encoders": {"good_net": "hostile_good:GoodEncoder"}}, {"hostile_good.py": _GOOD_ENCODER}),
}


def make_plugin_site(folder: Path) -> None:
    folder.mkdir()
    for dist, (groups, modules) in PLUGINS.items():
        info = folder / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(
            "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in groups.items())
        )
        for name, source in modules.items():
            (folder / name).write_text(source)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder for case files, one for markers, and an importable ``evilmod`` that leaves markers."""
    root = tmp_path_factory.mktemp("hostile")
    markers = root / "markers"
    markers.mkdir()
    modules = root / "modules"
    modules.mkdir()
    (modules / "evilmod.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(os.environ['SPECSEG_TEST_MARKERS'], 'evilmod-imported').touch()\n"
        "def payload(*args, **kwargs):\n"
        "    pathlib.Path(os.environ['SPECSEG_TEST_MARKERS'], 'evilmod-called').touch()\n"
        "class Evil:\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        payload()\n"
    )
    plugins = root / "plugins"
    make_plugin_site(plugins)
    return {"root": root, "markers": markers, "modules": modules, "plugins": plugins}


def _child_env(sandbox: dict[str, Path]) -> dict[str, str]:
    """Children see ``evilmod`` and the broken plugins of :data:`PLUGINS` (every command must survive them)."""
    env = dict(os.environ)
    paths = [str(sandbox["modules"]), str(sandbox["plugins"]), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(paths).rstrip(os.pathsep)
    env["SPECSEG_TEST_MARKERS"] = str(sandbox["markers"])
    env.pop("SPECSEG_DISABLE_PLUGINS", None)
    return env


def materialize(case: Case, folder: Path, markers: Path) -> Path:
    """Write a case's file into ``folder`` (its own subfolder) and return its path."""
    folder = folder / case.id
    folder.mkdir(parents=True, exist_ok=True)
    if callable(case.content):
        return case.content(folder)
    path = folder / f"spec{case.suffix}"
    marker = markers / f"{case.id}.marker"
    if isinstance(case.content, str):
        text = case.content.replace("{MARKER}", str(marker)).replace("{MARKERS}", str(markers))
        path.write_bytes(text.encode("utf-8"))
    else:
        path.write_bytes(case.content)
    return path


@pytest.fixture
def case_file(request: pytest.FixtureRequest, sandbox: dict[str, Path], tmp_path: Path) -> Iterator[tuple[Case, Path]]:
    case: Case = request.param
    _skip_if_root(case)
    path = materialize(case, tmp_path, sandbox["markers"])
    yield case, path
    if case.id in NEEDS_NON_ROOT:
        path.chmod(0o644)  # let pytest clean up


# --------------------------------------------------------------------------------------------
# Running the command line under limits
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    cpu_s: float
    wall_s: float
    maxrss_kib: int
    base_rss_kib: int = 0


def run_limited(argv: list[str], env: dict[str, str], as_limit: int, cwd: Path = ROOT) -> Result:
    """Run ``argv`` as a subprocess under an address-space limit; measure its CPU time and peak RSS."""

    def limit() -> None:  # runs in the child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd, preexec_fn=limit)
        killer = threading.Timer(WALL_LIMIT_S, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return Result(
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            usage.ru_utime + usage.ru_stime,
            wall,
            usage.ru_maxrss,
        )


#: A warmed interpreter that forks once per request and runs the CLI's ``main`` in the child.
_FORK_SERVER = r"""
import json, os, resource, signal, sys, time, traceback
PRELOAD
from specseg.cli.main import main

PAGE = os.sysconf("SC_PAGE_SIZE")

def statm():
    with open("/proc/self/statm") as fh:
        size, resident = (int(x) for x in fh.read().split()[:2])
    return size * PAGE, resident * PAGE // 1024

for line in sys.stdin:
    req = json.loads(line)
    vsize, rss_kib = statm()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 98
        try:
            signal.alarm(req["wall"])
            limit = vsize + req["headroom"]
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            os.chdir(req["cwd"])
            for fd, name in ((1, req["stdout"]), (2, req["stderr"])):
                os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            try:
                code = main(req["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 99
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    print(json.dumps({
        "rc": os.waitstatus_to_exitcode(status),
        "cpu": usage.ru_utime + usage.ru_stime,
        "wall": time.monotonic() - start,
        "maxrss": usage.ru_maxrss,
        "base_rss": rss_kib,
    }), flush=True)
"""

#: What each command imports before it reads a spec (``build`` imports torch first).
PRELOADS = {
    "validate": "import specseg.loader, specseg.spec.validation  # noqa: F401",
    # torch first, as `specseg build` does; timm and the weight readers too, which every build imports.
    "build": "import torch, timm, safetensors.torch, specseg.builder, specseg.dryrun, specseg.weights  # noqa: F401",
}


class ForkServer:
    """Runs ``specseg`` command lines, each in a fork of one warmed interpreter."""

    def __init__(self, env: dict[str, str], scratch: Path, preload: str):
        self.scratch = scratch
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FORK_SERVER.replace("PRELOAD", preload)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            text=True,
        )
        self.lock = threading.Lock()

    def run(self, argv: list[str], headroom: int = AS_HEADROOM, cwd: Path = ROOT) -> Result:
        out, err = self.scratch / "stdout", self.scratch / "stderr"
        request = {"argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err), "wall": WALL_LIMIT_S, "headroom": headroom}
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
            assert reply, "the fork server died"
            data = json.loads(reply)
            return Result(
                data["rc"],
                out.read_text(encoding="utf-8", errors="replace"),
                err.read_text(encoding="utf-8", errors="replace"),
                data["cpu"],
                data["wall"],
                data["maxrss"],
                data["base_rss"],
            )

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def cli(sandbox: dict[str, Path]) -> Iterator[dict[str, ForkServer]]:
    """``cli["validate"]`` and ``cli["build"]``: fork servers for the two commands."""
    servers = {}
    for command, preload in PRELOADS.items():
        scratch = sandbox["root"] / f"fork-{command}"
        scratch.mkdir()
        servers[command] = ForkServer(_child_env(sandbox), scratch, preload)
    yield servers
    for server in servers.values():
        server.close()


def run_command(cli: dict[str, ForkServer], command: str, *args: str, cwd: Path = ROOT, options: tuple[str, ...] = ()) -> Result:
    """``specseg [OPTIONS] COMMAND ARGS`` in a fork of the command's warmed interpreter."""
    return cli[command].run([*options, command, *args], cwd=cwd)


def assert_located_failure(result: Result, path: Path, case: Case | None = None, what: str = "") -> list[re.Match[str]]:
    """Exit 1; every stderr line a located issue in ``path``; no traceback; the expected issue present."""
    context = f"{what}\nrc={result.rc}\nstdout:\n{result.stdout[:3000]}\nstderr:\n{result.stderr[:3000]}"
    assert result.rc == 1, context
    assert "Traceback" not in result.stderr + result.stdout, context
    lines = result.stderr.splitlines()
    assert lines, context
    matches = []
    for line in lines:
        match = ISSUE_LINE.match(line)
        assert match is not None and match["file"] == str(path), f"not a located issue line: {line[:300]!r}\n{context}"
        matches.append(match)
    if case is not None:
        hits = [m for m in matches if case.fragment in m["message"]]
        assert hits, f"no issue mentions {case.fragment!r}\n{context}"
        if case.where is not None:
            position, spec_path = case.where.split(" ", 1)
            assert any(f"{m['line']}:{m['col']}" == position and m["path"] == spec_path for m in hits), (
                f"expected the issue at {case.where}\n{context}"
            )
    return matches


def assert_no_payload_ran(sandbox: dict[str, Path]) -> None:
    left = sorted(p.name for p in sandbox["markers"].iterdir())
    assert left == [], f"a payload ran: {left}"


# --------------------------------------------------------------------------------------------
# 1. The corpus through the command line
# --------------------------------------------------------------------------------------------


def assert_bounded(result: Result) -> None:
    assert result.cpu_s < CPU_LIMIT_S, f"took {result.cpu_s:.2f} s of CPU"
    growth = result.maxrss_kib - result.base_rss_kib
    assert growth < RSS_GROWTH_KIB, f"RSS grew by {growth // 1024} MiB"


@pytest.mark.parametrize("command", ["validate", "build"])
@pytest.mark.parametrize("case_file", ALL_CASES, indirect=True)
def test_cli_refuses_hostile_file(command: str, case_file: tuple[Case, Path], sandbox: dict[str, Path], cli: dict[str, ForkServer]) -> None:
    case, path = case_file
    result = run_command(cli, command, str(path))
    assert_located_failure(result, path, case, f"specseg {command}")
    assert result.stdout == ""
    assert_bounded(result)
    if case in ALIAS_CASES and command == "validate":
        # Bombs and cycles are refused well under a second. Only the validate run measures that:
        # a build run is forked from a process holding torch, and its copy-on-write page faults
        # alone cost a good part of a second on a loaded machine (the loader itself is the same code).
        assert result.cpu_s < 1.0, f"took {result.cpu_s:.2f} s of CPU"
    assert_no_payload_ran(sandbox)


@pytest.mark.parametrize("case_id", ["python-object-apply", "python-module", "bomb-merge-keys", "deep-alias-chain", "non-utf8", "fifo"])
def test_real_subprocesses_report_the_same(case_id: str, sandbox: dict[str, Path], cli: dict[str, ForkServer], tmp_path: Path) -> None:
    """Fresh ``python -m specseg validate|build`` processes report exactly what the forked runs report."""
    case = next(c for cases in GROUPS.values() for c in cases if c.id == case_id)
    path = materialize(case, tmp_path, sandbox["markers"])
    env = _child_env(sandbox)
    validated = run_limited([sys.executable, "-m", "specseg", "validate", str(path)], env, VALIDATE_AS_LIMIT)
    assert_located_failure(validated, path, case, "python -m specseg validate")
    assert validated.cpu_s < CPU_LIMIT_S
    if case_id in ("python-object-apply", "bomb-merge-keys"):  # torch's import alone costs seconds: two are enough
        built = run_limited([sys.executable, "-m", "specseg", "build", str(path)], env, resource.RLIM_INFINITY)
        assert built.stderr == validated.stderr and built.rc == 1
    assert validated.stderr == run_command(cli, "validate", str(path)).stderr
    assert_no_payload_ran(sandbox)


# --------------------------------------------------------------------------------------------
# In-process: the loader constructs nothing and never touches libyaml
# --------------------------------------------------------------------------------------------

_AUDIT: dict[str, Any] = {"active": False, "events": []}
_WATCHED_EVENTS = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "exec", "compile", "import", "ctypes.dlopen"}


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    if _AUDIT["active"] and event in _WATCHED_EVENTS:
        _AUDIT["events"].append((event, repr(args)[:200]))


sys.addaudithook(_audit_hook)  # audit hooks cannot be removed; this one records only while active


class _NoCLoader:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the spec reader must never use libyaml's C loader")


@pytest.fixture(scope="module")
def warmed_loader() -> None:
    """Import everything loading and validating a spec imports lazily, so that the audit sees only the case."""
    specseg.load_spec(
        "specseg: 1\nname: x\nmetadata: {a: [1, 2.5, null, true]}\nencoder: {name: resnet18, weights: null, params: {}}\n"
        "decoder: {architecture: unet, channels: [8, 8, 8, 8, 8], norm: {type: groupnorm, num_groups: 2}}\n"
        "head: {classes: 2}\naux_params: {classes: 2}\nloss: {name: dice, mode: multiclass}\n"
    )
    for text in (
        "specseg: 1\ndecoder: {architecture: unet, norm: nope, channels: [1]}\nhead: {classes: x, clases: 1}\nencoder: {name: nope}\n",
        "specseg: 1\ndecoder: {architecture: nope}\naux_params: {classes: 2, dropout: yes}\n",
        "a: !!python/name:x ''",
    ):
        with pytest.raises(SpecError):
            specseg.load_spec(text)


@pytest.mark.parametrize("libyaml", ["present", "absent"])
@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id) for c in TAG_CASES + ALIAS_CASES + YAML11_CASES[:6] + DUPLICATE_CASES if isinstance(c.content, str) and c.suffix == ".yaml"],
)
def test_loader_imports_and_calls_nothing(
    case: Case, libyaml: str, monkeypatch: pytest.MonkeyPatch, sandbox: dict[str, Path], warmed_loader: None
) -> None:
    """No import, no call, no exec while reading hostile YAML, with or without libyaml installed."""
    import yaml

    for name in ("CSafeLoader", "CLoader", "CFullLoader", "CUnsafeLoader", "CBaseLoader", "CParser", "CEmitter", "CDumper"):
        if libyaml == "present":
            monkeypatch.setattr(yaml, name, _NoCLoader, raising=False)
        else:
            monkeypatch.delattr(yaml, name, raising=False)
    monkeypatch.setattr(yaml, "__with_libyaml__", libyaml == "present")
    monkeypatch.syspath_prepend(str(sandbox["modules"]))
    monkeypatch.setenv("SPECSEG_TEST_MARKERS", str(sandbox["markers"]))
    text = case.content.replace("{MARKER}", str(sandbox["markers"] / "in-process")).replace("{MARKERS}", str(sandbox["markers"]))
    _AUDIT["events"] = []
    _AUDIT["active"] = True
    try:
        with pytest.raises(SpecError) as info:
            specseg.load_spec(text)
    finally:
        _AUDIT["active"] = False
    assert any(case.fragment in issue.message for issue in info.value.issues)
    assert _AUDIT["events"] == []
    assert "evilmod" not in sys.modules
    assert_no_payload_ran(sandbox)


# --------------------------------------------------------------------------------------------
# 2. JSON Schema and Pydantic agree on every file that parses
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    import jsonschema

    from specseg.schema import json_schema

    return jsonschema.Draft202012Validator(json_schema())


@pytest.mark.parametrize("case_file", ALL_CASES, indirect=True)
def test_jsonschema_and_pydantic_agree(case_file: tuple[Case, Path], schema_validator: Any) -> None:
    case, path = case_file
    try:
        doc, _ = load_document(path)
    except SpecError:
        assert case.id not in SCHEMA_CANNOT_EXPRESS
        return  # refused while reading (syntax, size, tags, duplicates, budget): nothing to compare
    schema_ok = schema_validator.is_valid(doc.data)
    with pytest.raises(SpecError):
        specseg.load_spec(path)
    if case.id in SCHEMA_CANNOT_EXPRESS:
        assert schema_ok, f"listed as inexpressible in JSON Schema, but the schema refuses it: {SCHEMA_CANNOT_EXPRESS[case.id]}"
    else:
        assert not schema_ok, "Pydantic refuses this spec but the JSON Schema accepts it"


def test_inexpressible_list_names_real_cases() -> None:
    ids = {c.id for cases in GROUPS.values() for c in cases}
    assert set(SCHEMA_CANNOT_EXPRESS) <= ids


# --------------------------------------------------------------------------------------------
# 3. No code from specs: encoder names are names, never import paths
# --------------------------------------------------------------------------------------------

CODE_TRICKS = {
    "os-colon-system": "os:system",
    "builtins-eval": "builtins.eval",
    "dunder-import": "__import__",
    "subprocess-popen": "subprocess.Popen",
    "torch-module-path": "torch.nn.Conv2d",
    "smp-module-path": "segmentation_models_pytorch.encoders.resnet.ResNetEncoder",
    "specseg-import-string": "specseg.encoders.resnet:ResNetEncoder",
    "timm-path-traversal": "tu-../../etc/passwd",
    "timm-slash": "tu-resnet18/../x",
    "timm-colon": "tu-os:system",
    "timm-uppercase-module": "tu-torch.nn.Conv2d",
    "timm-trailing-newline": "tu-resnet18\n",
    "absolute-path": "/usr/lib/python3/os.py",
    "lambda": "lambda: __import__('os').system('id')",
    "empty": "",
    "resnet-typo": "resnet3",
}


@pytest.fixture(scope="module")
def trick_reports(tmp_path_factory: pytest.TempPathFactory, sandbox: dict[str, Path]) -> dict[str, Any]:
    """``specseg validate --json`` on one file per trick, in one process that must not import torch."""
    folder = tmp_path_factory.mktemp("tricks")
    files = []
    for key, name in CODE_TRICKS.items():
        path = folder / f"{key}.json"
        path.write_text(json.dumps({"specseg": 1, "encoder": {"name": name}, "decoder": {"architecture": "unet"}}))
        files.append(str(path))
    extra = {
        "target-key": BASE + "encoder:\n  name: resnet18\n  _target_: os.system\n",
        "target-in-decoder": "specseg: 1\ndecoder: {architecture: unet, _target_: builtins.eval}\n",
        "python-name-tag": BASE + "encoder:\n  name: !!python/name:os.system\n",
    }
    for key, text in extra.items():
        path = folder / f"{key}.yaml"
        path.write_text(text)
        files.append(str(path))
    code = (
        "import json, sys\n"
        "from specseg.cli.main import main\n"
        f"rc = main(['validate', '--json', *{files!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'evilmod'))\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_child_env(sandbox), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    report = json.loads("\n".join(lines[:-1]))
    tail = json.loads(lines[-1])
    return {"files": {Path(f["file"]).stem: f for f in report["files"]}, **tail}


def test_tricks_are_checked_without_importing_torch(trick_reports: dict[str, Any]) -> None:
    assert trick_reports["rc"] == 1
    assert trick_reports["heavy"] == []


@pytest.mark.parametrize("key", list(CODE_TRICKS))
def test_code_tricks_are_unknown_encoders(key: str, trick_reports: dict[str, Any], sandbox: dict[str, Path]) -> None:
    entry = trick_reports["files"][key]
    assert entry["valid"] is False
    (issue,) = entry["issues"]
    assert issue["path"] == "encoder.name" and (issue["line"], issue["column"]) == (1, 36)
    message = issue["message"]
    assert message.startswith(f"unknown encoder {CODE_TRICKS[key]!r}")
    assert "specseg list encoders" in message and "tu-<timm model name>" in message
    assert_no_payload_ran(sandbox)


def test_encoder_typo_gets_a_suggestion(trick_reports: dict[str, Any]) -> None:
    (issue,) = trick_reports["files"]["resnet-typo"]["issues"]
    assert "did you mean 'resnet34'" in issue["message"] or "did you mean 'resnet18'" in issue["message"]


@pytest.mark.parametrize(
    "key, path, fragment",
    [
        ("target-key", "encoder._target_", "unknown key '_target_'. Valid keys here: name, weights"),
        ("target-in-decoder", "decoder._target_", "unknown key '_target_'. Valid keys here: architecture, channels"),
        ("python-name-tag", "encoder.name", "tag !!python/name:os.system is not allowed"),
    ],
)
def test_target_keys_and_tags_are_refused(key: str, path: str, fragment: str, trick_reports: dict[str, Any]) -> None:
    issues = trick_reports["files"][key]["issues"]
    assert any(i["path"] == path and fragment in i["message"] for i in issues), issues


def test_code_tricks_in_params_are_plain_data() -> None:
    """``encoder.params`` values are JSON data handed to the encoder as keywords: a string stays a string."""
    trick = {"_target_": "os.system"}
    # A built-in encoder takes no such param: refused by validate.
    with pytest.raises(SpecError) as info:
        specseg.load_spec({"specseg": 1, "encoder": {"name": "resnet18", "params": trick}, "decoder": {"architecture": "unet"}})
    (issue,) = info.value.issues
    assert format_path(issue.path) == "encoder.params._target_"
    # A timm model's keywords are timm's to judge: the string reaches timm as a string, which refuses it.
    spec = specseg.load_spec({"specseg": 1, "encoder": {"name": "tu-resnet18", "params": trick}, "decoder": {"architecture": "unet"}})
    assert spec.encoder.params == trick
    with pytest.raises(SpecError) as info:
        specseg.build(spec)
    (issue,) = info.value.issues
    assert format_path(issue.path) == "encoder.params" and "_target_" in issue.message


# --------------------------------------------------------------------------------------------
# 4. Weight files named by a spec's top-level ``weights:``
# --------------------------------------------------------------------------------------------

#: A model small enough to save and load in every case (timm's 'test_resnet', 80k parameters).
TINY = "specseg: 1\nencoder: {name: tu-test_resnet, depth: 3}\ndecoder: {architecture: unet, channels: [16, 8, 8]}\n"


class _Payload:
    """Pickles as ``os.system('touch MARKER')``: an unsafe loader would run it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, Any]:
    """The state dict of :data:`TINY` (seeded): what every weight file below starts from."""
    model = specseg.build(TINY + "seed: 7\n")
    return {k: v.clone() for k, v in model.state_dict().items()}


def _state(tiny_state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.clone() for k, v in tiny_state.items()}


def _retyped(state: dict[str, Any], dtype: Any) -> dict[str, Any]:
    first = next(k for k, v in state.items() if v.is_floating_point())
    return state | {first: state[first].to(dtype)}


def _write_weights(kind: str, path: Path, state: dict[str, Any], marker: Path) -> None:
    import torch
    from safetensors.torch import save_file

    floating = [k for k, v in state.items() if v.is_floating_point()]
    if kind == "payload-zip":
        torch.save(state | {"x": _Payload(marker)}, path)
    elif kind == "payload-legacy":
        torch.save(state | {"x": _Payload(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "payload-raw-pickle":
        path.write_bytes(pickle.dumps({"state_dict": state, "x": _Payload(marker)}, protocol=2))
    elif kind in ("truncated-safetensors", "header-longer-than-file"):
        save_file(state, str(path))
        data = path.read_bytes()
        (header_len,) = struct.unpack("<Q", data[:8])
        path.write_bytes(data[:-16] if kind == "truncated-safetensors" else data[: 8 + header_len // 2])
    elif kind == "header-length-2**62":
        path.write_bytes(struct.pack("<Q", 1 << 62) + b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}')
    elif kind == "truncated-pt":
        torch.save(state, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not-weights":
        path.write_text("specseg: 1\n")
    elif kind == "not-a-state-dict":
        torch.save({"epoch": 3, "lr": 0.1}, path)
    elif kind == "missing-key":
        save_file({k: v for k, v in state.items() if k != floating[-1]}, str(path))
    elif kind == "unexpected-key":
        save_file(state | {"extra.weight": torch.zeros(2)}, str(path))
    elif kind == "shape-mismatch":
        save_file(state | {floating[-1]: torch.zeros(3, 3)}, str(path))
    elif kind == "dtype-complex":
        torch.save(_retyped(state, torch.complex64), path)
    elif kind == "dtype-int":
        save_file(_retyped(state, torch.int32), str(path))
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # pragma: no cover
        raise AssertionError(kind)


WEIGHT_CASES = [
    ("payload-zip", "w.pt", "refused: the checkpoint contains Python objects"),
    ("payload-legacy", "w.safetensors", "refused: the checkpoint contains Python objects"),
    ("payload-raw-pickle", "w.bin", "refused"),
    ("truncated-safetensors", "w.safetensors", "truncated"),
    ("header-longer-than-file", "w.safetensors", "the file is truncated"),
    ("header-length-2**62", "w.safetensors", "truncated"),
    ("truncated-pt", "w.pt", "truncated or corrupt"),
    ("empty", "w.pt", "the file is empty"),
    ("not-weights", "w.safetensors", "not a weights file"),
    ("not-a-state-dict", "w.pt", "not tensors"),
    ("missing-key", "w.safetensors", "1 missing key(s): "),
    ("unexpected-key", "w.safetensors", "1 unexpected key(s): extra.weight"),
    ("shape-mismatch", "w.safetensors", "1 shape mismatch(es): "),
    ("dtype-complex", "w.pt", "1 dtype mismatch(es): "),
    ("dtype-int", "w.safetensors", "(file int32, network float32)"),
    ("directory", "w.pt", "is a directory"),
    ("fifo", "w.pt", "not a regular file"),
]


@pytest.mark.parametrize("kind, name, fragment", WEIGHT_CASES, ids=[c[0] for c in WEIGHT_CASES])
def test_bad_weight_files_are_located_errors(
    kind: str, name: str, fragment: str, tmp_path: Path, tiny_state: dict[str, Any], cli: dict[str, ForkServer], sandbox: dict[str, Path]
) -> None:
    marker = sandbox["markers"] / f"weights-{kind}"
    _write_weights(kind, tmp_path / name, _state(tiny_state), marker)
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY + f"weights: {name}\n")
    result = run_command(cli, "build", str(spec))
    (issue,) = assert_located_failure(result, spec, what="specseg build")
    assert (issue["line"], issue["col"], issue["path"]) == ("4", "10", "weights")  # the line names the file
    assert fragment in issue["message"]
    assert_bounded(result)
    assert not marker.exists()
    assert_no_payload_ran(sandbox)


@pytest.mark.parametrize("kind", ["payload-zip", "truncated-pt", "not-weights"])
def test_sha256_mismatch_is_refused_before_the_file_is_parsed(
    kind: str, tmp_path: Path, tiny_state: dict[str, Any], cli: dict[str, ForkServer], sandbox: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = sandbox["markers"] / f"sha-{kind}"
    path = tmp_path / "w.pt"
    _write_weights(kind, path, _state(tiny_state), marker)
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY + f"weights:\n  path: w.pt\n  sha256: '{'0' * 64}'\n")
    result = run_command(cli, "build", str(spec))
    (issue,) = assert_located_failure(result, spec, what="specseg build")
    assert (issue["line"], issue["col"], issue["path"]) in {("5", "9", "weights.path"), ("6", "11", "weights.sha256")}
    assert "sha256 mismatch" in issue["message"]
    assert "corrupt" not in issue["message"] and "refused: the checkpoint" not in issue["message"]
    assert not marker.exists()

    # In process: with a wrong hash, nothing that parses the file is ever called.
    import specseg.weights as weights

    def must_not_parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the file was parsed before its sha256 was checked")

    monkeypatch.setattr(weights, "detect_format", must_not_parse)
    monkeypatch.setattr(weights, "_check_safetensors_layout", must_not_parse)
    import torch

    monkeypatch.setattr(torch, "load", must_not_parse)
    with pytest.raises(SpecError, match="sha256 mismatch"):
        specseg.build(spec)


@pytest.mark.parametrize("kind, name", [("torch-zip", "w.safetensors"), ("safetensors", "w.pt"), ("torch-legacy", "w.bin")])
def test_format_comes_from_the_bytes_not_the_name(
    kind: str, name: str, tmp_path: Path, tiny_state: dict[str, Any], cli: dict[str, ForkServer]
) -> None:
    """A checkpoint named .safetensors and a safetensors file named .pt both load, completely."""
    import hashlib

    import torch
    from safetensors.torch import save_file

    state = _state(tiny_state)
    path = tmp_path / name
    if kind == "safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path, _use_new_zipfile_serialization=kind == "torch-zip")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY + f"weights: {{path: {name}, sha256: {sha}}}\n")
    result = run_command(cli, "build", str(spec), "--input-shape", "1,3,32,32", "--json")
    assert result.rc == 0, result.stderr
    model = specseg.build(spec)
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert not any(t.is_meta for t in loaded.values())


def test_float_precisions_convert_and_nothing_is_half_loaded(tmp_path: Path, tiny_state: dict[str, Any]) -> None:
    """float64 -> float32 loads (values kept); a file that fits except for its last tensor loads nothing."""
    import torch
    from safetensors.torch import save_file

    state = _state(tiny_state)
    save_file({k: v.double() if v.is_floating_point() else v for k, v in state.items()}, str(tmp_path / "f64.safetensors"))
    model = specseg.build(TINY + f"weights: {tmp_path / 'f64.safetensors'}\n")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())

    last = list(state)[-1]
    bad = state | {last: torch.zeros(7)}
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(SpecError) as info:
        specseg.build(TINY + f"weights: {tmp_path / 'bad.safetensors'}\n")
    (issue,) = info.value.issues
    assert f"1 shape mismatch(es): {last} (file [7]" in issue.message


# --------------------------------------------------------------------------------------------
# 5. Resources: the memory guard refuses what would not fit, before allocating it
# --------------------------------------------------------------------------------------------

MEMORY_CASES = [
    pytest.param(
        "specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: unet, channels: [65536, 65536, 65536, 65536, 65536]}\nhead: {classes: 100000}\n",
        "3:41 decoder.channels",
        id="classes-100000-huge-channels",
    ),
    pytest.param(
        "specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: unet, channels: [65536, 256, 128, 64, 32]}\n",
        "3:41 decoder.channels",
        id="channels-65536",
    ),
    pytest.param(
        "specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: deeplabv3, channels: 65536}\n",
        "3:46 decoder.channels",
        id="deeplabv3-channels-65536",
    ),
    pytest.param(
        "specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: fpn, pyramid_channels: 65536, segmentation_channels: 65536}\n",
        "3:10 decoder",
        id="fpn-pyramid-65536",
    ),
    pytest.param(
        "specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: unet, channels: [16, 16, 16, 16, 16]}\nhead: {classes: 100000}\n",
        "4:17 head.classes",
        # 14 M parameters only, but the test forward pass would allocate a 1x100000x256x256 mask (26 GB).
        id="classes-100000-forward-pass",
    ),
]


@pytest.mark.parametrize("text, where", MEMORY_CASES)
def test_memory_guard_refuses_huge_models_before_allocating(text: str, where: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text(text)
    assert run_command(cli, "validate", str(spec)).rc == 0  # valid: every size is within its own bounds
    # 1 GiB of address space beyond the warmed interpreter: an attempt to allocate fails fast instead of swapping.
    result = run_command(cli, "build", str(spec))
    (issue,) = assert_located_failure(result, spec, what="specseg build")
    position, path = where.split(" ")
    assert (f"{issue['line']}:{issue['col']}", issue["path"]) == (position, path)
    assert "refusing to build it" in issue["message"] and "--max-memory" in issue["message"]
    assert_bounded(result)


def test_max_memory_flag_lowers_the_limit(tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY)
    result = run_command(cli, "build", str(spec), "--max-memory", "64KiB", "--input-shape", "1,3,32,32")
    (issue,) = assert_located_failure(result, spec, what="specseg build --max-memory")
    assert "more than the limit of 64 KiB" in issue["message"]
    assert run_command(cli, "build", str(spec), "--max-memory", "1MiB", "--input-shape", "1,3,32,32").rc == 0


# --------------------------------------------------------------------------------------------
# 6. Plugins: a broken plugin breaks only its own encoders, with a message naming it
# --------------------------------------------------------------------------------------------

BROKEN_PLUGINS = [
    ("imp_err", "hostile-import-error", "imp_err = hostile_imp:Encoder", "ModuleNotFoundError: No module named 'specseg_no_such_dependency'", "hostile_imp.py"),
    ("syn_err", "hostile-syntax-error", "syn_err = hostile_syn:Encoder", "SyntaxError", "hostile_syn.py"),
    ("rt_err", "hostile-runtime-error", "rt_err = hostile_rt:Encoder", "RuntimeError: boom at import", "hostile_rt.py"),
    ("exit_err", "hostile-sys-exit", "exit_err = hostile_exit:Encoder", "SystemExit: 0", "hostile_exit.py"),
]


def _plugin_spec(folder: Path, encoder: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(f"specseg: 1\nencoder:\n  name: {encoder}\n  depth: 3\ndecoder: {{architecture: unet, channels: [8, 8, 8]}}\n")
    return path


@pytest.mark.parametrize("encoder, dist, entry_point, error, module", BROKEN_PLUGINS, ids=[p[0] for p in BROKEN_PLUGINS])
def test_broken_plugin_is_a_located_error_naming_it(
    encoder: str, dist: str, entry_point: str, error: str, module: str, tmp_path: Path, cli: dict[str, ForkServer]
) -> None:
    spec = _plugin_spec(tmp_path, encoder)
    assert run_command(cli, "validate", str(spec)).rc == 0  # validation reads metadata only: plugin code is not imported
    result = run_command(cli, "build", str(spec), "--input-shape", "1,3,32,32")
    (issue,) = assert_located_failure(result, spec, what="specseg build")
    assert (issue["line"], issue["col"], issue["path"]) == ("3", "9", "encoder.name")
    assert dist in issue["message"] and entry_point in issue["message"] and error in issue["message"]
    debug = run_command(cli, "build", str(spec), "--input-shape", "1,3,32,32", options=("--debug",))
    assert debug.rc == 1
    assert "Traceback (most recent call last)" in debug.stderr and module in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == result.stderr.rstrip()


def test_broken_params_model_is_named_at_validate_time(tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("specseg: 1\nencoder:\n  name: params_err\n  params: {width: 1}\ndecoder: {architecture: unet}\n")
    result = run_command(cli, "validate", str(spec))
    (issue,) = assert_located_failure(result, spec, what="specseg validate")
    assert issue["path"] == "encoder.params"
    for fragment in ("hostile-params-error", "params_err = hostile_params_model:Params", "ValueError: bad params module"):
        assert fragment in issue["message"]


def test_other_encoders_keep_working_next_to_broken_plugins(sandbox: dict[str, Path]) -> None:
    """In one process: the broken plugins fail, the good plugin and the built-in encoders build."""
    code = (
        "import json, specseg\n"
        "from specseg import SpecError\n"
        "out = {}\n"
        "for name in ['imp_err', 'syn_err', 'rt_err', 'exit_err', 'good_net', 'resnet18', 'tu-test_resnet']:\n"
        "    spec = {'specseg': 1, 'encoder': {'name': name, 'depth': 3}, 'decoder': {'architecture': 'unet', 'channels': [8, 8, 8]}}\n"
        "    try:\n"
        "        out[name] = type(specseg.build(spec).encoder).__name__\n"
        "    except SpecError as exc:\n"
        "        out[name] = 'error'\n"
        "print('JSON' + json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_child_env(sandbox), timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.split("JSON", 1)[1])
    assert out == {
        "imp_err": "error",
        "syn_err": "error",
        "rt_err": "error",
        "exit_err": "error",
        "good_net": "GoodEncoder",
        "resnet18": "ResNetEncoder",
        "tu-test_resnet": "TimmUniversalEncoder",
    }


@pytest.mark.parametrize("how", ["flag", "env", "none"])
def test_plugins_can_be_turned_off(how: str, tmp_path: Path, sandbox: dict[str, Path]) -> None:
    spec = _plugin_spec(tmp_path, "good_net")
    env = _child_env(sandbox)
    argv = [sys.executable, "-m", "specseg", *(["--no-plugins"] if how == "flag" else []), "validate", str(spec)]
    if how == "env":
        env["SPECSEG_DISABLE_PLUGINS"] = "1"
    result = run_limited(argv, env, VALIDATE_AS_LIMIT)
    if how == "none":
        assert result.rc == 0, result.stderr
        return
    (issue,) = assert_located_failure(result, spec, what=how)
    assert issue["path"] == "encoder.name" and "unknown encoder 'good_net'" in issue["message"]


def test_plugin_discovery_runs_once_per_process(tmp_path: Path, sandbox: dict[str, Path]) -> None:
    specs = [str(_plugin_spec(tmp_path, name, f"{name}.yaml")) for name in ("good_net", "resnet18", "imp_err", "params_err", "nope")]
    code = (
        "import collections, importlib.metadata as md, json, sys\n"
        "calls = collections.Counter()\n"
        "real = md.entry_points\n"
        "def counting(**kw):\n"
        "    calls[sys._getframe(1).f_globals.get('__name__', '')] += 1\n"
        "    return real(**kw)\n"
        "md.entry_points = counting\n"
        "from specseg.cli.main import main\n"
        f"rc = main(['validate', *{specs!r}])\n"
        "print('JSON' + json.dumps({'rc': rc, 'calls': {k: v for k, v in calls.items() if k.startswith('specseg')}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_child_env(sandbox), timeout=120)
    out = json.loads(result.stdout.split("JSON", 1)[1])
    assert out["rc"] == 1  # params_err and nope are invalid
    assert out["calls"] == {"specseg.encoders.plugins": 1}  # one scan of the installed metadata, for both groups


# --------------------------------------------------------------------------------------------
# 7. Exit codes, and output files: atomic, never overwriting a user's file without --force
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_specseg_logger() -> Iterator[None]:
    """``--debug`` run in-process adds a stderr handler to the ``specseg`` logger: take it away afterwards."""
    import logging

    log = logging.getLogger("specseg")
    handlers, level = list(log.handlers), log.level
    yield
    log.handlers[:] = handlers
    log.setLevel(level)


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from specseg.cli.main import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _boom(args: Any) -> int:
    raise ZeroDivisionError("a bug")


@pytest.mark.parametrize(
    "argv, patch, code, fragment",
    [
        (["validate", "specs/unet-resnet34.yaml"], None, 0, "ok"),
        (["validate", "tests/corpus/invalid/typo-key.yaml"], None, 1, "unknown key"),
        (["validate"], None, 2, "the following arguments are required"),
        (["list", "encoders", "--frobnicate"], None, 2, "unrecognized arguments"),
        (["build", "specs/unet-resnet34.yaml", "--input-shape", "1,3"], None, 2, "four positive integers"),
        (["validate", "specs/unet-resnet34.yaml"], "validate", 3, "internal error: ZeroDivisionError: a bug"),
    ],
    ids=["ok", "invalid", "missing-argument", "unknown-option", "bad-option-value", "internal-error"],
)
def test_exit_codes(argv: list[str], patch: str | None, code: int, fragment: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from specseg.cli import commands

    monkeypatch.chdir(ROOT)
    if patch:
        monkeypatch.setattr(commands, patch, _boom)
    got, out, err = _main(argv, capsys)
    assert got == code, err
    assert fragment in out + err
    assert "Traceback" not in err


def test_internal_error_asks_for_a_report_and_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from specseg.cli import commands

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(commands, "validate", _boom)
    code, _, err = _main(["validate", "specs/unet-resnet34.yaml"], capsys)
    assert code == 3
    assert err.splitlines() == [
        "specseg validate: internal error: ZeroDivisionError: a bug",
        "This is a bug in specseg; please report it with the spec that caused it. Run again with --debug for the traceback.",
    ]
    code, _, err = _main(["--debug", "validate", "specs/unet-resnet34.yaml"], capsys)
    assert code == 3
    assert err.startswith("Traceback (most recent call last):") and "in _boom" in err and "ZeroDivisionError: a bug" in err


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted write leaves the old file whole and no temporary file behind."""
    from specseg import fileio

    target = tmp_path / "out.yaml"
    target.write_text("old\n")

    def interrupted(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fileio.write_text_atomic(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml"]


def test_outputs_never_overwrite_a_users_file_without_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from specseg.schema import schema_text

    monkeypatch.chdir(ROOT)
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}\n')
    spec = "specs/unet-resnet34.yaml"
    for argv in (["schema", "-o", str(mine)], ["fmt", spec, "-o", str(mine)], ["schema", "-o", str(tmp_path)]):
        code, _, err = _main(argv, capsys)
        assert code == 2, err
        assert "use --force to overwrite it" in err or "is a directory" in err
        assert mine.read_text() == '{"my": "notes"}\n'
    # An existing specseg schema is a generated file: refreshed in place without --force.
    schema = tmp_path / "specseg.schema.json"
    schema.write_text(schema_text().replace('"title": "specseg model spec"', '"title": "old"'))
    assert _main(["schema", "-o", str(schema)], capsys)[0] == 0
    assert schema.read_text() == schema_text()
    assert _main(["schema", "-o", str(mine), "--force"], capsys)[0] == 0
    assert mine.read_text() == schema_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json", "specseg.schema.json"]


def test_build_output_is_refused_before_building(tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY)
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"precious")
    result = run_command(cli, "build", str(spec), "-o", str(out))
    assert result.rc == 2 and "--force" in result.stderr
    assert out.read_bytes() == b"precious"
