"""Spec validation: defaults, strict types, unknown keys, cross-field rules, located errors.

The corpus under ``tests/corpus/invalid`` documents the error for each
kind of mistake: its first line says ``# expect: LINE:COL PATH :: fragment``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import specseg
from specseg import SpecError
from specseg.errors import format_path
from tests.conftest import CORPUS

INVALID_YAML = sorted((CORPUS / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"# expect: (\d+):(\d+) (\S+) :: (.+)")

#: JSON cannot hold comments; their expectations live here.
INVALID_JSON = {
    "json-trailing-comma.json": (1, 51, "<root>", "JSON syntax error"),
    "json-duplicate.json": (3, 2, "<root>", "duplicate key 'specseg'"),
    "json-type.json": (3, 22, "head.classes", "valid integer"),
}


def _expectation(path: Path) -> tuple[int, int, str, str]:
    if path.suffix == ".json":
        return INVALID_JSON[path.name]
    match = EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else "")
    assert match, f"{path.name} lacks an '# expect:' first line"
    line, col, spec_path, fragment = match.groups()
    return int(line), int(col), spec_path, fragment


@pytest.mark.parametrize("path", INVALID_YAML + sorted((CORPUS / "invalid").glob("*.json")), ids=lambda p: p.name)
def test_invalid_corpus_reports_location_and_reason(path: Path) -> None:
    line, col, spec_path, fragment = _expectation(path)
    with pytest.raises(SpecError) as info:
        specseg.load_spec(path)
    issues = info.value.issues
    assert any(
        i.location is not None
        and (i.location.line, i.location.column) == (line, col)
        and format_path(i.path) == spec_path
        and fragment in i.message
        for i in issues
    ), "\n".join(i.format() for i in issues)
    for issue in issues:
        assert issue.location is not None and issue.location.file == str(path)


@pytest.mark.parametrize("path", sorted((CORPUS / "valid").iterdir()), ids=lambda p: p.name)
def test_valid_corpus_loads(path: Path) -> None:
    assert isinstance(specseg.load_spec(path), specseg.ModelSpec)


def test_all_problems_of_a_file_are_reported_together(tmp_spec) -> None:
    path = tmp_spec(
        "specseg: 1\n"
        "encoder:\n"
        "  name: resnet34\n"
        "  in_chanels: 3\n"
        "decoder:\n"
        "  architecture: unet\n"
        "  channels: [256, 128, '64', 32, 16]\n"
        "head:\n"
        "  classes: '5'\n"
    )
    with pytest.raises(SpecError) as info:
        specseg.load_spec(path)
    lines = [(i.location.line, format_path(i.path)) for i in info.value.issues]
    assert lines == [(4, "encoder.in_chanels"), (7, "decoder.channels[2]"), (9, "head.classes")]


def test_defaults_are_smps_unet_defaults() -> None:
    spec = specseg.load_spec({"specseg": 1, "encoder": {"name": "resnet34"}, "decoder": {"architecture": "unet"}})
    assert spec.encoder.model_dump() == {
        "name": "resnet34",
        "weights": None,
        "depth": 5,
        "in_channels": 3,
        "output_stride": 32,
        "output_indices": None,
        "params": {},
    }
    assert spec.decoder.model_dump() == {
        "architecture": "unet",
        "channels": [256, 128, 64, 32, 16],
        "norm": "batchnorm",
        "attention": None,
        "interpolation": "nearest",
    }
    assert spec.head.model_dump() == {"classes": 1, "activation": None, "upsampling": 1, "kernel_size": 3}
    assert spec.aux_params is None and spec.seed is None


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_unet_channels_default_follows_depth(depth: int) -> None:
    spec = specseg.load_spec({"specseg": 1, "encoder": {"depth": depth}, "decoder": {"architecture": "unet"}})
    assert spec.decoder.channels == [256, 128, 64, 32, 16][:depth]


def test_cross_field_error_names_both_locations(tmp_spec) -> None:
    path = tmp_spec("specseg: 1\nencoder:\n  depth: 4\ndecoder:\n  architecture: unet\n  channels: [8, 8, 8]\n")
    with pytest.raises(SpecError) as info:
        specseg.load_spec(path)
    (issue,) = info.value.issues
    text = issue.format()
    assert text.startswith(f"{path}:6:13: decoder.channels: has 3 entries but encoder.depth is 4")
    assert f"see encoder.depth at {path}:3:10" in text


def test_library_model_validate_reports_the_located_issues() -> None:
    """ModelSpec.model_validate on a bad mapping names each problem with its spec path, as the CLI does."""
    from pydantic import ValidationError

    from specseg.spec.model import ModelSpec

    bad = {
        "specseg": 1,
        "encoder": {"depth": 4},
        "decoder": {"architecture": "unet", "channels": [8, 8, 8]},
        "head": {"classes": 3},
        "loss": {"name": "dice", "mode": "binary"},
    }
    with pytest.raises(ValidationError) as info:
        ModelSpec.model_validate(bad)
    text = str(info.value)
    assert "cross-field problems" not in text
    assert "decoder.channels: has 3 entries but encoder.depth is 4" in text and "(see encoder.depth)" in text
    assert "loss.mode: mode 'binary' needs a head with 1 class" in text and "(see head.classes)" in text


def test_every_specseg_error_derives_from_one_base() -> None:
    from specseg.artifacts import ArtifactError
    from specseg.cli.usage import UsageError
    from specseg.dryrun import MemoryLimitError
    from specseg.encoders.features import EncoderContractError
    from specseg.encoders.pretrained import WeightsRequestError
    from specseg.encoders.registry import PluginError
    from specseg.errors import EncoderBuildError, NotDilatableError, SpecsegError
    from specseg.export import ExportError
    from specseg.interop.smp_config import SMPConfigError
    from specseg.weights import WeightsError

    for cls in (SpecError, MemoryLimitError, ArtifactError, ExportError, UsageError, WeightsError, WeightsRequestError,
                PluginError, EncoderBuildError, NotDilatableError, SMPConfigError, EncoderContractError):
        assert issubclass(cls, SpecsegError), cls
    # Classes that were ValueErrors stay ValueErrors, for code that catches them so.
    assert issubclass(SMPConfigError, ValueError) and issubclass(NotDilatableError, ValueError)


def test_encoder_build_errors_carry_their_spec_path() -> None:
    from specseg.errors import EncoderBuildError, Location, NotDilatableError

    exc = EncoderBuildError("too deep", "depth")
    issue = exc.issue(lambda path: Location("spec.yaml", 3, 10) if path == ("encoder", "depth") else None)
    assert (exc.field, issue.path, str(issue.location)) == ("depth", ("encoder", "depth"), "spec.yaml:3:10")
    assert NotDilatableError("no").path == ("output_stride",)


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(SpecError) as info:
        specseg.load_spec("specseg: 1\ndecoder: {architecture: unet}\nhead: {clases: 2}\n")
    message = info.value.issues[0].message
    assert "did you mean 'classes'?" in message
    assert "Valid keys here: classes, activation, upsampling, kernel_size" in message


def test_load_spec_accepts_path_text_json_and_dict(tmp_spec) -> None:
    text = "specseg: 1\ndecoder: {architecture: unet}\nhead: {classes: 2}\n"
    expected = specseg.load_spec(text)
    assert specseg.load_spec(tmp_spec(text)) == expected
    assert specseg.load_spec(str(tmp_spec(text, "b.yml"))) == expected
    assert specseg.load_spec('{"specseg": 1, "decoder": {"architecture": "unet"}, "head": {"classes": 2}}') == expected
    assert specseg.load_spec({"specseg": 1, "decoder": {"architecture": "unet"}, "head": {"classes": 2}}) == expected


def test_dict_errors_carry_spec_paths() -> None:
    with pytest.raises(SpecError) as info:
        specseg.load_spec({"specseg": 1, "decoder": {"architecture": "unet", "channels": [1, 2, "x", 4, 5]}})
    assert [format_path(i.path) for i in info.value.issues] == ["decoder.channels[2]"]


@pytest.mark.parametrize(("channels", "suggestion"), [(16, "e.g. 32"), (100, "e.g. 96 or 128")])
def test_fpn_group_rule_suggests_distinct_multiples(channels: int, suggestion: str) -> None:
    """Below 32 one multiple is nearest; the message does not offer it twice ("e.g. 32 or 32")."""
    with pytest.raises(SpecError) as info:
        specseg.load_spec({"specseg": 1, "decoder": {"architecture": "fpn", "segmentation_channels": channels}})
    assert info.value.issues[0].message.endswith(suggestion)


def test_metadata_is_carried_unchanged() -> None:
    metadata = {"owner": "team", "nested": {"list": [1, 2.5, None, True], "s": "x"}}
    spec = specseg.load_spec({"specseg": 1, "decoder": {"architecture": "unet"}, "metadata": metadata})
    assert spec.metadata == metadata
