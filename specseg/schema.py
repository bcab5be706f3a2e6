"""The JSON Schema of the spec format, generated from the Pydantic models (torch-free).

Pydantic's schema is rewritten so that generic JSON Schema clients
(python-jsonschema's ``best_match``, check-jsonschema, the YAML language
server) read it the way ``specseg validate`` does:

* tagged unions (``oneOf`` plus ``discriminator``, a keyword validators
  ignore) become one ``if``/``then`` per tag value, so only the selected
  section is checked and errors name the real key;
* rules between sections that JSON Schema can state (the encoder depths,
  output strides, encoders and channel counts an architecture accepts) are
  derived by probing the Pydantic models, so they cannot drift from them;
* descriptions are plain text, with the Markdown form in ``markdownDescription``;
  the titles Pydantic derives from key and class names are dropped.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any, Callable, Iterable, Union

from pydantic import TypeAdapter

from specseg.spec.model import ModelSpec
from specseg.spec.multitask import MultiTaskSpec

SCHEMA_ID = "https://specseg.dev/schemas/specseg.schema.json"
#: Keys whose values are schemas (or lists/maps of schemas) that the rewriting passes descend into.
_NESTED = ("properties", "patternProperties", "$defs", "items", "prefixItems", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "if", "then", "else")


def json_schema(with_timm: bool = False) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every valid spec file satisfies.

    Cross-field rules JSON Schema cannot state (e.g. GroupNorm's
    ``num_groups`` dividing every decoder channel count) are checked by
    ``specseg validate`` only. ``with_timm`` also lists every ``tu-`` name of
    the installed timm for completion (the pattern still accepts others).
    """
    schema = copy.deepcopy(_generated())
    if with_timm:
        _add_timm_names(schema)
    return schema


def schema_text(with_timm: bool = False) -> str:
    """The schema as stable, pretty-printed JSON text with a trailing newline."""
    return json.dumps(json_schema(with_timm), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


@functools.cache
def _generated() -> dict[str, Any]:
    both = TypeAdapter(Union[ModelSpec, MultiTaskSpec]).json_schema(mode="validation")
    refs = [branch["$ref"] for branch in both["anyOf"]]
    # The version picks the model: if/then/else lets editors complete one version's keys
    # (version 2's decoders.* and heads.*) instead of offering both versions' at once.
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "specseg model spec",
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
    _walk(schema, _tagged_union_to_if_then)
    rules = architecture_rules()
    if rules:  # rules of the version-1 layout (one decoder): they apply inside its definition
        schema["$defs"][ModelSpec.__name__].setdefault("allOf", []).extend(rules)
    _walk(schema, _plain_descriptions)
    _walk(schema, _drop_derived_title)
    schema["title"] = "specseg model spec"
    _set_description(
        schema,
        "A segmentation model spec, generated from its Pydantic models: format version 1 (one decoder, "
        "head, optional aux_params) or 2 (named decoders and heads). Rules JSON Schema cannot state "
        "(listed in the README) are checked by `specseg validate`.",
    )
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


def _walk(node: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    """Call ``visit`` on every subschema, children first."""
    if isinstance(node, list):
        for item in node:
            _walk(item, visit)
        return
    if not isinstance(node, dict):
        return
    for key in _NESTED:
        value = node.get(key)
        if key in ("properties", "patternProperties", "$defs") and isinstance(value, dict):
            for sub in value.values():
                _walk(sub, visit)
        elif value is not None:
            _walk(value, visit)
    visit(node)


# --------------------------------------------------------------------------- tagged unions


def _tagged_union_to_if_then(node: dict[str, Any]) -> None:
    """``oneOf`` + ``discriminator`` -> the tag's ``enum`` and one ``if``/``then`` per tag value.

    With ``oneOf``, a generic validator checks the data against every
    member and reports the closest failure of the wrong ones ("'deeplabv3'
    was expected"); with ``if``/``then`` only the member the tag selects is
    checked, and an unknown tag is an ``enum`` error on the tag itself.
    """
    discriminator = node.get("discriminator")
    members = node.get("oneOf")
    if not isinstance(discriminator, dict) or not isinstance(members, list):
        return
    tag = discriminator["propertyName"]
    mapping: dict[str, str] = discriminator["mapping"]
    del node["discriminator"], node["oneOf"]
    node["type"] = "object"
    node["required"] = [tag]
    node["properties"] = {
        tag: {"enum": list(mapping), "description": f"Selects the other keys that apply here: {', '.join(mapping)}."}
    }
    node["allOf"] = [
        {"if": {"properties": {tag: {"const": value}}, "required": [tag]}, "then": {"$ref": ref}} for value, ref in mapping.items()
    ]


# --------------------------------------------------------------------------- rules between sections


def _probe(data: dict[str, Any]) -> set[tuple[Any, ...]]:
    """The spec paths Pydantic's cross-field rules name for ``data`` (empty when they all pass)."""
    from pydantic import ValidationError

    try:
        ModelSpec.model_validate(data)
    except ValidationError as exc:
        return {
            tuple(issue.path)
            for error in exc.errors(include_url=False)
            if error["type"] == "cross_field"
            for issue in error["ctx"]["issues"]
        }
    return set()


def _when_architecture(architecture: str, then: dict[str, Any], encoder_if: dict[str, Any] | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "properties": {"decoder": {"properties": {"architecture": {"const": architecture}}, "required": ["architecture"]}},
        "required": ["decoder"],
    }
    if encoder_if is not None:
        condition["properties"]["encoder"] = encoder_if
        if "required" in encoder_if:  # a condition on a written key holds only when the encoder section is there
            condition["required"] = ["decoder", "encoder"]
    return {"if": condition, "then": then}


def _encoder_rule(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"encoder": {"properties": properties}}}


def architecture_rules() -> list[dict[str, Any]]:
    """``if``/``then`` rules on the encoder (and channel counts) for each architecture.

    Derived by validating small specs with Pydantic and recording which
    values its cross-field rules refuse: the encoder depths, output strides
    and built-in encoder names an architecture accepts, and list-valued
    decoder keys whose length must equal ``encoder.depth``. Values an
    architecture's defaults give are always accepted, so a missing key never
    trips a rule. Returns [] for a spec layout without ``decoder.architecture``.
    """
    from specseg.encoders.registry import registry
    from specseg.spec.decoders import SECTIONS

    fields = ModelSpec.model_fields
    if "decoder" not in fields or "encoder" not in fields:
        return []
    base = {"specseg": 1}
    builtin = sorted(e.name for e in registry.entries() if e.is_builtin)
    rules: list[dict[str, Any]] = []
    for architecture, section in SECTIONS.items():

        def refused(encoder: dict[str, Any], path: tuple[str, ...], decoder: dict[str, Any] | None = None) -> bool:
            spec = {**base, "encoder": encoder, "decoder": {"architecture": architecture, **(decoder or {})}}
            return path in _probe(spec)

        depths = [d for d in range(1, 6) if not refused({"name": "resnet34", "depth": d}, ("encoder", "depth"))]
        if depths != list(range(1, 6)):
            rules.append(_when_architecture(architecture, _encoder_rule(depth={"enum": depths})))
        strides = [s for s in (8, 16, 32) if not refused({"name": "resnet34", "output_stride": s}, ("encoder", "output_stride"))]
        if strides != [8, 16, 32]:
            rules.append(_when_architecture(architecture, _encoder_rule(output_stride={"enum": strides})))
        rules.extend(_depths_by_encoder(architecture, depths, refused))
        names = [n for n in builtin if refused({"name": n}, ("encoder", "name"))]
        if names and names == builtin:
            # Every built-in name is refused: only timm names (DPT's ViTs) remain.
            rules.append(_when_architecture(architecture, _encoder_rule(name={"pattern": "^tu-"})))
        elif names:
            rules.append(_when_architecture(architecture, _encoder_rule(name={"not": {"enum": names}})))
        for key, field in section.model_fields.items():
            if getattr(field.annotation, "__origin__", None) is not list and "list[" not in str(field.annotation):
                continue
            for depth in depths:
                allowed = [n for n in range(1, 6) if not refused({"name": "resnet34", "depth": depth}, ("decoder", key), {key: [32] * n})]
                if allowed != [depth]:
                    continue
                length = {"properties": {"decoder": {"properties": {key: {"minItems": depth, "maxItems": depth}}}}}
                rules.append(_when_architecture(architecture, length, {"properties": {"depth": {"const": depth}}, "required": ["depth"]}))
                if depth == section.defaults.encoder_depth:
                    # No encoder.depth written: the architecture's default depth applies.
                    rules.append(_when_architecture(architecture, length, {"not": {"required": ["depth"]}}))
    return rules


def _depths_by_encoder(architecture: str, depths: list[int], refused: Callable[..., bool]) -> list[dict[str, Any]]:
    """Rules like "FPN with a Mix Transformer needs depth 5": depths refused for some encoders only.

    One name per encoder family is probed at each depth; a family with a
    refusal has all its names probed. Names with the same allowed depths share a rule.
    """
    from specseg.encoders.registry import registry

    families: dict[str, list[str]] = {}
    for entry in registry.entries():
        if entry.is_builtin:
            families.setdefault(entry.family or entry.name, []).append(entry.name)
    allowed_by_names: dict[tuple[int, ...], list[str]] = {}
    for names in families.values():
        if not any(refused({"name": names[0], "depth": d}, ("encoder", "depth")) for d in depths):
            continue
        for name in names:
            allowed = tuple(d for d in depths if not refused({"name": name, "depth": d}, ("encoder", "depth")))
            if list(allowed) != depths:
                allowed_by_names.setdefault(allowed, []).append(name)
    return [
        _when_architecture(
            architecture,
            _encoder_rule(depth={"enum": list(allowed)}),
            {"properties": {"name": {"enum": sorted(names)}}, "required": ["name"]},
        )
        for allowed, names in sorted(allowed_by_names.items())
    ]


# --------------------------------------------------------------------------- descriptions and titles

_RST_LITERAL = re.compile(r"``(.+?)``")
_MD_CODE = re.compile(r"`([^`]+)`")


def markdown_text(text: str) -> str:
    """A docstring or description as Markdown: RST literals as code, one line per paragraph."""
    text = _RST_LITERAL.sub(r"`\1`", text.strip())
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in paragraphs)


def plain_text(text: str) -> str:
    """The Markdown form without code marks, for clients that show descriptions verbatim."""
    return _MD_CODE.sub(r"\1", markdown_text(text))


def _set_description(node: dict[str, Any], text: str) -> None:
    markdown = markdown_text(text)
    node["description"] = plain_text(text)
    if markdown != node["description"]:
        node["markdownDescription"] = markdown
    else:
        node.pop("markdownDescription", None)


def _plain_descriptions(node: dict[str, Any]) -> None:
    if isinstance(node.get("description"), str):
        _set_description(node, node["description"])


def _drop_derived_title(node: dict[str, Any]) -> None:
    """Pydantic titles repeat the key ("Pyramid Channels") or class name; editors then show "Name || Name"."""
    node.pop("title", None)


# --------------------------------------------------------------------------- timm names


def timm_encoder_names() -> list[str]:
    """``tu-`` names for every model of the installed timm (the names ``specseg list encoders`` shows)."""
    import timm

    return [f"tu-{name}" for name in timm.list_models()]


def _add_timm_names(schema: dict[str, Any], names: Iterable[str] | None = None) -> None:
    """Offer ``names`` (default: the installed timm's) for ``encoder.name`` completion, beside the pattern."""
    listed = list(names) if names is not None else timm_encoder_names()
    name = schema["$defs"]["EncoderSpec"]["properties"]["name"]
    name["anyOf"].insert(1, {"enum": listed})
