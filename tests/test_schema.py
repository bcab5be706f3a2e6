"""The JSON Schema: generated from the models, committed, and agreeing with Pydantic."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import specseg
from specseg import SpecError
from specseg.loader.source import load_document
from specseg.schema import json_schema, schema_text
from tests.conftest import CORPUS, ROOT, SPECS

COMMITTED = ROOT / "schemas" / "specseg.schema.json"

#: Rules JSON Schema cannot express; only ``specseg validate`` catches these.
SCHEMA_CANNOT_EXPRESS = {
    "groupnorm-divides.yaml": "cross-field: num_groups divides every decoder channel count",
    "nan.yaml": "JSON Schema has no notion of NaN; jsonschema compares NaN as in-range",
    "v2-decoder-rule.yaml": "cross-field: num_groups divides every channel count of decoders.context",
    "v2-from-unknown.yaml": "cross-field: a head's `from` names a decoder",
    "v2-loss-unknown-head.yaml": "cross-field: loss keys name heads",
    "v2-segmentation-from-encoder.yaml": "cross-field: a segmentation head reads a decoder",
    "v2-unused-decoder.yaml": "cross-field: every decoder is read by a head",
}


def _validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_up_to_date() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        "schemas/specseg.schema.json is stale: run `specseg schema -o schemas/specseg.schema.json`"
    )


def test_every_field_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if "description" not in prop:
                    missing.append(f"{where}.{name}")
            for key, value in node.items():
                if key not in ("if", "then", "not"):  # rule fragments restate keys described elsewhere
                    walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(json_schema(), "#")
    assert missing == []


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_specs_satisfy_the_schema(path: Path) -> None:
    doc, _ = load_document(path)
    errors = list(_validator().iter_errors(doc.data))
    assert errors == [], [e.message for e in errors]


def _corpus() -> list[Path]:
    return sorted((CORPUS / "valid").iterdir()) + sorted((CORPUS / "invalid").iterdir())


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_jsonschema_and_pydantic_agree(path: Path) -> None:
    try:
        doc, _ = load_document(path)
    except SpecError:
        # Refused before validation (syntax, duplicate keys, tags): there is nothing to compare.
        assert path.parent.name == "invalid"
        return
    schema_ok = _validator().is_valid(doc.data)
    try:
        specseg.load_spec(path)
        pydantic_ok = True
    except SpecError:
        pydantic_ok = False
    assert pydantic_ok == (path.parent.name == "valid")
    if path.name in SCHEMA_CANNOT_EXPRESS:
        assert schema_ok and not pydantic_ok
    else:
        assert schema_ok == pydantic_ok


def test_schema_is_valid_json_with_stable_text() -> None:
    assert json.loads(schema_text()) == json_schema()
    assert schema_text() == schema_text()


# --- what generic JSON Schema clients report ---------------------------------------------------------


def _schema_path(error: jsonschema.ValidationError) -> str:
    """The spec path a JSON Schema error names: its instance path, plus the key an object-level error names."""
    from specseg.errors import format_path

    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path += (extra[0],)
    elif error.validator == "required":
        path += (error.message.split("'")[1],)
    return format_path(path)


def _schema_checkable() -> list[Path]:
    """Invalid corpus files that parse (syntax errors never reach a schema) and that JSON Schema can catch."""
    out = []
    for path in sorted((CORPUS / "invalid").iterdir()):
        try:
            load_document(path)
        except SpecError:
            continue
        if path.name not in SCHEMA_CANNOT_EXPRESS:
            out.append(path)
    return out


@pytest.mark.parametrize("path", _schema_checkable(), ids=lambda p: p.name)
def test_best_match_names_the_path_specseg_names(path: Path) -> None:
    """jsonschema's best_match (what check-jsonschema prints) points where `specseg validate` points."""
    doc, _ = load_document(path)
    error = jsonschema.exceptions.best_match(_validator().iter_errors(doc.data))
    assert error is not None
    with pytest.raises(SpecError) as info:
        specseg.load_spec(path)
    from specseg.errors import format_path

    assert _schema_path(error) in [format_path(i.path) for i in info.value.issues], error.message


def test_the_issue_examples_get_specific_messages() -> None:
    validator = _validator()

    def best(data: dict) -> tuple[str, str]:
        error = jsonschema.exceptions.best_match(validator.iter_errors({"specseg": 1, **data}))
        return _schema_path(error), error.message

    assert best({"decoder": {"architecture": "fpn", "channels": [256, 128]}}) == (
        "decoder.channels", "Additional properties are not allowed ('channels' was unexpected)"
    )
    assert best({"decoder": {"architecture": "deeplabv3", "aspp_separable": "yes"}}) == (
        "decoder.aspp_separable", "'yes' is not of type 'boolean'"
    )
    assert best({"decoder": {"architecture": "fpn", "segmentation_channels": 100}}) == (
        "decoder.segmentation_channels", "100 is not a multiple of 32"
    )
    assert best({"decoder": {"architecture": "unet", "channels": [64, 32]}}) == ("decoder.channels", "[64, 32] is too short")


def test_check_jsonschema_reports_the_real_key(tmp_path: Path) -> None:
    """The CLI users run in CI (check-jsonschema) on a spec with another architecture's key."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("check_jsonschema")
    schema = tmp_path / "schema.json"
    schema.write_text(schema_text(), encoding="utf-8")
    spec = tmp_path / "fpn.yaml"
    spec.write_text("specseg: 1\ndecoder:\n  architecture: deeplabv3\n  aspp_separable: yes\n", encoding="utf-8")
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    result = subprocess.run([exe, "--schemafile", str(schema), "-o", "JSON", str(spec)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert (error["path"], error["message"]) == ("$.decoder.aspp_separable", "'yes' is not of type 'boolean'")


def test_descriptions_are_plain_text_with_markdown_beside() -> None:
    schema = json_schema()
    fpn = schema["$defs"]["FPNDecoderSpec"]
    assert "``" not in json.dumps(schema)
    assert "`" not in fpn["description"] and "\n" not in fpn["description"].split("\n\n")[0]
    assert "`pyramid_channels`" in fpn["markdownDescription"]
    assert "title" not in json.dumps(schema["$defs"]) and schema["title"] == "specseg model spec"


def test_with_timm_lists_installed_timm_names() -> None:
    import timm

    names = json_schema(with_timm=True)["$defs"]["EncoderSpec"]["properties"]["name"]["anyOf"]
    listed = [n for branch in names for n in branch.get("enum", [])]
    assert "resnet34" in listed and "tu-resnet18" in listed
    assert len([n for n in listed if n.startswith("tu-")]) == len(timm.list_models())
    assert any("pattern" in branch for branch in names)  # other timm versions' names still validate
