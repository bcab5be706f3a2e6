"""Hostile input, round two: files, artifacts, weight files, paths and arguments.

Every case runs a real command line (forked from a warmed interpreter, as in
``test_hostile.py``) and must exit 1 or 2 with one-line messages naming the
file or argument, within :data:`WALL_S` seconds and the RSS bound of
``test_hostile.py``; never exit 3, never hang, never run a payload. Kinds:

* bounded work: ``extends`` diamonds (4^12 loads), node budgets across bases,
  symbolic link loops, bases of another format version, ``--set`` nesting;
* the memory guard: activations of the test forward (``head.upsampling``,
  huge ``--input-shape``) and weight files declaring more than the limit
  (a deflate-compressed torch checkpoint, a sparse safetensors file);
* malformed artifacts and weight files (``inspect``, ``build`` with
  ``weights:`` and ``encoder.weights``, ``specseg.load``), FIFOs, OS errors;
* ``import-smp`` with mistyped ``config.json`` values;
* output paths and arguments checked before the build, file modes;
* one line per problem (newlines in values, non-UTF-8 arguments, warnings).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

import specseg
from specseg.artifacts import ArtifactError
from tests.test_hostile import (  # noqa: F401 - fixtures
    ISSUE_LINE,
    RSS_GROWTH_KIB,
    ForkServer,
    Result,
    assert_no_payload_ran,
    cli,
    run_command,
    sandbox,
)

#: Each command on each case finishes within this much CPU time (the issue's bound is 15 s).
WALL_S = 15.0
TINY = "specseg: 1\nencoder: {name: tu-test_resnet, depth: 3}\ndecoder: {architecture: unet, channels: [16, 8, 8]}\n"


def assert_refused(result: Result, names: str, codes: tuple[int, ...] = (1, 2), fragment: str = "") -> list[str]:
    """Exit 1 or 2, bounded, every stderr line one message (a located issue or ``specseg CMD: error:``) naming ``names``."""
    context = f"rc={result.rc}\nstdout:\n{result.stdout[:2000]}\nstderr:\n{result.stderr[:3000]}"
    assert result.rc in codes, context
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, context
    lines = result.stderr.splitlines()
    assert lines, context
    for line in lines:
        assert ISSUE_LINE.match(line) or line.startswith("specseg "), f"not one message per line: {line[:300]!r}\n{context}"
    assert any(names in line for line in lines), f"no message names {names!r}\n{context}"
    if fragment:
        assert any(fragment in line for line in lines), f"no message says {fragment!r}\n{context}"
    # CPU time, not wall time: two cores shared by several jobs stretch wall time; a hang is killed at 60 s.
    assert result.cpu_s < WALL_S, f"took {result.cpu_s:.1f} s of CPU\n{context}"
    growth = result.maxrss_kib - result.base_rss_kib
    assert growth < RSS_GROWTH_KIB, f"RSS grew by {growth // 1024} MiB\n{context}"
    return lines


# --------------------------------------------------------------------------------------------
# 1. Bounded composition
# --------------------------------------------------------------------------------------------


def _diamond(folder: Path) -> Path:
    """Twelve tiny files, each extending the next one four times: 4^12 loads unbounded."""
    for i in range(12):
        (folder / f"d{i}.yaml").write_text(f"extends: [d{i + 1}.yaml, d{i + 1}.yaml, d{i + 1}.yaml, d{i + 1}.yaml]\n")
    (folder / "d12.yaml").write_text("specseg: 1\ndecoder: {architecture: unet}\n")
    return folder / "d0.yaml"


def _wide_bases(folder: Path) -> Path:
    """Two bases of 60,000 nodes each: each fits alone, together they exceed the shared node budget."""
    (folder / "big.yaml").write_text("metadata:\n" + "".join(f"  k{i}: 0\n" for i in range(60_000)))
    (folder / "top.yaml").write_text("specseg: 1\ndecoder: {architecture: unet}\nextends: [big.yaml, big.yaml]\n")
    return folder / "top.yaml"


def _symlink_loop(folder: Path) -> Path:
    (folder / "l1.yaml").symlink_to("l2.yaml")
    (folder / "l2.yaml").symlink_to("l1.yaml")
    (folder / "top.yaml").write_text("specseg: 1\ndecoder: {architecture: unet}\nextends: l1.yaml\n")
    return folder / "top.yaml"


def _other_version(folder: Path) -> Path:
    (folder / "v2.yaml").write_text("specseg: 99\ndecoder: {architecture: unet}\n")
    (folder / "top.yaml").write_text("specseg: 1\nextends: v2.yaml\n")
    return folder / "top.yaml"


def _long_name_base(folder: Path) -> Path:
    (folder / "top.yaml").write_text(f"specseg: 1\ndecoder: {{architecture: unet}}\nextends: {'b' * 300}.yaml\n")
    return folder / "top.yaml"


COMPOSE_CASES = [
    pytest.param(_diamond, "d", "extends loads more than 64 files", id="extends-diamond-4^12"),
    pytest.param(_wide_bases, "big.yaml", "more than 100000 nodes together", id="extends-node-budget"),
    pytest.param(_symlink_loop, "top.yaml", "symbolic link loop", id="extends-symlink-loop"),
    pytest.param(_other_version, "v2.yaml", "must use the same format version", id="extends-base-of-another-version"),
    pytest.param(_long_name_base, "top.yaml", "name too long", id="extends-name-too-long"),
]


@pytest.mark.parametrize("make, names, fragment", COMPOSE_CASES)
@pytest.mark.parametrize("command", ["validate", "build"])
def test_composition_is_bounded(command: str, make: Callable[[Path], Path], names: str, fragment: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = make(tmp_path)
    result = run_command(cli, command, str(spec))
    lines = assert_refused(result, names, (1,), fragment)
    assert all(ISSUE_LINE.match(line) for line in lines)
    if command == "validate":
        assert result.cpu_s < 5.0, f"took {result.cpu_s:.2f} s of CPU"


@pytest.mark.parametrize(
    "override, fragment",
    [
        pytest.param(".".join(["a"] * 70) + "=1", "nesting deeper than 64 levels", id="set-path-70-deep"),
        pytest.param("metadata.x=" + "[" * 64 + "]" * 64, "nesting deeper than 64 levels", id="set-value-deep"),
    ],
)
def test_set_keeps_the_nesting_limit(override: str, fragment: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY)
    result = run_command(cli, "validate", str(spec), "--set", override)
    assert_refused(result, "--set", (1,), fragment)


def test_set_is_bounded_in_count_and_nodes() -> None:
    """Overrides cost time in the spec's size: at most 1,000, and their values share the node budget."""
    import time

    from specseg.errors import SpecError
    from specseg.loader.compose import MAX_OVERRIDES, compose

    start = time.process_time()
    compose(TINY, [f"metadata.k{i}={i}" for i in range(MAX_OVERRIDES)])  # 8,000 took 21 s when quadratic
    assert time.process_time() - start < 5
    with pytest.raises(SpecError, match=f"more than {MAX_OVERRIDES} --set overrides"):
        compose(TINY, [f"metadata.k{i}={i}" for i in range(MAX_OVERRIDES + 1)])
    big = "[" + ",".join(["0"] * 30_000) + "]"
    with pytest.raises(SpecError, match="more than 100000 nodes together") as info:
        compose(TINY, [f"metadata.k{i}={big}" for i in range(4)])
    assert all(len(i.location.file) < 120 for i in info.value.issues if i.location)  # long values are cut in messages


def test_set_within_the_limit_writes_an_artifact_that_loads(tmp_path: Path) -> None:
    """What ``--set`` accepts, an artifact keeps and ``specseg.load`` reads back."""
    deep = "[" * 61 + "]" * 61
    model = specseg.build(TINY, overrides=[f"metadata.x={deep}"])
    path = tmp_path / "m.safetensors"
    specseg.save_artifact(model, path)
    assert specseg.load(path).spec.metadata == model.spec.metadata


# --------------------------------------------------------------------------------------------
# 2. The memory guard: activations and weight files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, args, where",
    [
        pytest.param(TINY + "head: {upsampling: 64, classes: 20}\n", ("--input-shape", "1,3,64,64"), "head.upsampling", id="upsampling-64"),
        pytest.param(TINY, ("--input-shape", "1,3,8192,8192"), "head.classes", id="input-8192x8192"),
    ],
)
def test_guard_bounds_the_test_forward(text: str, args: tuple[str, ...], where: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    result = run_command(cli, "build", str(spec), *args, "--max-memory", "500MB")
    (line,) = assert_refused(result, str(spec), (1,), "for the activations of the forward pass")
    match = ISSUE_LINE.match(line)
    assert match is not None and match["path"] == where


def test_activation_estimate_is_close_to_a_real_forward() -> None:
    """The measured peak is within a factor of two of what the forward holds (the largest maps it keeps)."""
    import torch

    from specseg.activations import peak_activation_bytes
    from specseg.dryrun import meta_model
    from specseg.loader import load_spec

    spec = load_spec(TINY + "head: {upsampling: 4}\n")
    peak = peak_activation_bytes(meta_model(spec), (1, 3, 64, 64))
    mask = 4 * 256 * 256  # the 1-class mask at 4x the input: the forward's largest map
    assert mask < peak < 8 * mask
    model = specseg.build(spec).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 256, 256)


def _zip_bomb(path: Path, megabytes: int = 200) -> None:
    """A torch zip checkpoint whose storage is deflate-compressed: a few hundred KB inflating to ``megabytes``."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(megabytes << 18)}, buffer)
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, source.read(info.filename))


def _sparse_safetensors(path: Path, megabytes: int = 200) -> None:
    """A valid safetensors file declaring ``megabytes`` of float32 data, stored sparse (no disk used)."""
    count = megabytes << 18
    header = json.dumps({"w": {"dtype": "F32", "shape": [count], "data_offsets": [0, 4 * count]}}).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + 4 * count)


@pytest.mark.parametrize("make, name", [(_zip_bomb, "w.pt"), (_sparse_safetensors, "w.safetensors")], ids=["zip-bomb", "sparse-safetensors"])
@pytest.mark.parametrize("field", ["weights", "encoder.weights"])
def test_weight_files_over_the_limit_are_refused_unread(make: Callable[[Path], None], name: str, field: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    make(tmp_path / name)
    spec = tmp_path / "s.yaml"
    if field == "weights":
        spec.write_text(TINY + f"weights: {name}\n")
    else:
        spec.write_text(TINY.replace("depth: 3}", f"depth: 3, weights: {{path: {name}}}}}"))
    result = run_command(cli, "build", str(spec), "--max-memory", "100MB", "--input-shape", "1,3,32,32")
    (line,) = assert_refused(result, name, (1,), "of tensor data, more than the limit")
    assert ISSUE_LINE.match(line)["path"] in (field, f"{field}.path")  # type: ignore[index]


def test_weights_budget_counts_what_is_declared(tmp_path: Path) -> None:
    from specseg.weights import WeightsError, declared_bytes, read_state_dict

    _zip_bomb(tmp_path / "w.pt", 8)
    assert (tmp_path / "w.pt").stat().st_size < 200_000
    assert declared_bytes(tmp_path / "w.pt", "torch-zip") >= 8 << 20
    with pytest.raises(WeightsError, match="declares 8"):
        read_state_dict(tmp_path / "w.pt", max_bytes=4 << 20)
    assert read_state_dict(tmp_path / "w.pt", max_bytes=16 << 20)["w"].numel() == 8 << 18


# --------------------------------------------------------------------------------------------
# 3. Malformed artifacts and weight files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifact_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small valid artifact's bytes."""
    path = tmp_path_factory.mktemp("artifact") / "m.safetensors"
    specseg.save_artifact(specseg.build(TINY), path)
    return path.read_bytes()


def split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """An artifact's header (parsed) and its tensor data."""
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def join(header: dict[str, Any] | bytes, data: bytes) -> bytes:
    """Header + data as a safetensors file (``header`` as JSON, or raw bytes)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _first_tensor(header: dict[str, Any]) -> str:
    return next(k for k in header if k != "__metadata__")


def _with_spec(text: str) -> Callable[[dict[str, Any]], None]:
    """Replace the embedded spec and its hash (so that only the spec itself is wrong)."""
    import hashlib

    def edit(header: dict[str, Any]) -> None:
        header["__metadata__"]["spec"] = text
        header["__metadata__"]["spec_hash"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    return edit


def _set_entry(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(header: dict[str, Any]) -> None:
        header[_first_tensor(header)][key] = value

    return edit


#: id -> (edit of the parsed header, or a function of (header, data) giving the file's bytes; expected fragment)
ARTIFACT_CASES: dict[str, tuple[Callable[..., Any], str]] = {
    "spec-not-json": (_with_spec("{not json"), "embedded spec is not valid JSON"),
    "spec-a-list": (_with_spec("[1, 2]"), "embedded spec is a JSON list"),
    "spec-a-string": (_with_spec('"unet"'), "embedded spec is a JSON str"),
    "spec-nested-100k": (_with_spec('{"a":' * 100_000 + "1" + "}" * 100_000), "nests too deeply"),
    "spec-sections-wrong-type": (_with_spec('{"specseg": 1, "decoder": [1], "encoder": "x"}'), "not valid for this installation"),
    "spec-metadata-70-deep": (_with_spec('{"specseg": 1, "decoder": {"architecture": "unet"}, "metadata": ' + '{"a":' * 70 + "1" + "}" * 71), "nesting deeper than 64"),
    "offsets-strings": (_set_entry("data_offsets", ["0", "4"]), "data_offsets must be two non-negative integers"),
    "offsets-floats": (_set_entry("data_offsets", [0.0, 4.5]), "data_offsets must be two non-negative integers"),
    "offsets-negative": (_set_entry("data_offsets", [-4, 0]), "data_offsets must be two non-negative integers"),
    "offsets-beyond-data": (_set_entry("data_offsets", [0, 10**12]), "do not lie within"),
    "offsets-overlap": (_set_entry("data_offsets", [0, 0]), "needs"),
    "dtype-unknown": (_set_entry("dtype", "F128"), "unknown dtype"),
    "dtype-not-a-string": (_set_entry("dtype", {"x": 1}), "unknown dtype"),
    "shape-huge": (_set_entry("shape", [10**9, 10**9, 10**9]), "needs"),
    "shape-negative": (_set_entry("shape", [-1]), "shape must be"),
    "entry-extra-key": (_set_entry("evil", "x"), "exactly dtype, shape and data_offsets"),
    "metadata-not-strings": (lambda h: h["__metadata__"].update(torch_version=2), "map strings to strings"),
    "header-nested-100k": (lambda h, d: join(b"[" * 100_000 + b"]" * 100_000, d), "nests too deeply"),
    "header-a-list": (lambda h, d: join(b"[]", d), "not a mapping"),
    "header-not-utf8": (lambda h, d: join(b'{"\xff": 1}', d), "not valid JSON"),
    "header-length-huge": (lambda h, d: struct.pack("<Q", 1 << 60) + d[:64], "over the"),
    "trailing-bytes": (lambda h, d: join(h, d + b"\0" * 16), "after the tensor data"),
    "truncated": (lambda h, d: join(h, d[:-3]), "do not lie within"),
    "empty": (lambda h, d: b"", "only 0 bytes"),
}


def _hostile_artifact(case: str, raw: bytes, folder: Path) -> Path:
    header, data = split(raw)
    edit, _ = ARTIFACT_CASES[case]
    path = folder / f"{case}.safetensors"
    if edit.__code__.co_argcount == 2:
        path.write_bytes(edit(header, data))
    else:
        edit(header)
        path.write_bytes(join(header, data))
    return path


@pytest.mark.parametrize("case", list(ARTIFACT_CASES))
def test_load_raises_artifact_error_naming_the_file(case: str, artifact_bytes: bytes, tmp_path: Path) -> None:
    path = _hostile_artifact(case, artifact_bytes, tmp_path)
    fragment = ARTIFACT_CASES[case][1]
    with pytest.raises(ArtifactError, match=str(path).replace("\\", "\\\\")) as info:
        specseg.load(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", [c for c in ARTIFACT_CASES if not c.startswith(("spec-sections", "spec-metadata"))])
def test_inspect_refuses_malformed_artifacts(case: str, artifact_bytes: bytes, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    path = _hostile_artifact(case, artifact_bytes, tmp_path)
    result = cli["validate"].run(["inspect", str(path)])
    assert_refused(result, str(path), (1,), ARTIFACT_CASES[case][1])


@pytest.mark.parametrize("case", ["offsets-strings", "offsets-beyond-data", "dtype-unknown", "shape-huge", "metadata-not-strings", "trailing-bytes"])
def test_malformed_weight_files_are_located(case: str, artifact_bytes: bytes, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    path = _hostile_artifact(case, artifact_bytes, tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY + f"weights: {path.name}\n")
    (line,) = assert_refused(run_command(cli, "build", str(spec)), str(spec), (1,), ARTIFACT_CASES[case][1])
    assert ISSUE_LINE.match(line)["path"] == "weights"  # type: ignore[index]


def _special(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.safetensors"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink-loop":
        path.symlink_to(path.name)
    elif kind == "directory":
        path.mkdir()
    elif kind == "name-too-long":
        path = folder / ("n" * 300 + ".safetensors")
    elif kind == "through-a-file":
        (folder / "plain").write_text("x")
        path = folder / "plain" / "m.safetensors"
    return path


SPECIAL = ["fifo", "symlink-loop", "directory", "name-too-long", "through-a-file"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files_never_hang_inspect_load_or_weights(kind: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    path = _special(kind, tmp_path)
    assert_refused(cli["validate"].run(["inspect", str(path)]), str(path)[:60], (1,))
    with pytest.raises(ArtifactError):
        specseg.load(path)
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY + f"weights: {json.dumps(str(path))}\n")
    (line,) = assert_refused(run_command(cli, "build", str(spec)), str(spec), (1,))
    assert ISSUE_LINE.match(line)["path"] == "weights"  # type: ignore[index]


def test_io_errors_are_named(artifact_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """EIO while reading an artifact or a weights file: exit 1 naming the file, ArtifactError from load."""
    from specseg.cli.main import main

    path = tmp_path / "m.safetensors"
    path.write_bytes(artifact_bytes)
    real_open = os.open

    def failing_open(name: Any, *args: Any, **kwargs: Any) -> int:
        if str(name) == str(path):
            raise OSError(errno.EIO, "Input/output error", str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", failing_open)
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "Input/output error" in err and len(err.splitlines()) == 1
    with pytest.raises(ArtifactError, match="Input/output error"):
        specseg.load(path)
    from specseg.weights import WeightsError, read_state_dict

    with pytest.raises(WeightsError, match="Input/output error"):
        read_state_dict(path)


# --------------------------------------------------------------------------------------------
# 4. import-smp with mistyped config values
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smp_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    smp = pytest.importorskip("segmentation_models_pytorch")
    folder = tmp_path_factory.mktemp("smp") / "model"
    smp.Unet("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8)).save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize(
    "key, value",
    [("aux_params", 5), ("aux_params", [1]), ("_model_class", 5), ("encoder_name", {"a": 1}), ("decoder_channels", "x"), ("weird", 1), ("activation", 5)],
)
def test_import_smp_refuses_mistyped_config_values(key: str, value: Any, smp_folder: Path, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    import shutil

    src = tmp_path / "src"
    shutil.copytree(smp_folder, src)
    config = json.loads((src / "config.json").read_text())
    config[key] = value
    (src / "config.json").write_text(json.dumps(config, indent=2))
    result = cli["build"].run(["import-smp", str(src), "-o", str(tmp_path / "out")])
    lines = assert_refused(result, str(src / "config.json"), (1,))
    assert all(ISSUE_LINE.match(line) for line in lines)
    assert not (tmp_path / "out" / "spec.yaml").exists()


# --------------------------------------------------------------------------------------------
# 5. Paths and arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output, fragment",
    [
        pytest.param("/proc/specseg-test.safetensors", "cannot create files in /proc", id="into-proc"),
        pytest.param("n" * 300 + ".safetensors", "file names may have at most 255", id="name-over-255-bytes"),
        pytest.param("{tmp}/plain/m.safetensors", "is not a folder", id="through-a-file"),
        pytest.param("{tmp}/fifo.safetensors", "not a regular file", id="onto-a-fifo-with-force"),
        pytest.param("{tmp}/dir.safetensors", "is a directory", id="a-directory"),
    ],
)
def test_unwritable_outputs_are_refused_before_the_build(output: str, fragment: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    (tmp_path / "plain").write_text("x")
    os.mkfifo(tmp_path / "fifo.safetensors")
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "dir.safetensors").mkdir()
    (tmp_path / "dir.yaml").mkdir()
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY)
    target = output.format(tmp=tmp_path)
    result = run_command(cli, "build", str(spec), "-o", target, "--force", cwd=tmp_path)
    assert_refused(result, "-o ", (2,), fragment)
    assert result.stdout == ""  # refused before the build: nothing was summarised
    assert_refused(cli["validate"].run(["fmt", str(spec), "-o", target.replace(".safetensors", ".yaml"), "--force"], cwd=tmp_path), "-o ", (2,), fragment)


def test_force_never_replaces_a_device_node(tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    device = tmp_path / "null.safetensors"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY)
    result = run_command(cli, "build", str(spec), "-o", str(device), "--force")
    assert_refused(result, str(device), (2,), "is a device")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


@pytest.mark.parametrize("shape", ["1,3,6²,64", "1,3,٦٤,64", "1,3,64,64,", "1,3,1e3,64", "1,3,99999999999,64"])
def test_input_shape_takes_ascii_integers(shape: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(TINY)
    assert_refused(run_command(cli, "build", str(spec), "--input-shape", shape), "--input-shape", (2,))


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_umask_mode(umask: int, expected: int, tmp_path: Path, smp_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Artifacts, exports, schema -o, fmt -o and import-smp: 0666 less the umask; a replaced file keeps its mode."""
    from specseg.cli.main import main

    spec = tmp_path / "s.yaml"
    spec.write_text(TINY)
    old = os.umask(umask)
    try:
        outputs = {
            "artifact": (["build", str(spec), "-o", str(tmp_path / "m.safetensors"), "--input-shape", "1,3,32,32"], tmp_path / "m.safetensors"),
            "schema": (["schema", "-o", str(tmp_path / "schema.json")], tmp_path / "schema.json"),
            "fmt": (["fmt", str(spec), "-o", str(tmp_path / "f.yaml")], tmp_path / "f.yaml"),
            "import-smp": (["import-smp", str(smp_folder), "-o", str(tmp_path / "imported")], tmp_path / "imported" / "spec.yaml"),
        }
        for what, (argv, path) in outputs.items():
            assert main(argv) == 0, capsys.readouterr().err
            assert stat.S_IMODE(path.stat().st_mode) == expected, what
            path.chmod(0o640)
            assert main([*argv, "--force"]) == 0, capsys.readouterr().err
            assert stat.S_IMODE(path.stat().st_mode) == 0o640, f"{what} rewritten"
    finally:
        os.umask(old)


# --------------------------------------------------------------------------------------------
# 6. One line per problem
# --------------------------------------------------------------------------------------------


def test_values_with_newlines_stay_on_one_line(tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text('specseg: 1\nname: "a\\nb"\nencoder: {name: "res\\nnet\\u2028x"}\ndecoder: {architecture: "un\\ret"}\n')
    for command in ("validate", "build"):
        lines = assert_refused(run_command(cli, command, str(spec)), str(spec), (1,))
        assert all(ISSUE_LINE.match(line) for line in lines)
        assert any("res\\nnet" in line for line in lines)


def test_non_utf8_arguments_and_names(tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    name = os.fsdecode(b"sp\xffec.yaml")
    path = tmp_path / name
    path.write_text(TINY)
    result = run_command(cli, "validate", str(path), "--set", os.fsdecode(b"name=\xfe"))
    assert result.rc in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    missing = run_command(cli, "validate", os.fsdecode(b"/nonexistent/\xff.yaml"))
    assert_refused(missing, "nonexistent", (1,))


def test_warnings_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from specseg.cli import commands
    from specseg.cli.main import main

    def noisy(args: Any) -> int:
        warnings.warn("a library\nwarning over\nthree lines", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(commands, "hash_spec", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["hash", "x.yaml"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == ["specseg hash: warning: UserWarning: a library\\nwarning over\\nthree lines"]


def test_no_payload_ran(sandbox: dict[str, Path]) -> None:
    assert_no_payload_ran(sandbox)


# --------------------------------------------------------------------------------------------
# 7. Size rules that used to pass and then crash
# --------------------------------------------------------------------------------------------

SINGLE_PIXEL_NORMS = [
    pytest.param("linknet", "instancenorm", id="linknet-instancenorm"),
    pytest.param("manet", "{type: batchnorm, track_running_stats: false}", id="manet-batchnorm-without-running-stats"),
    pytest.param("unet", "{type: groupnorm, num_groups: 16}", id="unet-groupnorm-one-channel-per-group"),
    pytest.param("unet", "instancenorm", id="unet-instancenorm"),
]


@pytest.mark.parametrize("architecture, norm", SINGLE_PIXEL_NORMS)
def test_norms_over_one_pixel_raise_the_minimum_size(architecture: str, norm: str) -> None:
    """The size rule refuses what would normalise a 1x1 map, suggests only sizes it accepts, and those run."""
    import torch

    from specseg.errors import InputShapeError

    model = specseg.build(f"specseg: 1\nencoder: {{name: resnet18}}\ndecoder: {{architecture: {architecture}, norm: {norm}}}\n")
    with pytest.raises(InputShapeError, match="at least 64x64"):
        model.check_input_shape(torch.zeros(1, 3, 32, 32))
    if model.requires_divisible_input:
        with pytest.raises(InputShapeError, match=r"Nearest valid sizes: 64x64 or 96x96"):
            model.check_input_shape(torch.zeros(1, 3, 72, 72))
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 64, 64)


@pytest.mark.parametrize(
    "text, where",
    [
        pytest.param("decoder: {architecture: upernet, norm: {type: groupnorm, num_groups: 256}}\n", "decoder.norm.num_groups", id="upernet-groupnorm-one-per-group"),
        pytest.param("decoder: {architecture: upernet, norm: {type: batchnorm, track_running_stats: false}}\n", "decoder.norm.track_running_stats", id="upernet-batchnorm-no-stats"),
        pytest.param("decoder: {architecture: unet}\nencoder: {name: mit_b0, depth: 1}\n", "encoder.depth", id="mit_b0-depth-1"),
    ],
)
def test_configurations_that_cannot_run_are_refused_at_validation(text: str, where: str, tmp_path: Path, cli: dict[str, ForkServer]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("specseg: 1\n" + text)
    (line,) = assert_refused(run_command(cli, "validate", str(spec)), str(spec), (1,))
    assert ISSUE_LINE.match(line)["path"] == where  # type: ignore[index]


def test_library_log_records_are_one_line() -> None:
    """A library's log record that reaches no handler prints as one line (a fresh process: pytest installs handlers)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import logging, sys\n"
        "from specseg.cli import commands\n"
        "from specseg.cli.main import main\n"
        "def noisy(args):\n"
        "    logging.getLogger('some.library').warning('first line\\nsecond line')\n"
        "    return 0\n"
        "commands.hash_spec = noisy\n"
        "before = logging.lastResort\n"
        "code = main(['hash', 'x.yaml'])\n"
        "assert logging.lastResort is before\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["specseg hash: warning: first line\\nsecond line"]


def test_weight_files_listing_too_many_tensors_are_refused(tmp_path: Path) -> None:
    """Each tensor costs Python objects however small: 20,000 at most, refused from the header."""
    from specseg.tensorfile import MAX_TENSORS
    from specseg.weights import WeightsError, read_state_dict

    count = MAX_TENSORS + 1
    header = {f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(count)}
    path = tmp_path / "many.safetensors"
    path.write_bytes(join(header, b"\0" * count))
    with pytest.raises(WeightsError, match=f"lists {count} tensors"):
        read_state_dict(path)
    with pytest.raises(ArtifactError, match=f"lists {count} tensors"):
        specseg.load(path)
