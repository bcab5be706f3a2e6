"""Specs as versioned artifacts: extends, --set overrides, canonical form, hash, diff, migrations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import specseg
from specseg import SpecError
from specseg.errors import format_path
from specseg.spec import migrations
from specseg.spec.canonical import canonical_json, diff, spec_hash
from tests.conftest import ROOT, SPECS

BASE = "specseg: 1\nencoder:\n  name: resnet18\n  depth: 4\ndecoder:\n  architecture: unet\n  channels: [64, 32, 16, 8]\nhead:\n  classes: 3\n"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "specseg", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_extends_deep_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    write(tmp_path, "bases/base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: bases/base.yaml\ndecoder:\n  channels: [32, 16, 8, 8]\nhead:\n  activation: sigmoid\n")
    spec = specseg.load_spec(child)
    assert spec.encoder.name == "resnet18" and spec.encoder.depth == 4
    assert spec.decoder.channels == [32, 16, 8, 8]
    assert (spec.head.classes, spec.head.activation) == (3, "sigmoid")


def test_extends_list_applies_in_order_and_chains(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", "extends: a.yaml\nhead: {classes: 5}\n")
    write(tmp_path, "c.yaml", "head: {classes: 7, activation: tanh}\n")
    child = write(tmp_path, "d.yaml", "extends: [b.yaml, c.yaml]\nseed: 1\n")
    spec = specseg.load_spec(child)
    assert (spec.head.classes, spec.head.activation, spec.seed, spec.encoder.depth) == (7, "tanh", 1, 4)


def test_extends_error_points_into_the_file_where_the_value_was_written(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", BASE.replace("classes: 3", "classes: '3'"))
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nencoder:\n  in_channels: 0\n")
    with pytest.raises(SpecError) as info:
        specseg.load_spec(child)
    located = {format_path(i.path): str(i.location) for i in info.value.issues}
    assert located == {"encoder.in_channels": f"{child}:3:16", "head.classes": f"{base}:9:12"}


def test_extends_cycle_is_detected(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: b.yaml\nspecseg: 1\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(SpecError) as info:
        specseg.load_spec(tmp_path / "a.yaml")
    (issue,) = info.value.issues
    assert "extends cycle: a.yaml -> b.yaml -> a.yaml" in issue.message
    assert issue.location.file == str(tmp_path / "b.yaml") and issue.location.line == 1


def test_extends_missing_file_is_located(tmp_path: Path) -> None:
    child = write(tmp_path, "child.yaml", "specseg: 1\nextends: nope.yaml\n")
    with pytest.raises(SpecError) as info:
        specseg.load_spec(child)
    (issue,) = info.value.issues
    assert "no such file" in issue.message and (issue.location.line, issue.location.column) == (2, 10)


def test_set_overrides_values_and_validates_them(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", BASE)
    spec = specseg.load_spec(path, ["head.classes=5", "decoder.channels=[16, 16, 8, 8]", "aux_params.classes=2"])
    assert spec.head.classes == 5 and spec.decoder.channels == [16, 16, 8, 8] and spec.aux_params.classes == 2
    with pytest.raises(SpecError) as info:
        specseg.load_spec(path, ["head.classes=five", "decoder.channels[9]=1"])
    messages = [i.format() for i in info.value.issues]
    assert messages == ["--set decoder.channels[9]=1:1:21: decoder.channels[9]: no list item [9] to set"]
    with pytest.raises(SpecError) as info:
        specseg.load_spec(path, ["head.classes=five"])
    assert info.value.issues[0].format().startswith("--set head.classes=five:1:14: head.classes: Input should be a valid integer")


@pytest.mark.parametrize("override, fragment", [("head.classes", "PATH=VALUE"), ("head..x=1", "invalid spec path"), ("seed=!!python/name:os.system", "not allowed")])
def test_bad_overrides_are_errors(override: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        specseg.load_spec(BASE, [override])
    assert fragment in info.value.issues[0].message


def test_cli_set_on_build_and_validate(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", BASE)
    result = cli("build", str(path), "--set", "head.classes=6", "--input-shape", "1,3,64,64", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outputs"]["mask"] == [1, 6, 64, 64]
    result = cli("validate", str(path), "--set", "encoder.depth=3")
    assert result.returncode == 1
    assert "decoder.channels: has 4 entries but encoder.depth is 3" in result.stderr
    assert "--set encoder.depth=3:1:15" in result.stderr


def test_hash_ignores_formatting_order_comments_defaults_and_extends(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", BASE)
    b = write(
        tmp_path,
        "b.yaml",
        "# reordered, with defaults written out and flow style\n"
        "head: {kernel_size: 3, classes: 3, upsampling: 1}\n"
        "decoder: {channels: [64, 32, 16, 8], architecture: unet, norm: batchnorm}\n"
        "encoder: {in_channels: 3, name: resnet18, depth: 4, output_stride: 32, weights: null}\n"
        "specseg: 1\n",
    )
    write(tmp_path, "base.yaml", BASE.replace("  classes: 3\n", ""))
    c = write(tmp_path, "c.yaml", "extends: base.yaml\nhead: {classes: 3}\n")
    j = write(tmp_path, "j.json", json.dumps(specseg.load_spec(a).model_dump(mode="json")))
    hashes = {spec_hash(specseg.load_spec(p)) for p in (a, b, c, j)}
    assert len(hashes) == 1
    assert cli("hash", str(a)).stdout.strip() == hashes.pop()
    changed = write(tmp_path, "d.yaml", BASE.replace("classes: 3", "classes: 4"))
    assert spec_hash(specseg.load_spec(changed)) != spec_hash(specseg.load_spec(a))


def test_diff_names_each_changed_path(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", BASE)
    b = write(tmp_path, "b.yaml", BASE.replace("classes: 3", "classes: 4") + "aux_params: {classes: 2}\n")
    changes = diff(specseg.load_spec(a), specseg.load_spec(b))
    assert [(c["path"], c["change"], c["a"], c["b"]) for c in changes] == [
        ("head.classes", "changed", 3, 4),
        ("aux_params", "changed", None, {"classes": 2, "pooling": "avg", "dropout": 0.2, "activation": None}),
    ]
    result = cli("diff", str(a), str(b))
    assert result.returncode == 0 and "~ head.classes: 3 -> 4" in result.stdout
    assert cli("diff", str(a), str(a)).stdout.strip() == "no semantic differences"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_specs_are_canonical_and_fmt_round_trips(path: Path) -> None:
    result = cli("fmt", str(path), "--check")
    assert result.returncode == 0, result.stderr
    resolved = cli("fmt", str(path), "--resolved")
    assert resolved.returncode == 0
    assert specseg.load_spec(resolved.stdout) == specseg.load_spec(path)


def test_fmt_check_fails_on_non_canonical_file_and_writes_canonical_text(tmp_path: Path) -> None:
    messy = write(tmp_path, "m.yaml", "# header kept\nhead: {classes: 3}\ndecoder: {architecture: unet}\nspecseg: 1\n")
    assert cli("fmt", str(messy), "--check").returncode == 1
    out = tmp_path / "out.yaml"
    assert cli("fmt", str(messy), "-o", str(out)).returncode == 0
    assert out.read_text() == "# header kept\nspecseg: 1\ndecoder:\n  architecture: unet\nhead:\n  classes: 3\n"
    assert cli("fmt", str(out), "--check").returncode == 0
    refused = cli("fmt", str(messy), "-o", str(out))
    assert refused.returncode == 2 and "--force" in refused.stderr


def test_canonical_json_is_sorted_and_compact() -> None:
    text = canonical_json(specseg.load_spec(BASE))
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_migrations_upgrade_old_versions_in_a_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend version 3 is current: a version-1 file goes through 1 -> 2 -> 3.
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 3)
    monkeypatch.setitem(migrations.MIGRATIONS, 1, lambda d: {**d, "renamed": d.get("old")})
    monkeypatch.setitem(migrations.MIGRATIONS, 2, lambda d: {k: v for k, v in d.items() if k != "old"})
    assert migrations.migrate({"specseg": 1, "old": "x"}) == {"specseg": 3, "renamed": "x"}
    with pytest.raises(ValueError, match="version 4"):
        migrations.migrate({"specseg": 4})


def test_newer_format_version_is_a_located_error() -> None:
    with pytest.raises(SpecError) as info:
        specseg.load_spec("specseg: 3\ndecoder: {architecture: unet}\n")
    (issue,) = info.value.issues
    assert issue.path == ("specseg",) and "reads versions up to 2" in issue.message
