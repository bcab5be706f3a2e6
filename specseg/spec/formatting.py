"""Canonical YAML text of a spec, for ``specseg fmt`` (torch-free).

Canonical means: keys in the order the spec models declare them (free-form
``metadata`` and ``encoder.params`` keep their own order), short lists and
mappings of scalars in flow style, everything else in block style. Comments
at the top of the file (such as the ``yaml-language-server`` line) are
kept; comments elsewhere are dropped, because the text is rewritten from
the data.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from specseg.spec.versions import SPEC_TYPES, spec_class

#: Top-level keys that are loader directives rather than model fields.
DIRECTIVES = ("extends",)
_FREE_FORM = {"metadata", "params"}


def _model_for(annotation: Any, value: Any) -> type[BaseModel] | None:
    from specseg.spec.validation import _pick_variant, _unwrap_models

    return _pick_variant(_unwrap_models(annotation), value)


def order_like_model(value: Any, model: type[BaseModel] | None) -> Any:
    """``value`` with mapping keys in the model's field order, recursively.

    Mapping-valued fields (version 2's named ``decoders`` and ``heads``) keep
    their keys' order, which is meaningful (outputs come in head order), and
    order each entry by its own model.
    """
    from specseg.spec.validation import _is_mapping_of_models, _unwrap_models

    if isinstance(value, list):
        return [order_like_model(v, model) for v in value]
    if not isinstance(value, dict) or model is None:
        return value
    fields = model.model_fields
    ordered: dict[str, Any] = {}
    if model in SPEC_TYPES:
        for key in ("specseg", *DIRECTIVES):
            if key in value:
                ordered[key] = value[key]
    for name, field in fields.items():
        key = field.alias or name
        if key in value and key not in ordered:
            child = value[key]
            if key in _FREE_FORM:
                ordered[key] = child
            elif _is_mapping_of_models(field.annotation) and isinstance(child, dict):
                models = _unwrap_models(field.annotation)
                ordered[key] = {k: order_like_model(v, _pick(models, v)) for k, v in child.items()}
            else:
                ordered[key] = order_like_model(child, _model_for(field.annotation, child))
    for key, child in value.items():
        ordered.setdefault(key, child)
    return ordered


def _pick(models: list[type[BaseModel]], value: Any) -> type[BaseModel] | None:
    from specseg.spec.validation import _pick_variant

    return _pick_variant(models, value)


class _Dumper(yaml.SafeDumper):
    """Safe dumper with the canonical layout's block/flow choices."""


class _Block(dict):  # type: ignore[type-arg]
    """A mapping written in block style."""


class _Flow(dict):  # type: ignore[type-arg]
    """A mapping written in flow style (``{type: groupnorm, num_groups: 8}``)."""


def _styled(value: Any, depth: int) -> Any:
    # The document and its sections stay in block style (one key per line,
    # readable diffs); deeper mappings of scalars and lists of scalars are flow.
    if isinstance(value, dict):
        simple = all(not isinstance(v, (dict, list)) for v in value.values())
        cls = _Flow if depth >= 2 and simple and value else _Block
        return cls((k, _styled(v, depth + 1)) for k, v in value.items())
    if isinstance(value, list):
        return [_styled(v, depth + 1) for v in value]
    return value


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(_Block, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False))
_Dumper.add_representer(_Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True))


def dump_yaml(data: dict[str, Any]) -> str:
    """YAML text of spec data in the canonical layout."""
    return yaml.dump(_styled(data, 0), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 16)


def header_comments(text: str) -> str:
    """The comment and blank lines at the top of a file, kept by ``fmt``."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.strip() == "" or line.lstrip().startswith("#"):
            lines.append(line if line.endswith("\n") else line + "\n")
        else:
            break
    while lines and not lines[-1].strip():
        lines.pop()
    return "".join(lines)


def canonical_text(data: dict[str, Any], original_text: str = "") -> str:
    """The canonical file text for spec ``data``, keeping ``original_text``'s header comments."""
    return header_comments(original_text) + dump_yaml(order_like_model(data, spec_class(data)))
