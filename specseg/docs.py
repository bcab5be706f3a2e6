"""README tables generated from the spec models, so the docs cannot drift from the code.

``python -m specseg.docs README.md`` rewrites the blocks between
``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``;
``--check`` exits 1 when the file is stale (the tests run the same check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from specseg.spec.decoders import SECTIONS
from specseg.spec.encoder import EncoderSpec
from specseg.spec.head import AuxParams, HeadSpec
from specseg.spec.heads import ClassificationHeadSpec, SegmentationHeadSpec
from specseg.spec.model import ModelSpec
from specseg.spec.multitask import MultiTaskSpec


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list[{_type_name(args[0])}]" if args else "list"
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "mapping"
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(annotation.__name__, annotation.__name__)
    return str(annotation).replace("|", "\\|")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(value)}`"


def fields_table(model: type[BaseModel], prefix: str = "") -> str:
    """A markdown table of a section's keys: key, type, default, description."""
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        name = field.alias or name
        rows.append(f"| `{prefix}{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    return "\n".join(rows)


def architectures_table() -> str:
    """Architectures with their SMP class and the defaults that depend on them."""
    rows = [
        "| architecture | SMP class | encoder.depth | encoder.output_stride | head.upsampling | head.kernel_size | any input size |",
        "|---|---|---|---|---|---|---|",
    ]
    for arch, section in SECTIONS.items():
        d = section.defaults
        rows.append(
            f"| `{arch}` | `smp.{section.smp_class}` | {d.encoder_depth} | {d.encoder_output_stride} | "
            f"{d.head_upsampling} | {d.head_kernel_size} | {'yes' if not d.requires_divisible_input else 'no (multiples of the output stride)'} |"
        )
    return "\n".join(rows)


def decoder_tables() -> str:
    """One table of decoder keys per architecture."""
    parts = []
    for arch, section in SECTIONS.items():
        doc = (section.__doc__ or "").strip().splitlines()[0]
        parts.append(f"#### `architecture: {arch}`\n\n{doc}\n\n{fields_table(section, 'decoder.')}")
    return "\n\n".join(parts)


def smp_mapping_table() -> str:
    """SMP constructor arguments whose spec key does not follow the general rule."""
    rows = ["| architecture | SMP argument | spec key |", "|---|---|---|"]
    for arch, section in SECTIONS.items():
        for smp_arg, key in section.smp_renames.items():
            rows.append(f"| `{arch}` | `{smp_arg}` | `decoder.{key}` |")
    from specseg.interop.smp_config import DEPRECATED_ARGUMENTS, spec_path_of

    for old, (new, classes) in DEPRECATED_ARGUMENTS.items():
        archs = ", ".join(f"`{arch}`" for arch, section in SECTIONS.items() if section.smp_class in classes)
        rows.append(f"| {archs} | `{old}` (deprecated in SMP; a DeprecationWarning) | `{spec_path_of(new)}` |")
    return "\n".join(rows)


def encoders_table() -> str:
    """Every built-in encoder name: where its network comes from and how it compares to SMP's."""
    from specseg.encoders.catalog import smp_comparison_rows

    rows = ["| name | family | built from | weights | same network as SMP | same state dict as SMP | notes |", "|---|---|---|---|---|---|---|"]
    for r in smp_comparison_rows():
        source = f"timm `{r['timm_model']}`" if r["timm_model"] else "specseg"
        weights = ", ".join(f"`{w}`" for w in r["weights"]) or "none"
        note = str(r["note"]).replace("|", "\\|")
        rows.append(
            f"| `{r['name']}` | {r['family']} | {source} | {weights} | {'yes' if r['same_as_smp'] else 'no'} | "
            f"{'yes' if r['same_state_dict'] else 'no'} | {note} |"
        )
    return "\n".join(rows)


GENERATORS: dict[str, Callable[[], str]] = {
    "encoders": encoders_table,
    "top-level": lambda: fields_table(ModelSpec),
    "encoder": lambda: fields_table(EncoderSpec, "encoder."),
    "head": lambda: fields_table(HeadSpec, "head."),
    "aux_params": lambda: fields_table(AuxParams, "aux_params."),
    "top-level-v2": lambda: fields_table(MultiTaskSpec),
    "segmentation-head": lambda: fields_table(SegmentationHeadSpec, "heads.<name>."),
    "classification-head": lambda: fields_table(ClassificationHeadSpec, "heads.<name>."),
    "architectures": architectures_table,
    "decoders": decoder_tables,
    "smp-renames": smp_mapping_table,
}

_BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)", re.S)


def render(text: str) -> str:
    """``text`` with every generated block refreshed."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in GENERATORS:
            raise KeyError(f"unknown generated block {name!r}")
        return f"{match.group(1)}{GENERATORS[name]()}\n{match.group(4)}"

    return _BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    """Refresh (or with ``--check``, verify) the generated blocks of a markdown file."""
    parser = argparse.ArgumentParser(prog="python -m specseg.docs")
    parser.add_argument("file", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = args.file.read_text(encoding="utf-8")
    fresh = render(text)
    if args.check:
        if fresh != text:
            print(f"{args.file} is stale: run python -m specseg.docs {args.file}", file=sys.stderr)
            return 1
        return 0
    args.file.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
