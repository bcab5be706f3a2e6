"""The JSON Schema of the spec format, generated from the Pydantic models (torch-free)."""

from __future__ import annotations

import json
from typing import Any

from typing import Union

from pydantic import TypeAdapter

from specseg.spec.model import ModelSpec
from specseg.spec.multitask import MultiTaskSpec

SCHEMA_ID = "https://specseg.dev/schemas/specseg.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every valid spec file satisfies.

    Cross-field rules (e.g. ``len(decoder.channels) == encoder.depth``) are
    not expressible in JSON Schema and are checked by ``specseg validate`` only.
    """
    both = TypeAdapter(Union[ModelSpec, MultiTaskSpec]).json_schema(mode="validation")
    refs = [branch["$ref"] for branch in both["anyOf"]]
    # The version picks the model: if/then/else lets editors complete one version's keys
    # (version 2's decoders.* and heads.*) instead of offering both versions' at once.
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "specseg model spec",
        "description": (
            "A segmentation model spec, generated from its Pydantic models: format version 1 (one decoder, "
            "head, optional aux_params) or 2 (named decoders and heads). Cross-field rules are checked by "
            "`specseg validate`."
        ),
        "type": "object",
        "required": ["specseg"],
        "if": {
            "properties": {"specseg": {"const": 2, "description": "Spec format version 2 selects named decoders and heads."}},
            "required": ["specseg"],
        },
        "then": {"$ref": refs[1]},
        "else": {"$ref": refs[0]},
        "$defs": both["$defs"],
    }
    _close_named_maps(schema["$defs"][MultiTaskSpec.__name__]["properties"])
    return schema


def _close_named_maps(properties: dict[str, Any]) -> None:
    """Names outside the name pattern are refused (Pydantic refuses them; patternProperties alone would not)."""
    stack: list[Any] = list(properties.values())
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "patternProperties" in node:
                node["additionalProperties"] = False
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)


def schema_text() -> str:
    """The schema as stable, pretty-printed JSON text with a trailing newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
