"""Models on the Hugging Face Hub: hf:// sources from a local cache (offline), Hub-ready folders, uploads.

No network: downloads are served from a Hugging Face cache folder the tests
write (``HF_HUB_CACHE`` + ``HF_HUB_OFFLINE=1``, the layout huggingface_hub
itself writes), and uploads go through huggingface_hub's real API with its
HTTP client replaced by a transport that records the requests.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import specseg
from specseg.artifacts import ArtifactError
from specseg.hub import HubError, parse_hub_source
from tests.conftest import ROOT
from tests.hf_cache import HubCache

SPEC = {
    "specseg": 1,
    "name": "tiny roads",
    "description": "Road masks from aerial tiles.",
    "metadata": {"license": "apache-2.0", "datasets": ["roads-v2"], "tags": ["aerial"], "team": "mapping"},
    "encoder": {"name": "resnet18", "depth": 3},
    "decoder": {"architecture": "unet", "channels": [64, 32, 16]},
    "head": {"classes": 2},
    "seed": 0,
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def model() -> specseg.SegmentationModel:
    built = specseg.build(SPEC)
    return built.eval()


@pytest.fixture(scope="module")
def folder(model: specseg.SegmentationModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return specseg.save_pretrained(model, tmp_path_factory.mktemp("pretrained") / "roads")


@pytest.fixture(scope="module")
def hf_cache(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face hub cache holding owner/roads at COMMIT (branch main, tag v1)."""
    cache = tmp_path_factory.mktemp("hf-cache")
    HubCache(cache).add("owner/roads", {file.name: file for file in folder.iterdir()}, revision=COMMIT)
    (cache / "models--owner--roads" / "refs" / "v1").write_text(COMMIT)
    return cache


@pytest.fixture
def offline(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """huggingface_hub reads its settings at import: set them in a fresh process's environment and patch this one's."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_CACHE=str(hf_cache), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(a.eval()(x), b.eval()(x))


def test_save_pretrained_writes_a_hub_folder_that_loads_back(model: specseg.SegmentationModel, folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors", "spec.yaml"]
    _same_outputs(model, specseg.load(folder))
    _same_outputs(model, specseg.load(folder / "model.safetensors"))
    rebuilt = specseg.load_spec(folder / "spec.yaml")
    assert rebuilt == model.spec  # the YAML is the resolved spec


def test_model_card_is_generated_from_the_spec(model: specseg.SegmentationModel, folder: Path) -> None:
    card = (folder / "README.md").read_text(encoding="utf-8")
    front = card.split("---\n")[1]
    assert 'license: "apache-2.0"' in front and 'datasets: ["roads-v2"]' in front
    assert 'library_name: "specseg"' in front and 'pipeline_tag: "image-segmentation"' in front and '"aerial"' in front
    total = sum(p.numel() for p in model.parameters())
    for fragment in (
        "# tiny roads",
        "Road masks from aerial tiles.",
        "| architecture | `unet` |",
        "| encoder | `resnet18` (depth 3, output stride 32) |",
        f"| parameters | {total:,} ({total:,} trainable) |",
        "| input | 3 channels, N x 3 x H x W |",
        "| output | 2 classes |",
        "| preprocessing | mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225], input range [0.0, 1.0], RGB |",
        '| team | "mapping" |',
    ):
        assert fragment in card


def test_save_pretrained_refuses_existing_files_without_force(model: specseg.SegmentationModel, folder: Path) -> None:
    before = (folder / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(FileExistsError):
        specseg.save_pretrained(model, folder)
    assert (folder / "model.safetensors").stat().st_mtime_ns == before
    specseg.save_pretrained(model, folder, force=True)


@pytest.mark.parametrize("suffix", ["", "@main", "@v1", f"@{COMMIT}"])
def test_load_hf_source_offline_from_the_cache(model: specseg.SegmentationModel, offline: dict[str, str], suffix: str) -> None:
    _same_outputs(model, specseg.load(f"hf://owner/roads{suffix}"))


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("hf://owner/elsewhere", "is not in the Hugging Face cache and cannot be downloaded"),
        ("hf://owner/roads@v2", "is not in the Hugging Face cache"),
        ("hf://owner", "is not a Hugging Face Hub source; write hf://OWNER/REPO"),
        ("hf://owner/roads/extra", "is not a Hugging Face Hub source"),
    ],
)
def test_hf_source_errors_say_what_to_do(offline: dict[str, str], source: str, fragment: str) -> None:
    with pytest.raises(ArtifactError) as info:
        specseg.load(source)
    assert isinstance(info.value, HubError) and fragment in str(info.value)


def test_parse_hub_source() -> None:
    assert parse_hub_source("hf://smp-hub/unet.resnet34@refs/pr/1") == ("smp-hub/unet.resnet34", "refs/pr/1")
    with pytest.raises(HubError):
        parse_hub_source("hf://a--b/c")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "specseg", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_build_and_inspect_hf_sources_offline(model: specseg.SegmentationModel, offline: dict[str, str], tmp_path: Path) -> None:
    built = _cli(offline, "build", "hf://owner/roads@v1", "--input-shape", "1,3,64,64", "--json", "-o", str(tmp_path / "copy.safetensors"))
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert summary["outputs"] == {"mask": [1, 2, 64, 64]}
    _same_outputs(model, specseg.load(tmp_path / "copy.safetensors"))

    inspected = _cli(offline, "inspect", "hf://owner/roads", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["spec"]["name"] == "tiny roads"
    missing = _cli(offline, "build", "hf://owner/nothing")
    assert missing.returncode == 1 and "not in the Hugging Face cache" in missing.stderr and "Traceback" not in missing.stderr
    refused = _cli(offline, "build", "hf://owner/roads", "--set", "head.classes=3")
    assert refused.returncode == 2 and "--set changes specs" in refused.stderr


def test_inspect_hf_source_does_not_import_torch(offline: dict[str, str]) -> None:
    code = (
        "import sys\nfrom specseg.cli.main import main\n"
        "assert main(['inspect', 'hf://owner/roads']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=offline, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_cli_build_writes_a_hub_folder(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")
    out = tmp_path / "release"
    result = subprocess.run(
        [sys.executable, "-m", "specseg", "build", str(spec), "--input-shape", "1,3,64,64", "-o", f"{out}/"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote:        {out / 'model.safetensors'}, {out / 'spec.yaml'}, {out / 'README.md'} (folder)" in result.stdout
    _same_outputs(specseg.build(spec), specseg.load(out))
    again = subprocess.run([sys.executable, "-m", "specseg", "build", str(spec), "-o", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 2 and "exists; use --force" in again.stderr


class _RecordingHub:
    """The Hub's HTTP API as far as create_repo + upload_folder use it, recording every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []

    def __call__(self, request: Any) -> Any:
        import httpx2 as httpx  # huggingface_hub's HTTP client library

        url = str(request.url)
        self.requests.append((request.method, url, request.content))
        if url.endswith("/api/repos/create"):
            return httpx.Response(200, json={"url": "https://huggingface.co/owner/roads", "name": "owner/roads"})
        if url.endswith("/api/validate-yaml"):
            return httpx.Response(200, json={"errors": [], "warnings": []})
        if "/preupload/" in url:
            files = json.loads(request.content)["files"]
            return httpx.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if "/commit/" in url:
            return httpx.Response(200, json={"commitUrl": "https://huggingface.co/owner/roads/commit/" + COMMIT, "commitOid": COMMIT})
        return httpx.Response(404, json={"error": "not part of this test's Hub"})

    def commit(self, index: int = 0) -> tuple[str, dict[str, Any], dict[str, bytes]]:
        """The URL, header (summary = commit message) and files of the ``index``-th commit request."""
        url, body = [(u, b) for _m, u, b in self.requests if "/commit/" in u][index]
        lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
        header = next(item["value"] for item in lines if item["key"] == "header")
        files = {item["value"]["path"]: base64.b64decode(item["value"]["content"]) for item in lines if item["key"] == "file"}
        return url, header, files


@pytest.fixture
def recording_hub(monkeypatch: pytest.MonkeyPatch) -> _RecordingHub:
    httpx = pytest.importorskip("httpx2")
    import huggingface_hub

    hub = _RecordingHub()
    for key in ("HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    huggingface_hub.set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(hub)))
    huggingface_hub.close_session()
    yield hub
    # Back to huggingface_hub's own factory: its transport is what enforces HF_HUB_OFFLINE, so a plain
    # client here left later tests in this process making real requests (and retrying for minutes).
    from huggingface_hub.utils._http import default_client_factory

    huggingface_hub.set_client_factory(default_client_factory)
    huggingface_hub.close_session()


def test_push_to_hub_uploads_the_folder_in_one_commit(model: specseg.SegmentationModel, recording_hub: _RecordingHub, tmp_path: Path) -> None:
    info = specseg.push_to_hub(model, "owner/roads", token="hf_test_token", private=True)
    assert info.oid == COMMIT
    create = next(b for m, u, b in recording_hub.requests if u.endswith("/api/repos/create"))
    assert json.loads(create) == {"name": "roads", "organization": "owner", "type": "model", "visibility": "private"}
    url, header, files = recording_hub.commit()
    assert url == "https://huggingface.co/api/models/owner/roads/commit/main"
    from specseg.spec.canonical import spec_hash

    assert header["summary"] == f"Upload unet (resnet18) with specseg, spec {spec_hash(model.spec)}"
    assert sorted(files) == ["README.md", "model.safetensors", "spec.yaml"]
    uploaded = tmp_path / "model.safetensors"
    uploaded.write_bytes(files["model.safetensors"])
    _same_outputs(model, specseg.load(uploaded))
    assert specseg.load_spec(files["spec.yaml"].decode("utf-8")) == model.spec
    assert files["README.md"].decode("utf-8").startswith("---\nlibrary_name: \"specseg\"")

    creates = sum(u.endswith("/api/repos/create") for _m, u, _b in recording_hub.requests)
    specseg.push_to_hub(model, "owner/roads", token="hf_test_token", commit_message="retrained", revision="dev", create_repo=False)
    url, header, _files = recording_hub.commit(-1)
    assert url == "https://huggingface.co/api/models/owner/roads/commit/dev" and header["summary"] == "retrained"
    assert sum(u.endswith("/api/repos/create") for _m, u, _b in recording_hub.requests) == creates
