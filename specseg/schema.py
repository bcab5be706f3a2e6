"""The JSON Schema of the spec format, generated from the Pydantic models (torch-free)."""

from __future__ import annotations

import json
from typing import Any

from specseg.spec.model import ModelSpec

SCHEMA_ID = "https://specseg.dev/schemas/specseg.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every valid spec file satisfies.

    Cross-field rules (e.g. ``len(decoder.channels) == encoder.depth``) are
    not expressible in JSON Schema and are checked by ``specseg validate`` only.
    """
    schema = ModelSpec.model_json_schema(mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
    schema["title"] = "specseg model spec"
    schema["description"] = (
        "A segmentation model spec (format version 1), generated "
        "from its Pydantic models. Cross-field rules are checked by `specseg validate`."
    )
    return schema


def schema_text() -> str:
    """The schema as stable, pretty-printed JSON text with a trailing newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
