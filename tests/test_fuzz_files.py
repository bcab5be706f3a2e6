"""Property-based fuzzing of artifacts and weight files (hypothesis).

Starting from a small valid artifact and a torch checkpoint, hypothesis
mutates the safetensors header as data (tensor entries' dtypes, shapes and
offsets retyped, pushed out of range, dropped or duplicated; metadata and the
embedded spec replaced or edited, with or without a matching hash) and the
file as bytes (the length prefix, flipped, inserted and deleted bytes,
truncation).

The property, the same "no escape" rule as the spec fuzzer's: reading the
metadata (``specseg inspect``'s :func:`~specseg.artifacts.read_artifact_info`),
loading (:func:`specseg.load`) and reading the weights
(:func:`specseg.weights.read_state_dict`) either succeed or raise
:class:`~specseg.artifacts.ArtifactError` / :class:`~specseg.weights.WeightsError`
naming the file; nothing else escapes, and nothing allocates beyond the
declared sizes (the memory limit is a few MiB here).

The default budget is small and derandomized (CI); ``SPECSEG_FUZZ_EXAMPLES=N``
runs N examples per test with fresh randomness and shrinking.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given
from hypothesis import strategies as st

import specseg
from specseg.artifacts import ArtifactError, read_artifact_info
from specseg.weights import WeightsError, read_state_dict
from tests.test_fuzz import fuzz_settings

TINY = "specseg: 1\nencoder: {name: tu-test_resnet, depth: 3}\ndecoder: {architecture: unet, channels: [16, 8, 8]}\n"
#: The memory limit of every load here: far above the tiny model, far below what a forged size could ask.
LIMIT = 64 << 20

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_DTYPES = st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "C64", "F4", "", "f32"])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz-artifact") / "m.safetensors"
    specseg.save_artifact(specseg.build(TINY), path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def checkpoint() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(4, dtype=torch.int64)}, buffer)
    return buffer.getvalue()


def _split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _join(header: dict[str, Any], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@st.composite
def mutated_header(draw: Any, raw: bytes) -> bytes:
    """The artifact with its header edited as data."""
    header, data = _split(raw)
    header = copy.deepcopy(header)
    names = [k for k in header if k != "__metadata__"]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["dtype", "shape", "offsets", "entry", "drop", "copy", "meta", "spec", "spec-edit"]))
        name = draw(st.sampled_from(names))
        entry = header.get(name)
        if kind == "dtype" and isinstance(entry, dict):
            entry["dtype"] = draw(_DTYPES | _JSON)
        elif kind == "shape" and isinstance(entry, dict):
            entry["shape"] = draw(st.lists(st.integers(-2, 2**40) | _JSON, max_size=5))
        elif kind == "offsets" and isinstance(entry, dict):
            entry["data_offsets"] = draw(st.lists(st.integers(-(2**64), 2**64) | st.floats(allow_nan=False) | st.text(max_size=3), max_size=3))
        elif kind == "entry":
            header[name] = draw(_JSON)
        elif kind == "drop":
            header.pop(name, None)
        elif kind == "copy":
            header[name + draw(st.text(max_size=3))] = copy.deepcopy(entry)
        elif kind == "meta":
            key = draw(st.sampled_from(["format", "format_version", "spec", "spec_hash", "encoder_source", "specseg_version", "timm_version"]))
            header["__metadata__"][key] = draw(_JSON)
        else:
            meta = header["__metadata__"]
            try:
                spec = json.loads(meta["spec"])
            except (TypeError, ValueError):  # an earlier mutation replaced it
                spec = {}
            spec = spec if isinstance(spec, dict) else {}
            if kind == "spec":
                text = draw(st.text(max_size=40) | _JSON.map(json.dumps))
            else:
                key = draw(st.sampled_from(["specseg", "encoder", "decoder", "head", "name", "metadata", "weights", "aux_params"]))
                spec[key] = draw(_JSON)
                text = json.dumps(spec)
            meta["spec"] = text
            if draw(st.booleans()):
                meta["spec_hash"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return _join(header, data)


@st.composite
def mutated_bytes(draw: Any, raw: bytes, header_region: bool = True) -> bytes:
    """The file with bytes flipped, inserted, deleted or cut (mostly in the header, where parsing happens)."""
    out = bytearray(raw)
    (length,) = struct.unpack("<Q", raw[:8]) if header_region else (len(raw),)
    end = min(len(out), 8 + length) if header_region else len(out)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "length"]))
        pos = draw(st.integers(0, max(end - 1, 0)))
        if kind == "flip" and out:
            out[pos % len(out)] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[pos : pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del out[pos:]
        elif kind == "length" and header_region and len(out) >= 8:
            out[:8] = struct.pack("<Q", draw(st.integers(0, 2**64 - 1)))
    return bytes(out)


def check_no_escape(path: Path) -> str:
    """Read ``path`` every way specseg does; only its own errors may come out, each naming the file."""
    outcomes = []
    try:
        info = read_artifact_info(path)
        info.to_dict()
        outcomes.append("info")
    except ArtifactError as exc:
        assert str(path) in str(exc), exc
    try:
        specseg.load(path, max_memory=LIMIT)
        outcomes.append("load")
    except ArtifactError as exc:
        assert str(path) in str(exc), exc
    try:
        read_state_dict(path, max_bytes=LIMIT)
        outcomes.append("weights")
    except WeightsError as exc:
        assert str(path) in str(exc), exc
    return "+".join(outcomes) or "refused"


@fuzz_settings(40)
@given(data=st.data())
def test_artifacts_with_mutated_headers(data: Any, artifact: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fz") / "m.safetensors"
    path.write_bytes(data.draw(mutated_header(artifact)))
    check_no_escape(path)


@fuzz_settings(40)
@given(data=st.data())
def test_artifacts_with_mutated_bytes(data: Any, artifact: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fz") / "m.safetensors"
    path.write_bytes(data.draw(mutated_bytes(artifact)))
    check_no_escape(path)


@fuzz_settings(30)
@given(data=st.data())
def test_torch_checkpoints_with_mutated_bytes(data: Any, checkpoint: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fz") / "w.pt"
    path.write_bytes(data.draw(mutated_bytes(checkpoint, header_region=False)))
    try:
        state = read_state_dict(path, max_bytes=LIMIT)
    except WeightsError as exc:
        assert str(path) in str(exc)
    else:
        assert all(isinstance(k, str) for k in state)


def test_mutations_reach_every_kind_of_refusal(artifact: bytes, tmp_path: Path) -> None:
    """The unmutated file loads, and hand-picked mutations are refused at the header, offsets and spec checks."""
    path = tmp_path / "m.safetensors"
    path.write_bytes(artifact)
    assert check_no_escape(path) == "info+load+weights"
    header, data = _split(artifact)
    name = next(k for k in header if k != "__metadata__")
    for edit, fragment in [
        (lambda h: h[name].update(data_offsets=[0, "8"]), "data_offsets"),
        (lambda h: h[name].update(dtype="C64"), "unknown dtype"),
        (lambda h: h["__metadata__"].update(spec="[]"), "not a mapping"),
    ]:
        forged = copy.deepcopy(header)
        edit(forged)
        path.write_bytes(_join(forged, data))
        with pytest.raises(ArtifactError, match=fragment):
            specseg.load(path)
