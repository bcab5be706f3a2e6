"""Validating a located document into a :class:`ModelSpec`, with located errors.

Pydantic reports errors with a ``loc`` that mixes spec keys with union tags
(``decoder.unet.channels``); here each error is mapped back onto the data,
given a file position, a spec path and a message that says what would be
valid, and errors from alternative union branches are merged into one.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from specseg.errors import SpecError, SpecIssue, SpecPath, spec_error
from specseg.loader.document import Document
from specseg.loader.suggest import did_you_mean
from specseg.spec.decoders import SECTIONS
from specseg.spec.model import SUPPORTED_VERSIONS, ModelSpec
from specseg.spec.multitask import V1_KEYS, MultiTaskSpec
from specseg.spec.versions import AnySpec, spec_class

_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF"}


def _data_path(data: Any, loc: tuple[Any, ...], missing: bool) -> tuple[SpecPath, bool]:
    """Map a pydantic ``loc`` onto the data: keep keys/indices that exist, drop union tags.

    Returns the path and whether its last element exists in the data.
    """
    path: list[Any] = []
    node = data
    exists = True
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif missing and isinstance(node, dict) and isinstance(part, str) and i == len(loc) - 1:
            # A missing key: name it, but there is nothing to point at.
            path.append(part)
            exists = False
        else:
            continue  # a union tag such as 'unet' or 'literal[...]'
    return tuple(path), exists


def _unwrap_models(annotation: Any) -> list[type[BaseModel]]:
    """Every SpecModel class reachable from a field annotation."""
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            found.append(ann)
            continue
        stack.extend(typing.get_args(ann))
    return found


def _candidates_at(data: Any, path: SpecPath) -> list[type[BaseModel]]:
    """The spec model classes that may validate the mapping at ``path``: one when the data picks a union member.

    Mapping-valued fields (version 2's ``decoders`` and ``heads``) hold one
    model per key: their keys are stepped over; list items likewise.
    """
    candidates: list[type[BaseModel]] = [spec_class(data)]
    node = data
    keyed = False
    for part in path:
        if isinstance(part, int):
            # A list item: the candidates are those of the list's items.
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            continue
        child = node.get(part) if isinstance(node, dict) else None
        if keyed:
            # A key of a mapping of models (a decoder or head name): the candidates are its values'.
            keyed, node = False, child
            continue
        model = _pick_variant(candidates, node)
        name = _field_name(model, part) if model is not None else None
        if name is None:
            return []
        annotation = model.model_fields[name].annotation  # type: ignore[union-attr]
        candidates = _unwrap_models(annotation)
        keyed = _is_mapping_of_models(annotation)
        node = child
    if keyed:
        return []  # the mapping itself, not one model
    picked = _pick_variant(candidates, node)
    return [picked] if picked is not None else candidates


def _model_at(data: Any, path: SpecPath) -> type[BaseModel] | None:
    """The spec model class that validates the mapping at ``path`` (for key suggestions)."""
    return _pick_variant(_candidates_at(data, path), _node_at(data, path))


def _node_at(data: Any, path: SpecPath) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _literal_values(annotation: Any) -> list[Any]:
    """Every ``Literal`` value in a field annotation (through unions, lists, ``Annotated``), not inside models."""
    found: list[Any] = []
    stack = [annotation]
    while stack:
        ann = stack.pop(0)
        if typing.get_origin(ann) is typing.Literal:
            found.extend(typing.get_args(ann))
        elif not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            stack.extend(a for a in typing.get_args(ann) if not isinstance(a, (str, int, float, bool)) or a is None)
    return list(dict.fromkeys(found))


def _allowed_values(data: Any, path: SpecPath) -> list[str]:
    """The string values the schema allows at ``path`` (a Literal field or a discriminator), for suggestions.

    Read from the spec models themselves, so that no message text is parsed.
    """
    if path and isinstance(path[-1], int):
        path = path[:-1]  # an item of a list of literals
    if not path or not isinstance(path[-1], str):
        return []
    key = path[-1]
    values: list[Any] = []
    for model in _candidates_at(data, path[:-1]):
        name = _field_name(model, key)
        if name is not None:
            values.extend(_literal_values(model.model_fields[name].annotation))
    return [v for v in dict.fromkeys(values) if isinstance(v, str)]


def _field_name(model: type[BaseModel], key: str) -> str | None:
    """The field a spec key sets: its name, or the field whose alias it is (``from``)."""
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return name
    return None


def spec_keys(model: type[BaseModel]) -> list[str]:
    """The keys a spec writes for ``model``'s fields (aliases where set)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _is_mapping_of_models(annotation: Any) -> bool:
    """Whether a field annotation is ``dict[str, Model]`` (possibly optional)."""
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if typing.get_origin(ann) is dict:
            return bool(_unwrap_models(typing.get_args(ann)[1]))
        if typing.get_origin(ann) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            stack.extend(typing.get_args(ann))
    return False


def _pick_variant(candidates: list[type[BaseModel]], node: Any) -> type[BaseModel] | None:
    """Choose the union member a mapping belongs to, by its discriminator value."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if isinstance(node, dict):
        for cls in candidates:
            for disc in ("architecture", "type", "name"):
                field = cls.model_fields.get(disc)
                if field is not None and node.get(disc) in typing.get_args(field.annotation):
                    return cls
    return None


def _unknown_key_message(data: Any, path: SpecPath) -> str:
    key = str(path[-1])
    parent = path[:-1]
    model = _model_at(data, parent)
    if model is None:
        return f"unknown key '{key}'"
    known = spec_keys(model)
    hint = did_you_mean(key, known)
    message = f"unknown key '{key}'{hint}"
    if model is MultiTaskSpec and parent == () and key in V1_KEYS:
        return (
            f"'{key}' is a version-1 key; version 2 uses {V1_KEYS[key]}. "
            "`specseg fmt --to 2 FILE` migrates a version-1 file, or write `specseg: 1`"
        )
    if model is ModelSpec and parent == () and key in ("decoders", "heads"):
        return f"'{key}' is a version-2 key: write `specseg: 2` to use named decoders and heads"
    if parent == ("decoder",) or (len(parent) == 2 and parent[0] == "decoders" and model is not MultiTaskSpec):
        owners = sorted(arch for arch, cls in SECTIONS.items() if key in cls.model_fields)
        arch = getattr(model.model_fields.get("architecture"), "annotation", None)
        here = typing.get_args(arch)[0] if arch is not None else "this architecture"
        if owners:
            message = f"'{key}' is not a key of the {here} decoder; it belongs to: {', '.join(owners)}"
    if len(parent) == 2 and parent[0] == "heads" and model is not MultiTaskSpec:
        from specseg.spec.heads import ClassificationHeadSpec, SegmentationHeadSpec

        owners = [cls for cls in (SegmentationHeadSpec, ClassificationHeadSpec) if key in spec_keys(cls) and cls is not model]
        if owners:
            kind = typing.get_args(owners[0].model_fields["type"].annotation)[0]
            message = f"'{key}' is not a key of this head type; it belongs to {kind} heads"
    # A sentence ends before the list of keys: "...?" after a suggestion, else a full stop.
    message += f"{'' if message.endswith('?') else '.'} Valid keys here: {', '.join(known)}"
    return message


#: Values quoted in messages are cut to this many characters (a spec may hold megabyte strings).
_MAX_QUOTED = 80


def _quoted(value: Any) -> str:
    """``repr(value)``, shortened so that one error stays one readable line."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_MAX_QUOTED:
        digits = len(str(abs(value)))
        return f"{str(value)[:20]}... ({digits} digits)"
    text = repr(value)
    if len(text) <= _MAX_QUOTED:
        return text
    return f"{text[: _MAX_QUOTED - 20]}... ({len(value) if isinstance(value, str) else len(text)} characters)"


def _describe_input(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {_quoted(value)}"
    if isinstance(value, (int, float)):
        return f"the number {_quoted(value)}"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _message(error: dict[str, Any], data: Any, path: SpecPath) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if path == ("specseg",):
        if kind == "missing":
            return "missing the format version; write `specseg: 1` as the first line"
        versions = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        return f"unsupported spec format version {value!r}; this release reads version {versions}"
    if kind == "extra_forbidden":
        return _unknown_key_message(data, path)
    if kind == "string_pattern_mismatch" and error["loc"][-1:] == ("[key]",):
        return (
            f"{_quoted(path[-1])} is not a valid name: use lowercase letters, digits and _, "
            "not starting with a digit (e.g. mask, edges_2)"
        )
    if kind == "missing":
        return f"missing required key '{path[-1]}'"
    if kind == "union_tag_invalid":
        tags = ctx.get("expected_tags", "")
        got = ctx.get("tag")
        hint = did_you_mean(str(got), _allowed_values(data, path))
        return f"unknown value {_quoted(got)}{hint}; expected one of {tags}"
    if kind == "union_tag_not_found":
        return f"missing required key '{path[-1]}'"
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        hint = did_you_mean(value, _allowed_values(data, path)) if isinstance(value, str) else ""
        return f"{_describe_input(value)} is not allowed{hint}; expected {expected}"
    base = error["msg"]
    if kind == "value_error":
        base = base.removeprefix("Value error, ")
    if kind in ("int_type", "float_type", "bool_type", "string_type", "list_type", "dict_type", "model_type", "model_attributes_type"):
        base = f"{error['msg']}, got {_describe_input(value)}"
        if kind == "bool_type" and isinstance(value, str) and value in _YAML11_BOOLS:
            base += " (YAML 1.2 reads yes/no/on/off as strings; write true or false)"
    return base


#: How each type-mismatch error names the form it expected, for merged union messages.
_EXPECTED_FORM = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}


def _error_kind(error: dict[str, Any]) -> str:
    """``key`` for errors about a key itself (an unknown key, a name breaking the key pattern), else pydantic's type."""
    if error["type"] == "extra_forbidden" or tuple(error["loc"])[-1:] == ("[key]",):
        return "key"
    return str(error["type"])


def _merge_union_branches(
    errors: list[tuple[SpecPath, bool, dict[str, Any], str]], data: Any
) -> list[tuple[SpecPath, bool, frozenset[str], str]]:
    """One issue per path: the alternatives of a union become one 'expected A or B' message.

    Returns ``(path, exists, error kinds (see _error_kind), message)`` per path.

    When one alternative got further into the value (a mapping whose inner
    key is wrong), the shallower "wrong type" reports of the other
    alternatives are noise and are dropped.
    """
    def is_type_mismatch(error: dict[str, Any]) -> bool:
        return error["type"] in _EXPECTED_FORM or error["type"] == "literal_error"

    kept = [
        item
        for item in errors
        if not (
            is_type_mismatch(item[2])
            and any(other[0][: len(item[0])] == item[0] and len(other[0]) > len(item[0]) for other in errors)
        )
    ]
    grouped: dict[SpecPath, list[tuple[bool, dict[str, Any], str]]] = {}
    for path, exists, error, message in kept:
        grouped.setdefault(path, []).append((exists, error, message))
    out = []
    for path, items in grouped.items():
        exists = items[0][0]
        structural = [item for item in items if not is_type_mismatch(item[1])]
        if structural and len(structural) < len(items):
            # One alternative accepted the value's type and failed inside it: report that one.
            items = structural
        kinds = frozenset(_error_kind(error) for _, error, _ in items)
        messages = list(dict.fromkeys(message for _, _, message in items))
        if len(messages) == 1:
            out.append((path, exists, kinds, messages[0]))
            continue
        if all(is_type_mismatch(error) for _, error, _ in items):
            forms: list[str] = []
            hint = ""
            value = items[0][1].get("input")
            for _, error, _ in items:
                if error["type"] == "literal_error":
                    forms.append(str(error["ctx"]["expected"]))
                    if isinstance(value, str):
                        hint = hint or did_you_mean(value, _allowed_values(data, path))
                else:
                    forms.append(_EXPECTED_FORM[error["type"]])
            forms = list(dict.fromkeys(forms))
            expected = ", ".join(forms[:-1]) + f", or {forms[-1]}"
            out.append((path, exists, kinds, f"{_describe_input(value)} is not valid{hint}; expected {expected}"))
        else:
            out.append((path, exists, kinds, "; ".join(messages)))
    return out


def issues_from_validation_error(exc: ValidationError, doc: Document) -> list[SpecIssue]:
    """Turn a pydantic error into located spec issues."""
    raw: list[tuple[SpecPath, bool, dict[str, Any], str]] = []
    cross: list[SpecIssue] = []
    for error in exc.errors(include_url=False):
        if error["type"] == "cross_field":
            # Cross-field rules found their issues with spec paths already; only the locations are missing.
            cross.extend(issue.located(doc.locate) for issue in error["ctx"]["issues"])
            continue
        path, exists = _data_path(doc.data, tuple(error["loc"]), error["type"] == "missing")
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # Point at the discriminator key ('architecture', 'type', ...) itself.
            path = path + (str(error["ctx"]["discriminator"]).strip("'"),)
            exists = error["type"] == "union_tag_invalid"
        raw.append((path, exists, error, _message(error, doc.data, path)))
    issues = []
    for path, exists, kinds, message in _merge_union_branches(raw, doc.data):
        # A problem with a key (unknown, or a name breaking the pattern) is pointed at by the key, not its value.
        location = doc.locate(path, prefer_key="key" in kinds) if exists else doc.locate(path[:-1])
        issues.append(SpecIssue(message, path, location))
    issues.extend(cross)
    issues.sort(key=lambda i: (i.location.line if i.location else 0, i.location.column if i.location else 0))
    return issues


def validate_document(doc: Document) -> AnySpec:
    """Validate a parsed document into a spec of its version (:class:`ModelSpec` or :class:`MultiTaskSpec`), or raise :class:`SpecError`."""
    if not isinstance(doc.data, dict):
        raise SpecError(
            [SpecIssue(f"the top level of a spec must be a mapping, found {_describe_input(doc.data)}", (), doc.locate(()))]
        )
    try:
        return spec_class(doc.data).model_validate(doc.data)
    except ValidationError as exc:
        # A SpecValueError where SMP raises ValueError for the same problem (an encoder that cannot be dilated).
        raise spec_error(issues_from_validation_error(exc, doc)) from None
