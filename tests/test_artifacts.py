"""Artifacts: one .safetensors file with the weights and the spec, reloaded exactly from the file alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import specseg
from specseg.artifacts import ArtifactError, ArtifactWarning, read_artifact_info, save_artifact
from specseg.cli.main import main
from specseg.spec.canonical import resolved, spec_hash
from tests.conftest import ROOT

SPEC_TEXT = """\
specseg: 1
name: artifact-test
encoder: {name: resnet18, depth: 3}
decoder: {architecture: unet, channels: [16, 16, 16]}
aux_params: {classes: 3}
seed: 7
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_TEXT)
    return path


@pytest.fixture
def artifact(tmp_path: Path, spec_file: Path) -> Path:
    path = tmp_path / "model.safetensors"
    save_artifact(specseg.build(spec_file), path)
    return path


def rewrite_metadata(path: Path, **changes: str) -> None:
    """Change an artifact's metadata in place (what a tampered or foreign file looks like)."""
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata())
    save_file(load_file(str(path)), str(path), metadata={**metadata, **changes})


def test_reload_in_a_fresh_process_from_the_artifact_alone(tmp_path: Path, spec_file: Path) -> None:
    model = specseg.build(spec_file).eval()
    # Trained-looking state: batch-norm statistics that differ from a fresh build's.
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    artifact = tmp_path / "model.safetensors"
    save_artifact(model, artifact)
    spec_file.unlink()  # nothing but the artifact is left
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mask, labels = model(x)

    script = textwrap.dedent(
        """
        import sys
        import torch
        import specseg
        from safetensors.torch import save_file

        model = specseg.load(sys.argv[1]).eval()
        x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            mask, labels = model(x)
        save_file({"mask": mask.contiguous(), "labels": labels.contiguous()}, sys.argv[2])
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "outputs.safetensors"
    result = subprocess.run(
        [sys.executable, "-c", script, str(artifact), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    reloaded = load_file(str(out))
    assert torch.equal(reloaded["mask"], mask)
    assert torch.equal(reloaded["labels"], labels)


def test_embedded_spec_and_hash(artifact: Path, spec_file: Path) -> None:
    spec = specseg.load_spec(spec_file)
    info = read_artifact_info(artifact)
    assert info.spec_hash == spec_hash(spec)
    assert info.hash_matches
    assert info.spec == resolved(spec)
    import timm

    assert info.versions == {"specseg": specseg.__version__, "torch": torch.__version__, "timm": timm.__version__}
    assert (info.encoder_source, info.encoder_source_version) == ("builtin", specseg.__version__)
    assert info.tensor_count == len(specseg.build(spec_file).state_dict())


def test_loaded_model_keeps_spec_and_weights(artifact: Path, spec_file: Path) -> None:
    original = specseg.build(spec_file)
    loaded = specseg.load(artifact)
    assert loaded.spec == original.spec
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_inspect_text_and_json(artifact: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digest = spec_hash(specseg.load_spec(spec_file))
    assert main(["inspect", str(artifact)]) == 0
    text = capsys.readouterr().out
    assert f"spec hash:    {digest}" in text
    assert "architecture: unet" in text and "encoder:      resnet18 (from builtin" in text
    assert f"torch {torch.__version__}" in text
    assert '"channels": [' in text  # the embedded spec is printed

    assert main(["inspect", str(artifact), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {
        "file", "format", "format_version", "spec_hash", "hash_matches", "name", "architecture",
        "encoder", "versions", "tensors", "spec",
    }  # fmt: skip
    assert data["spec_hash"] == digest and data["hash_matches"] is True
    assert data["format"] == "specseg.artifact" and data["format_version"] == "1"
    assert data["encoder"] == {"name": "resnet18", "source": "builtin", "version": specseg.__version__}
    assert set(data["versions"]) == {"specseg", "torch", "timm"}
    assert data["spec"]["decoder"]["channels"] == [16, 16, 16]


def test_inspect_does_not_import_torch(artifact: Path) -> None:
    script = "import sys; from specseg.cli.main import main; rc = main(['inspect', sys.argv[1]]); assert 'torch' not in sys.modules; sys.exit(rc)"
    result = subprocess.run([sys.executable, "-c", script, str(artifact)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_build_output_needs_force_to_overwrite(tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.safetensors"
    assert main(["build", str(spec_file), "--input-shape", "1,3,64,64", "-o", str(out)]) == 0
    assert f"wrote:        {out} (safetensors)" in capsys.readouterr().out
    first = out.read_bytes()

    assert main(["build", str(spec_file), "--input-shape", "1,3,64,64", "-o", str(out), "--set", "seed=8"]) == 2
    assert "exists; use --force" in capsys.readouterr().err
    assert out.read_bytes() == first

    assert main(["build", str(spec_file), "--input-shape", "1,3,64,64", "-o", str(out), "--set", "seed=8", "--force"]) == 0
    assert out.read_bytes() != first
    assert read_artifact_info(out).spec["seed"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "spec.yaml"]  # no temporary files left


def test_save_artifact_refuses_existing_file_without_force(artifact: Path, spec_file: Path) -> None:
    before = artifact.read_bytes()
    model = specseg.build(spec_file, ["seed=9"])
    with pytest.raises(FileExistsError, match="force"):
        save_artifact(model, artifact)
    assert artifact.read_bytes() == before
    save_artifact(model, artifact, force=True)
    assert read_artifact_info(artifact).spec["seed"] == 9


class WriteFailed(Exception):
    pass


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("error", [WriteFailed, KeyboardInterrupt], ids=["error", "interrupt"])
def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch, existing: bool, error: type[BaseException]
) -> None:
    import safetensors.torch

    out = tmp_path / "model.safetensors"
    if existing:
        out.write_bytes(b"previous")

    def failing_save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise error("disk full")

    model = specseg.build(spec_file)
    monkeypatch.setattr(safetensors.torch, "save_file", failing_save_file)
    with pytest.raises(error):
        save_artifact(model, out, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["model.safetensors", "spec.yaml"] if existing else ["spec.yaml"])
    if existing:
        assert out.read_bytes() == b"previous"


def test_failed_export_leaves_no_partial_file(tmp_path: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specseg.export import export_model

    def failing_save(module: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        Path(f).write_bytes(b"half a file")
        raise WriteFailed("disk full")

    monkeypatch.setattr(torch.jit, "save", failing_save)
    with pytest.raises(WriteFailed):
        export_model(specseg.build(spec_file), tmp_path / "model.pt", input_shape=(2, 3, 64, 64), check=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_plain_safetensors_is_not_an_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ArtifactError, match="without specseg artifact metadata"):
        specseg.load(plain)
    assert main(["inspect", str(plain)]) == 1
    err = capsys.readouterr().err
    assert "without specseg artifact metadata" in err and "Traceback" not in err
    not_safetensors = tmp_path / "notes.safetensors"
    not_safetensors.write_text("hello")
    with pytest.raises(ArtifactError, match="not a safetensors file"):
        specseg.load(not_safetensors)
    with pytest.raises(ArtifactError, match="not found"):
        specseg.load(tmp_path / "missing.safetensors")


def test_altered_spec_is_detected(artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = read_artifact_info(artifact)
    rewrite_metadata(artifact, spec=info.spec_json.replace('"classes":1', '"classes":2'))
    with pytest.raises(ArtifactError, match="does not match its hash"):
        specseg.load(artifact)
    assert main(["inspect", str(artifact)]) == 1
    assert "DOES NOT MATCH" in capsys.readouterr().out


def test_missing_plugin_is_named(artifact: Path) -> None:
    rewrite_metadata(artifact, encoder_source="specseg-imaginary-encoders", encoder_source_version="1.2.3")
    with pytest.raises(ArtifactError) as caught:
        specseg.load(artifact)
    message = str(caught.value)
    assert "plugin package specseg-imaginary-encoders 1.2.3" in message
    assert "pip install 'specseg-imaginary-encoders==1.2.3'" in message


def test_other_plugin_version_is_reported(artifact: Path) -> None:
    # Any installed distribution serves as the "plugin"; only its version is compared.
    from importlib.metadata import version

    installed = version("pydantic")
    rewrite_metadata(artifact, encoder_source="pydantic", encoder_source_version="0.0.1")
    with pytest.warns(ArtifactWarning, match=rf"version 0\.0\.1, this is version {installed}"):
        model = specseg.load(artifact)
    assert model.spec.encoder.name == "resnet18"


def test_weights_that_do_not_fit_are_reported(artifact: Path) -> None:
    tensors = load_file(str(artifact))
    with safe_open(str(artifact), framework="pt") as fh:
        metadata = dict(fh.metadata())
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(artifact), metadata=metadata)
    with pytest.raises(ArtifactError, match="1 missing key"):
        specseg.load(artifact)


def test_meta_model_cannot_be_saved(tmp_path: Path, spec_file: Path) -> None:
    from specseg.dryrun import meta_model

    with pytest.raises(ArtifactError, match="meta device"):
        save_artifact(meta_model(specseg.load_spec(spec_file)), tmp_path / "meta.safetensors")
    assert not (tmp_path / "meta.safetensors").exists()
