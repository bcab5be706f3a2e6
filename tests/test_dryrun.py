"""Dry runs (meta device: counts, memory, shapes, FLOPs) and the memory guard of real builds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import specseg
from specseg.cli.main import main
from specseg.dryrun import MemoryLimitError, dry_run, format_bytes, parse_size
from tests.conftest import ROOT

#: A U-Net with 1.5 billion parameters (6 GiB of float32), almost all in its decoder.
BIG_SPEC = """\
specseg: 1
name: unet-1.5b
encoder: {name: resnet152}
decoder:
  architecture: unet
  channels: [8192, 4096, 2048, 1024, 512]
"""
BIG_PARAMETERS = 1_514_487_361

#: The largest spec validation lets through for a U-Net: every channel count and the class count at their caps.
LARGEST_SPEC = {
    "specseg": 1,
    "encoder": {"name": "resnet152"},
    "decoder": {"architecture": "unet", "channels": [65536] * 5},
    "head": {"classes": 100000},
}

SMALL_SPEC = {
    "specseg": 1,
    "encoder": {"name": "resnet18", "depth": 3},
    "decoder": {"architecture": "unet", "channels": [16, 16, 16]},
    "aux_params": {"classes": 3},
}


@pytest.fixture
def big_spec(tmp_path: Path) -> Path:
    path = tmp_path / "big.yaml"
    path.write_text(BIG_SPEC)
    return path


def test_billion_parameter_dry_run_is_fast_and_flat(big_spec: Path) -> None:
    # A fresh process, so that the peak RSS (ru_maxrss) measures this dry run alone.
    script = textwrap.dedent(
        """
        import contextlib, io, json, resource, sys, time
        import torch, specseg.builder, specseg.dryrun
        from specseg.cli.main import main

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["build", sys.argv[1], "--dry-run", "--json"])
        seconds = time.perf_counter() - start
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        print(json.dumps({"rc": rc, "seconds": seconds, "rss_growth": growth, "summary": json.loads(out.getvalue())}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(big_spec)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert report["rc"] == 0
    assert summary["parameters"]["total"] == BIG_PARAMETERS > 1e9
    assert summary["memory"]["parameters_bytes"] == 4 * BIG_PARAMETERS
    assert report["rss_growth"] < 1 << 30, f"RSS grew by {format_bytes(report['rss_growth'])}"
    assert report["seconds"] < 20, f"the dry run took {report['seconds']:.1f} s"
    assert summary["flops"]["total"] > 4e12  # 4.26 TFLOPs at 1x3x256x256


def test_real_build_of_billion_parameter_spec_is_refused(big_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(MemoryLimitError) as caught:
        specseg.build(big_spec, max_memory="2GiB")
    error = caught.value
    assert error.estimate > 4 * BIG_PARAMETERS and error.limit == 2 << 30
    (issue,) = error.issues
    assert issue.path == ("decoder", "channels")
    assert (issue.location.line, issue.location.column) == (6, 13)
    assert "needs about 5.64 GiB" in issue.message and "1,514,487,361 parameters" in issue.message

    assert main(["build", str(big_spec), "--max-memory", "2GiB"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{big_spec}:6:13: decoder.channels: this model needs about 5.64 GiB")
    assert "more than the limit of 2 GiB" in err and "Traceback" not in err


def test_largest_valid_spec_is_refused_by_default() -> None:
    # About 1.5 TiB of parameters: the default limit (half the available memory) must stop it before allocation.
    specseg.load_spec(LARGEST_SPEC)  # valid: channels and classes are within their caps
    with pytest.raises(MemoryLimitError) as caught:
        specseg.build(LARGEST_SPEC)
    assert caught.value.estimate > 1 << 40
    assert "50% of the" in str(caught.value) and "TiB" in str(caught.value)


def test_test_pass_of_a_huge_mask_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Few parameters, but `specseg build`'s test pass would allocate a 1x100000x256x256 mask (and more) at once.
    spec = tmp_path / "classes.yaml"
    spec.write_text("specseg: 1\nencoder: {name: resnet18, depth: 3}\ndecoder: {architecture: unet, channels: [16, 16, 16]}\nhead: {classes: 100000}\n")
    assert main(["build", str(spec), "--max-memory", "8GiB"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}:4:17: head.classes: building this model and running it on a (1, 3, 256, 256) input needs about 73.")
    assert main(["build", str(spec), "--max-memory", "8GiB", "--input-shape", "1,3,32,32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["mask"] == [1, 100000, 32, 32]


def test_largest_valid_spec_dry_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "largest.json"
    spec.write_text(json.dumps(LARGEST_SPEC))
    assert main(["build", str(spec), "--dry-run", "--json", "--input-shape", "1,3,64,64"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["parameters"]["total"] > 3e11
    assert summary["outputs"] == {"mask": [1, 100000, 64, 64]}


def test_dry_run_counts_equal_a_real_build() -> None:
    spec = specseg.load_spec(SMALL_SPEC)
    summary = dry_run(spec, input_shape=(2, 3, 64, 64))
    model = specseg.build(spec)
    expected = {part: sum(p.numel() for p in getattr(model, part).parameters()) for part in ("encoder", "decoder", "segmentation_head", "classification_head")}
    params = summary["parameters"]
    assert {k: params[k] for k in expected} == expected
    assert params["total"] == params["trainable"] == sum(p.numel() for p in model.parameters())
    assert summary["memory"]["parameters_bytes"] == 4 * params["total"]
    assert summary["memory"]["buffers_bytes"] == sum(b.numel() * b.element_size() for b in model.buffers())
    with torch.no_grad():
        mask, labels = model.eval()(torch.zeros(2, 3, 64, 64))
    assert summary["outputs"] == {"mask": list(mask.shape), "labels": list(labels.shape)}


def test_flops_are_counted_per_part() -> None:
    summary = dry_run(specseg.load_spec(SMALL_SPEC), input_shape=(2, 3, 64, 64))
    flops = summary["flops"]
    # The head is one 3x3 convolution from 16 channels to 1 class at full resolution: 2 FLOPs per multiply-add.
    assert flops["segmentation_head"] == 2 * 2 * 64 * 64 * 16 * 1 * 3 * 3
    assert flops["classification_head"] == 2 * 2 * 128 * 3  # Linear(128 -> 3) on 2 pooled vectors
    assert flops["total"] == sum(v for k, v in flops.items() if k != "total")
    assert flops["encoder"] > 0 and flops["decoder"] > 0


def test_dry_run_json_structure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "small.json"
    spec.write_text(json.dumps({**SMALL_SPEC, "aux_params": None}))
    assert main(["build", str(spec), "--dry-run", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary) == ["spec", "name", "architecture", "encoder", "dry_run", "parameters", "memory", "input_shape", "outputs", "flops"]
    assert summary["dry_run"] is True and summary["input_shape"] == [1, 3, 256, 256]
    assert list(summary["parameters"]) == ["total", "trainable", "encoder", "decoder", "segmentation_head", "classification_head"]
    assert summary["parameters"]["classification_head"] is None and summary["flops"]["classification_head"] is None
    assert list(summary["memory"]) == ["parameters_bytes", "buffers_bytes", "total_bytes"]
    assert list(summary["flops"]) == ["total", "encoder", "decoder", "segmentation_head", "classification_head"]


def test_dry_run_text_and_no_download(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = tmp_path / "pretrained.yaml"
    spec.write_text("specseg: 1\nencoder: {name: resnet34, weights: imagenet}\ndecoder: {architecture: fpn}\n")
    assert main(["build", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "flops:" in out and "GFLOPs" in out and "meta device" in out
    assert "encoder:              21,284,672" in out


def test_dry_run_usage_errors(big_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(big_spec), "--dry-run", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "--dry-run builds nothing to write" in capsys.readouterr().err
    assert main(["build", str(big_spec), "--dry-run", "--input-shape", "1,4,64,64"]) == 2
    assert "expected 3 input channels" in capsys.readouterr().err
    assert main(["build", str(big_spec), "--max-memory", "lots"]) == 2
    assert "--max-memory: not a memory size: 'lots'" in capsys.readouterr().err


def test_dry_run_reports_a_refusal_of_the_build_as_a_spec_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An encoder with params is checked by the (meta) build, whose refusal is a located exit 1, not a usage error."""
    spec = tmp_path / "dilated.yaml"
    spec.write_text(
        "specseg: 1\nencoder:\n  name: tu-vgg11\n  params: {drop_rate: 0.0}\n  output_stride: 16\ndecoder: {architecture: deeplabv3plus}\n"
    )
    assert main(["build", str(spec), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:5:18: encoder.output_stride: timm model 'vgg11' cannot be dilated" in err and "--input-shape" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8GiB", 8 << 30), ("500MB", 500_000_000), ("1.5G", 3 << 29), ("1024", 1024), ("64 kib", 65536), ("2T", 2 << 40), ("off", None)],
)
def test_parse_size(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "8 gigs", "-1GB", "0.1B", "1e9"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_guard_lets_normal_builds_through(capsys: pytest.CaptureFixture[str]) -> None:
    model = specseg.build(SMALL_SPEC, max_memory="1GiB")
    assert sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(MemoryLimitError, match="more than the limit of 1 MiB"):
        specseg.build(SMALL_SPEC, max_memory=1 << 20)
