"""The timm index: torch-free verdicts for `tu-` encoders, and the fixes it rests on (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from specseg.encoders import timm_index
from specseg.encoders.sizes import SizeRule, rule_from_sizes
from tests.conftest import ROOT


def _spec(encoder: str, architecture: str = "unet") -> str:
    return f"specseg: 1\nencoder: {{{encoder}}}\ndecoder: {{architecture: {architecture}}}\n"


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys, time\n"
        "from specseg.cli.main import main\n"
        "start = time.perf_counter()\n"
        "rc = main(['validate', sys.argv[1]])\n"
        "elapsed = time.perf_counter() - start\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm'))\n"
        "print(rc, heavy, elapsed)\n"
    )
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120)


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("tu-ResNet18", "'tu-resnet18'"), ("tu-resnet_does_not_exist", None), ("tu-convnext_atoo", "'tu-convnext_atto'")],
)
def test_unknown_timm_names_fail_validate_without_torch(name: str, suggestion: str | None, tmp_spec) -> None:
    path = tmp_spec(_spec(f"name: {name}"))
    result = _validate(path)
    rc, rest = result.stdout.split(" ", 1)
    assert rc == "1" and rest.startswith("[]"), result.stdout  # refused, torch and timm not imported
    assert f"{path}:2:17: encoder.name: timm has no model named" in result.stderr
    if suggestion:
        assert "did you mean" in result.stderr and suggestion in result.stderr


def test_validate_of_a_tu_spec_stays_fast(tmp_spec) -> None:
    path = tmp_spec(_spec("name: tu-ResNet18"))
    # The index lookup and suggestions; the issue's budget is 0.3 s for all of validate on an idle machine.
    start = time.perf_counter()
    timm_index.index.cache_clear()
    assert timm_index.name_problem("tu-ResNet18") is not None
    assert time.perf_counter() - start < 1.0
    assert _validate(path).stdout.startswith("1 []")


def test_a_wrong_pretrained_tag_is_refused_with_the_tags() -> None:
    problem = timm_index.name_problem("tu-resnet18.a1_in1kk")
    assert problem is not None and "'tu-resnet18.a1_in1k'" in problem


def test_the_index_covers_the_installed_timm() -> None:
    import timm

    index = timm_index.index()
    assert index["timm"] == timm.__version__, "regenerate: python -m specseg.encoders.timm_index_build --refresh"
    assert set(index["models"]) == set(timm.list_models())
    # Every model has a verdict found on the model itself (an interrupted refresh leaves names with family and tags only).
    unexamined = sorted(name for name, entry in index["models"].items() if set(entry) <= {"f", "t"})
    assert not unexamined, f"python -m specseg.encoders.timm_index_build --refresh {' '.join(unexamined[:5])} ..."


# --- what validate refuses, located ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "where", "words"),
    [
        ("name: tu-cpubone_nano, output_stride: 16", "encoder.output_stride", "cannot be dilated to output_stride 16"),
        ("name: tu-swinv2_cr_tiny_ns_224, output_stride: 8", "encoder.output_stride", "cannot be dilated to output_stride 8"),
        ("name: tu-convnext_atto, depth: 1", "encoder.depth", "no features at stride 2"),
        ("name: tu-vit_tiny_patch16_224", "encoder.name", "feature strides [16, 16, 16]"),
    ],
)
def test_validate_refuses_what_would_not_build(encoder: str, where: str, words: str, tmp_spec) -> None:
    from specseg import SpecError
    from specseg.loader import load_spec

    path = tmp_spec(_spec(encoder))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    issue = caught.value.issues[0]
    assert ".".join(map(str, issue.path)) == where and words in issue.message, str(caught.value)
    assert issue.location is not None and issue.location.line == 2


# --- sizes --------------------------------------------------------------------------------------------


def test_size_rules() -> None:
    tried = range(32, 513, 32)
    assert rule_from_sizes(tried, tried) is None
    assert rule_from_sizes([224], list(tried) + [448]) == SizeRule(224, 224, 224)
    assert rule_from_sizes([224, 448], list(tried) + [448]) == SizeRule(224, 224)
    assert rule_from_sizes([s for s in tried if s >= 64], tried) == SizeRule(32, 64)
    assert SizeRule(224, 224, 224).describe() == "224 only"
    assert SizeRule(224, 224).nearest(256) == 224 and SizeRule(224, 224).nearest(400) == 448
    assert SizeRule(224, 224).combined(32) == SizeRule(224, 224)


def test_fixed_size_encoder_declares_its_sizes(tmp_spec) -> None:
    import torch

    path = tmp_spec(_spec("name: tu-swinv2_cr_tiny_ns_224"))
    result = subprocess.run(
        [sys.executable, "-m", "specseg", "build", str(path), "--dry-run", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outputs"]["mask"] == [1, 1, 224, 224]
    from specseg.builder import resolve
    from specseg.dryrun import meta_model

    spec, doc, base = resolve(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = meta_model(spec, doc, base)
    assert model.default_input_size() == 224
    with pytest.raises(ValueError, match=r"the encoder \(swinv2_cr_tiny_ns_224\) takes input heights and widths of 224 only; got 256x256"):
        model.check_input_shape(torch.zeros(1, 3, 256, 256, device="meta"))


# --- the models SMP builds ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dla46_c", "tresnet_m"])
def test_first_feature_levels_as_smp(name: str) -> None:
    """dla's and tresnet's levels come from timm's full feature list, as in SMP: same state dict and outputs."""
    smp = pytest.importorskip("segmentation_models_pytorch")
    import torch

    import specseg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = smp.Unet(f"tu-{name}", encoder_weights=None).eval()
        ours = specseg.build({"specseg": 1, "encoder": {"name": f"tu-{name}"}, "decoder": {"architecture": "unet"}}).eval()
    state = reference.state_dict()
    assert list(state) == list(ours.state_dict())
    ours.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(reference(x), ours(x))


def test_index_entries_match_the_models() -> None:
    """A sample of the shipped verdicts, found again on the current code (stale index => refresh)."""
    from specseg.encoders.timm_index_build import examine

    for name in ("resnet10t", "edgenext_xx_small", "cpubone_nano"):
        stored = dict(timm_index.entry(name))
        stored.pop("t", None)
        assert examine(name) == stored, f"{name}: python -m specseg.encoders.timm_index_build --refresh {name}"


def test_builtin_verdicts_cover_the_catalogue() -> None:
    """Every built-in name built by specseg's own modules has dilation verdicts (else: --refresh-builtins)."""
    from specseg.encoders.registry import registry

    own = {e.name for e in registry.entries() if e.is_builtin and (e.timm_model is None or e.timm_options)}
    missing = sorted(own - set(timm_index.index().get("builtins", {})))
    assert not missing, f"python -m specseg.encoders.timm_index_build --refresh-builtins ({missing[:5]} ...)"


# --- packaging -------------------------------------------------------------------------------


def test_a_built_wheel_ships_the_index(tmp_path: Path) -> None:
    """`pip install .` (the README's main job) must install the index that `validate` reads, not only the code."""
    import shutil
    import zipfile

    # A clean copy: a build folder or egg-info left in the checkout would hide a missing package-data rule.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "specseg", source / "specseg", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("specseg-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    package = source / "specseg"
    data = sorted(p.relative_to(source).as_posix() for p in package.rglob("*") if p.is_file() and p.suffix != ".py")
    assert data, "the package has data files"
    assert [p for p in data if p not in shipped] == []
