"""Weight files: safe reading (format from bytes, sha256 first, no code execution), strict loading, encoder weights."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import specseg
from specseg.weights import WeightsError, detect_format, load_into, read_state_dict


def _state() -> dict[str, torch.Tensor]:
    return {"conv.weight": torch.arange(24.0).reshape(2, 3, 2, 2), "conv.bias": torch.tensor([1.0, -1.0])}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Payload:
    """Pickles as a call that writes a marker file: it must never run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


# --- reading ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(lambda sd, p: save_file(sd, str(p)), id="safetensors"),
        pytest.param(lambda sd, p: torch.save(sd, p), id="torch-zip"),
        pytest.param(lambda sd, p: torch.save(sd, p, _use_new_zipfile_serialization=False), id="torch-legacy"),
        pytest.param(lambda sd, p: torch.save({"state_dict": sd, "epoch": 3}, p), id="wrapped-state_dict"),
        pytest.param(lambda sd, p: torch.save({"model": sd, "step": 10}, p), id="wrapped-model"),
    ],
)
@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".bin"])
def test_reads_by_content_not_suffix(tmp_path: Path, writer, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    writer(_state(), path)
    assert _same(read_state_dict(path), _state())
    assert _same(read_state_dict(path, sha256=_sha(path)), _state())


def test_format_detected_from_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "b.safetensors"
    save_file(_state(), str(a))
    torch.save(_state(), b)
    assert detect_format(a) == "safetensors"
    assert detect_format(b) == "torch-zip"
    junk = tmp_path / "c.safetensors"
    junk.write_bytes(b"hello, this is not a weights file at all")
    with pytest.raises(WeightsError, match="not a weights file"):
        read_state_dict(junk)


def test_wrong_sha256_is_refused_before_parsing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        read_state_dict(path, sha256="0" * 64)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("name", ["evil.pt", "evil.safetensors"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path, legacy: bool, name: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / name
    torch.save({"w": torch.zeros(1), "x": _Payload(marker)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(WeightsError, match="refused"):
        read_state_dict(path)
    with pytest.raises(WeightsError, match="refused"):
        read_state_dict(path, sha256=_sha(path))  # a correct hash does not make it safe
    assert not marker.exists()
    # The payload is live: an unsafe loader would have run it.
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(live)))
    assert live.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_raw_pickle_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "raw.pt"
    path.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=4))
    with pytest.raises(WeightsError):
        read_state_dict(path)
    assert not marker.exists()


def test_truncated_files_are_clear_errors(tmp_path: Path) -> None:
    st = tmp_path / "w.safetensors"
    save_file(_state(), str(st))
    data = st.read_bytes()
    st.write_bytes(data[:-10])
    with pytest.raises(WeightsError, match="truncated"):
        read_state_dict(st)
    (header_len,) = struct.unpack("<Q", data[:8])
    st.write_bytes(data[: 8 + header_len // 2])
    with pytest.raises(WeightsError, match="truncated"):
        read_state_dict(st)
    pt = tmp_path / "w.pt"
    torch.save(_state(), pt)
    data = pt.read_bytes()
    pt.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        read_state_dict(pt)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        read_state_dict(empty)
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "missing.pt")


def test_checkpoint_that_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(WeightsError, match="not tensors"):
        read_state_dict(path)


# --- strict loading ----------------------------------------------------------------


def test_load_into_is_strict_and_all_or_nothing() -> None:
    module = nn.Sequential(nn.Conv2d(3, 2, 2), nn.BatchNorm2d(2))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    good = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in before.items()}
    bad = dict(good)
    del bad["1.running_var"]
    bad["2.weight"] = torch.zeros(1)
    bad["0.weight"] = torch.zeros(2, 4, 2, 2)
    with pytest.raises(WeightsError) as info:
        load_into(module, bad, "test weights")
    message = str(info.value)
    assert "1 missing key(s): 1.running_var" in message
    assert "1 unexpected key(s): 2.weight" in message
    assert "0.weight (file [2, 4, 2, 2], network [2, 3, 2, 2])" in message
    assert all(torch.equal(module.state_dict()[k], v) for k, v in before.items())
    load_into(module, good, "test weights")
    assert all(torch.equal(module.state_dict()[k], v) for k, v in good.items())


# --- encoder weights from specs ----------------------------------------------------------


def _unet(encoder: dict, **head) -> dict:
    return {"specseg": 1, "encoder": encoder, "decoder": {"architecture": "unet"}, "head": {"classes": 1, **head}}


def _resnet18_file(tmp_path: Path, name: str = "enc.safetensors", with_fc: bool = True) -> tuple[Path, dict[str, torch.Tensor]]:
    from specseg.encoders.resnet import ResNetEncoder

    torch.manual_seed(3)
    state = ResNetEncoder("basic", [2, 2, 2, 2]).state_dict()
    state = {k: (torch.randn_like(v) if v.is_floating_point() else v) for k, v in state.items()}
    saved = dict(state)
    if with_fc:  # a classification checkpoint (timm/torchvision layout) has a classifier too
        saved.update({"fc.weight": torch.randn(10, 512), "fc.bias": torch.randn(10)})
    path = tmp_path / name
    save_file(saved, str(path))
    return path, state


def test_local_file_relative_to_the_spec_and_pinned(tmp_path: Path, tmp_spec) -> None:
    path, state = _resnet18_file(tmp_path)
    spec = tmp_spec(
        f"specseg: 1\nencoder:\n  name: resnet18\n  weights: {{path: enc.safetensors, sha256: {_sha(path)}}}\ndecoder: {{architecture: unet}}\n"
    )
    model = specseg.build(spec)
    own = model.encoder.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())
    # a plain path string works too
    spec2 = tmp_spec("specseg: 1\nencoder: {name: resnet18, weights: ./enc.safetensors}\ndecoder: {architecture: unet}\n", "b.yaml")
    assert torch.equal(specseg.build(spec2).encoder.state_dict()["conv1.weight"], state["conv1.weight"])


def test_wrong_sha256_is_a_located_spec_error(tmp_path: Path, tmp_spec) -> None:
    _resnet18_file(tmp_path)
    spec = tmp_spec(f"specseg: 1\nencoder:\n  name: resnet18\n  weights: {{path: enc.safetensors, sha256: {'ab' * 32}}}\ndecoder: {{architecture: unet}}\n")
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(spec)
    issue = info.value.issues[0]
    assert issue.path == ("encoder", "weights") and "sha256 mismatch" in issue.message
    assert issue.location is not None and issue.location.line == 4


@pytest.mark.parametrize("size", [0, 1, 3 * 4096 + 5])
def test_sha256_of_hashes_across_mapped_windows(tmp_path: Path, size: int) -> None:
    import mmap

    from specseg.weights import BackgroundDigest, sha256_of

    path = tmp_path / "blob"
    path.write_bytes(bytes(i % 251 for i in range(size)))
    assert sha256_of(path, window=mmap.ALLOCATIONGRANULARITY) == _sha(path)
    assert BackgroundDigest(path).hexdigest() == _sha(path)


def test_sha256_of_reads_where_files_cannot_be_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mmap

    from specseg import weights

    def unmappable(*args: object, **kwargs: object) -> None:
        raise OSError(19, "No such device")

    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 4099)
    monkeypatch.setattr(weights.mmap, "mmap", unmappable)
    assert weights.sha256_of(path, window=mmap.ALLOCATIONGRANULARITY) == _sha(path)


_WHOLE = "specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: unet}\nweights: {path: w.safetensors, sha256: %s}\n"


def _whole_model_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    state = {k: v.contiguous() for k, v in specseg.build(_WHOLE.split("weights:")[0], max_memory="off").state_dict().items()}
    for k, v in state.items():
        if v.is_floating_point():
            v.uniform_(-1, 1)
    save_file(state, str(tmp_path / "w.safetensors"))
    return tmp_path / "w.safetensors", state


def test_pinned_model_weights_load_with_one_build_and_one_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specseg import construct, weights

    path, state = _whole_model_file(tmp_path)
    (tmp_path / "s.yaml").write_text(_WHOLE % _sha(path))
    builds: list[str] = []
    hashes: list[Path] = []
    real_build, real_hash = construct.construct, weights.sha256_of
    monkeypatch.setattr(construct, "construct", lambda *a, **k: builds.append("build") or real_build(*a, **k))
    monkeypatch.setattr(weights, "sha256_of", lambda p, *a, **k: hashes.append(p) or real_hash(p, *a, **k))
    model = specseg.build(tmp_path / "s.yaml")
    # The memory guard's meta-device build is the model the weights go into; the file is hashed once.
    assert builds == ["build"] and hashes == [path]
    assert _same({k: v for k, v in model.state_dict().items()}, state)
    assert all(not t.is_meta for t in model.state_dict().values())


def test_replaced_model_weights_are_refused_for_their_hash_first(tmp_path: Path) -> None:
    path, state = _whole_model_file(tmp_path)
    (tmp_path / "s.yaml").write_text(_WHOLE % _sha(path))
    # Another network's file in its place: the hash, not the misfit, is what the user must hear about.
    save_file({"only.weight": torch.zeros(2)}, str(path))
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(tmp_path / "s.yaml")
    issue = info.value.issues[0]
    assert "sha256 mismatch" in issue.message and issue.path == ("weights", "path") and issue.location.line == 4
    # Same network, other values: it fits, and is still refused.
    state["encoder.conv1.weight"] += 1
    save_file(state, str(path))
    with pytest.raises(specseg.SpecError, match="sha256 mismatch"):
        specseg.build(tmp_path / "s.yaml")


def test_pretrained_first_conv_adapted_to_in_channels(tmp_path: Path) -> None:
    path, state = _resnet18_file(tmp_path)
    model = specseg.build(_unet({"name": "resnet18", "weights": {"path": str(path)}, "in_channels": 4}))
    conv = model.encoder.state_dict()["conv1.weight"]
    expected = state["conv1.weight"][:, [0, 1, 2, 0]] * 3 / 4
    torch.testing.assert_close(conv, expected)
    gray = specseg.build(_unet({"name": "resnet18", "weights": {"path": str(path)}, "in_channels": 1}))
    torch.testing.assert_close(gray.encoder.state_dict()["conv1.weight"], state["conv1.weight"].sum(1, keepdim=True))


def test_timm_checkpoint_and_own_layout_for_tu_encoders(tmp_path: Path) -> None:
    path, state = _resnet18_file(tmp_path, "timm_resnet18.safetensors")
    model = specseg.build(_unet({"name": "tu-resnet18", "weights": {"path": str(path)}, "in_channels": 4}))
    own = model.encoder.state_dict()
    torch.testing.assert_close(own["model.layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert own["model.conv1.weight"].shape[1] == 4
    # an encoder saved by specseg (keys under `model.`) loads back strictly
    saved = tmp_path / "own.pt"
    torch.save(model.encoder.state_dict(), saved)
    again = specseg.build(_unet({"name": "tu-resnet18", "weights": {"path": str(saved)}, "in_channels": 4}))
    assert all(torch.equal(again.encoder.state_dict()[k], v) for k, v in own.items())


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    path, _ = _resnet18_file(tmp_path)
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(_unet({"name": "resnet34", "weights": {"path": str(path)}}))
    issue = info.value.issues[0]
    assert issue.path == ("encoder", "weights") and "missing key(s)" in issue.message


def test_unknown_weights_name(tmp_path: Path) -> None:
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(_unet({"name": "resnet34", "weights": "instagram"}))
    issue = info.value.issues[0]
    assert issue.path == ("encoder", "weights")
    assert "named weights: imagenet" in issue.message and "a1_in1k" in issue.message


def test_offline_download_says_how_to_use_a_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for name, weights in [("resnet18", "imagenet"), ("mit_b0", "imagenet"), ("tu-resnet18", "a1_in1k"), ("efficientnet-b0", "advprop")]:
        with pytest.raises(specseg.SpecError) as info:
            specseg.build(_unet({"name": name, "weights": weights}))
        issue = info.value.issues[0]
        assert issue.path == ("encoder", "weights"), issue
        assert "could not download" in issue.message and "{path:" in issue.message and "sha256" in issue.message


def test_preprocessing_matches_the_weights() -> None:
    import numpy as np

    from specseg.preprocessing import preprocessing, preprocessing_params

    advprop = preprocessing({"specseg": 1, "encoder": {"name": "efficientnet-b0", "weights": "advprop"}, "decoder": {"architecture": "unet"}})
    assert advprop.mean == (0.5, 0.5, 0.5) and advprop.input_space == "RGB" and advprop.input_range == (0.0, 1.0)
    image = np.full((4, 4, 3), 255, dtype=np.uint8)
    np.testing.assert_allclose(advprop(image), np.ones((4, 4, 3)), rtol=1e-6)
    tensor = torch.full((2, 3, 4, 4), 0.5)
    torch.testing.assert_close(advprop(tensor), torch.zeros(2, 3, 4, 4))
    assert preprocessing_params("dpn68", "imagenet")["mean"][0] == pytest.approx(124 / 255)
    assert preprocessing_params("resnet34", None)["std"] == [0.229, 0.224, 0.225]
    assert preprocessing_params("tu-convnext_atto", "imagenet")["mean"] == [0.485, 0.456, 0.406]
