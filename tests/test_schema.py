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
    "channels-length.yaml": "cross-field: len(decoder.channels) == encoder.depth",
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
