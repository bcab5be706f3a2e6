"""The ``specseg`` command line: output, exit codes, and no tracebacks.

Commands run in subprocesses, as pipelines and pre-commit hooks run them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "specseg", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_version() -> None:
    import specseg

    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"specseg {specseg.__version__}"


def test_validate_valid_specs_exits_0() -> None:
    result = run("validate", "specs/unet-resnet34.yaml", *map(str, sorted((CORPUS / "valid").iterdir())))
    assert result.returncode == 0, result.stderr
    assert "specs/unet-resnet34.yaml: ok" in result.stdout


@pytest.mark.parametrize(
    "name",
    ["typo-key.yaml", "string-for-int.yaml", "channels-length.yaml", "duplicate-key.yaml", "yaml-syntax.yaml"],
)
def test_validate_reports_file_line_column_and_exits_1(name: str) -> None:
    path = CORPUS / "invalid" / name
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    position, spec_path = expect.split(" ")[:2]
    result = run("validate", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}:{position}: {spec_path}: ")
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_reports_every_file_and_fails_if_any_fails() -> None:
    good, bad = ROOT / "specs" / "unet-resnet34.yaml", CORPUS / "invalid" / "typo-key.yaml"
    result = run("validate", str(good), str(bad), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [f["valid"] for f in report["files"]] == [True, False]
    (issue,) = report["files"][1]["issues"]
    assert issue == {
        "file": str(bad),
        "line": 5,
        "column": 3,
        "path": "encoder.in_chanels",
        "message": issue["message"],
    }


def test_validate_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from specseg.cli.main import main\n"
        "code = main(['validate', 'specs/unet-resnet34.yaml', 'tests/corpus/invalid/typo-key.yaml',\n"
        "             'specs/multitask-building-footprints.yaml', 'tests/corpus/invalid/v2-from-unknown.yaml'])\n"
        "assert code == 1, code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'numpy'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_build_json_matches_smp_parameter_count() -> None:
    smp = pytest.importorskip("segmentation_models_pytorch")
    result = run("build", "specs/unet-resnet34.yaml", "--json", "--input-shape", "2,3,64,96")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    reference = smp.Unet("resnet34", encoder_weights=None)
    assert summary["parameters"]["total"] == sum(p.numel() for p in reference.parameters())
    assert summary["parameters"]["trainable"] == summary["parameters"]["total"]
    assert summary["architecture"] == "unet" and summary["encoder"] == "resnet34"
    assert summary["outputs"] == {"mask": [2, 1, 64, 96]}


def test_build_text_summary() -> None:
    result = run("build", "specs/unet-resnet34.yaml", "--input-shape", "1,3,64,64")
    assert result.returncode == 0, result.stderr
    assert "parameters:   24,436,369 total, 24,436,369 trainable" in result.stdout
    assert "mask:         (1, 1, 64, 64)" in result.stdout


def test_build_invalid_spec_exits_1_without_traceback() -> None:
    result = run("build", str(CORPUS / "invalid" / "typo-key.yaml"))
    assert result.returncode == 1
    assert "encoder.in_chanels: unknown key" in result.stderr and "Traceback" not in result.stderr


def test_build_unknown_timm_model_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("specseg: 1\nencoder:\n  name: tu-resnet_18\ndecoder: {architecture: unet}\n")
    result = run("build", str(spec))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{spec}:3:9: encoder.name: timm has no model named 'resnet_18'")
    assert "did you mean" in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["build", "specs/unet-resnet34.yaml", "--input-shape", "1,3,64"], "four positive integers"),
        (["build", "specs/unet-resnet34.yaml", "--input-shape", "1,1,64,64"], "expected 3 input channels"),
        (["frobnicate"], "invalid choice"),
        (["validate"], "required"),
    ],
)
def test_bad_usage_exits_2(args: list[str], fragment: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_schema_command_prints_the_committed_schema(tmp_path: Path) -> None:
    result = run("schema")
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schemas" / "specseg.schema.json").read_text(encoding="utf-8")
    out = tmp_path / "schema.json"
    assert run("schema", "-o", str(out)).returncode == 0
    assert out.read_text(encoding="utf-8") == result.stdout


def test_list_architectures_and_encoders() -> None:
    archs = json.loads(run("list", "architectures", "--json").stdout)
    assert {"name": "unet", "smp_class": "Unet"}.items() <= archs[[a["name"] for a in archs].index("unet")].items()
    encoders = run("list", "encoders", "--filter", "resnet*")
    assert encoders.returncode == 0
    assert {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"} <= {
        line.split()[0] for line in encoders.stdout.splitlines()
    }


# --- several files per command (pre-commit passes every staged file at once) ----------------------


def test_fmt_check_and_hash_take_several_files_and_report_each(tmp_path: Path) -> None:
    messy = tmp_path / "messy.yaml"
    messy.write_text("decoder: {architecture: unet}\nspecseg: 1\n", encoding="utf-8")
    good = "specs/unet-resnet34.yaml"
    bad = str(CORPUS / "invalid" / "typo-key.yaml")
    result = run("fmt", "--check", good, str(messy), bad)
    assert result.returncode == 1
    assert f"{good}: canonical" in result.stdout
    assert f"{messy}: not in canonical form" in result.stderr
    assert f"{bad}:5:3: encoder.in_chanels: unknown key" in result.stderr
    assert run("fmt", "--check", good, "specs/fpn-resnet34.yaml").returncode == 0
    refused = run("fmt", good, "specs/fpn-resnet34.yaml")
    assert refused.returncode == 2 and "several files need --check" in refused.stderr

    single = run("hash", good).stdout.strip()
    both = run("hash", good, "specs/fpn-resnet34.yaml")
    assert both.returncode == 0
    lines = both.stdout.splitlines()
    assert lines[0] == f"{single}  {good}" and lines[1].endswith("  specs/fpn-resnet34.yaml")
    listed = json.loads(run("hash", good, "specs/fpn-resnet34.yaml", "--json").stdout)
    assert [r["spec"] for r in listed] == [good, "specs/fpn-resnet34.yaml"] and listed[0]["hash"] == single
    with_bad = run("hash", good, bad)
    assert with_bad.returncode == 1 and f"{single}  {good}" in with_bad.stdout and f"{bad}:5:3:" in with_bad.stderr


# --- what a newcomer tripped over ------------------------------------------------------------------


def test_set_without_equals_is_a_usage_error() -> None:
    result = run("validate", "specs/unet-resnet34.yaml", "--set", "head.classes")
    assert result.returncode == 2
    assert "argument --set: expected PATH=VALUE, e.g. head.classes=5; got 'head.classes'" in result.stderr


def test_diff_exit_code_follows_git(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text((ROOT / "specs" / "unet-resnet34.yaml").read_text(encoding="utf-8").replace("classes: 1", "classes: 4"))
    assert "classes: 1" in (ROOT / "specs" / "unet-resnet34.yaml").read_text(encoding="utf-8")
    plain = run("diff", "specs/unet-resnet34.yaml", str(other))
    assert plain.returncode == 0 and "~ head.classes: 1 -> 4" in plain.stdout
    assert run("diff", "--exit-code", "specs/unet-resnet34.yaml", str(other)).returncode == 1
    same = run("diff", "--exit-code", "specs/unet-resnet34.yaml", "specs/unet-resnet34.yaml")
    assert same.returncode == 0 and same.stdout.strip() == "no semantic differences"


def test_check_encoder_wrong_params_key_is_one_located_message() -> None:
    result = run("check-encoder", "resnet18", "--params", '{"widht": 8}')
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("--params:1:1: encoder.params.widht: ") and "takes no params (got 'widht')" in lines[0]


def test_belongs_to_hint_ends_its_sentence(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("specseg: 1\ndecoder:\n  architecture: unet\n  pyramid_channels: 128\n", encoding="utf-8")
    result = run("validate", str(spec))
    assert result.returncode == 1
    assert "it belongs to: fpn. Valid keys here: architecture," in result.stderr


def test_build_prints_the_preprocessing_settings() -> None:
    result = run("build", "specs/unet-resnet34.yaml", "--input-shape", "1,3,64,64")
    assert result.returncode == 0, result.stderr
    assert "preprocessing: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), input range (0.0, 1.0), RGB" in result.stdout
    summary = json.loads(run("build", "specs/unet-resnet34.yaml", "--input-shape", "1,3,64,64", "--json").stdout)
    assert summary["preprocessing"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "input_space": "RGB", "input_range": [0.0, 1.0]}


@pytest.mark.parametrize(
    "what, header, row",
    [
        ("architectures", ["NAME", "SMP CLASS", "DEPTH", "OUTPUT STRIDE", "HEAD UPSAMPLING", "ANY INPUT SIZE", "DESCRIPTION"], ["fpn", "FPN", "5", "32", "4", "no"]),
        ("encoders", ["NAME", "SOURCE", "PARAMS", "OUT CHANNELS", "TIMM MODEL", "WEIGHTS"], ["resnet18", "builtin", "11,176,512", "3,64,64,128,256,512", "-", "imagenet,ssl,swsl"]),
    ],
)
def test_list_text_shows_the_columns(what: str, header: list[str], row: list[str]) -> None:
    result = run("list", what, "--filter", row[0])
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert first.split("  ") and [c.strip() for c in first.split("  ") if c.strip()] == header
    assert [c.strip() for c in second.split("  ") if c.strip()][: len(row)] == row
