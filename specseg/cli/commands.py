"""The implementation of each ``specseg`` subcommand.

Each function takes the parsed arguments and returns an exit code; spec
problems are raised as :class:`SpecError` and reported by ``main``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

from specseg.errors import SpecError


def _emit_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def validate(args: argparse.Namespace) -> int:
    """``specseg validate SPEC...``: exit 0 when every spec is valid, 1 otherwise."""
    from specseg.loader import load_spec

    results = []
    for path in args.specs:
        try:
            load_spec(Path(path), args.overrides)
            results.append({"file": path, "valid": True, "issues": []})
        except SpecError as exc:
            results.append({"file": path, "valid": False, "issues": [i.to_dict() for i in exc.issues]})
            if not args.json:
                for issue in exc.issues:
                    print(issue.format(), file=sys.stderr)
    ok = all(r["valid"] for r in results)
    if args.json:
        _emit_json({"valid": ok, "files": results})
    else:
        for r in results:
            if r["valid"]:
                print(f"{r['file']}: ok")
    return 0 if ok else 1


def parse_input_shape(text: str) -> tuple[int, int, int, int]:
    """Parse ``N,C,H,W`` into four positive integers, or raise a usage error."""
    from specseg.cli.main import UsageError

    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--input-shape must be four positive integers N,C,H,W; got {text!r}")
    n, c, h, w = (int(p) for p in parts)
    if n * c * h * w > 1 << 28:
        raise UsageError(f"--input-shape {text} has {n * c * h * w} elements; the test pass allows at most {1 << 28}")
    return n, c, h, w


def build(args: argparse.Namespace) -> int:
    """``specseg build SPEC``: build, run one forward pass on zeros, summarise."""
    from specseg.cli.main import UsageError

    shape = parse_input_shape(args.input_shape) if args.input_shape else None

    import torch

    from specseg.builder import build as build_model
    from specseg.builder import describe_loss

    model = build_model(Path(args.spec), args.overrides)
    spec = model.spec
    if shape is None:
        shape = (1, spec.encoder.in_channels, 256, 256)
    model.eval()
    try:
        model.check_input_shape(torch.zeros(shape, device="meta"))
    except ValueError as exc:
        raise UsageError(f"--input-shape {','.join(map(str, shape))}: {exc}") from None
    with torch.inference_mode():
        out = model(torch.zeros(shape))
    outputs = {"mask": list(out[0].shape), "labels": list(out[1].shape)} if isinstance(out, tuple) else {"mask": list(out.shape)}
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    summary = {
        "spec": args.spec,
        "name": spec.name,
        "architecture": spec.architecture,
        "encoder": spec.encoder.name,
        "parameters": {"total": total, "trainable": trainable},
        "input_shape": list(shape),
        "outputs": outputs,
        "loss": describe_loss(spec),
    }
    if args.json:
        _emit_json(summary)
    else:
        print(f"spec:         {args.spec}" + (f" ({spec.name})" if spec.name else ""))
        print(f"architecture: {spec.architecture}")
        print(f"encoder:      {spec.encoder.name} (depth {spec.encoder.depth}, output stride {model.encoder.output_stride})")
        print(f"parameters:   {total:,} total, {trainable:,} trainable")
        print(f"input:        {tuple(shape)}")
        for key, value in outputs.items():
            print(f"{key + ':':<13} {tuple(value)}")
        if summary["loss"]:
            terms = " + ".join(
                f"{t['weight']:g} * {t['name']}" + (f" ({t['mode']})" if t["mode"] else "") for t in summary["loss"]
            )
            print(f"loss:         {terms}")
    return 0


def fmt(args: argparse.Namespace) -> int:
    """``specseg fmt SPEC [--resolved] [--check]``: canonical YAML of a spec."""
    from specseg.loader.compose import compose
    from specseg.loader.source import load_document, read_spec_file
    from specseg.spec.canonical import resolved
    from specseg.spec.formatting import canonical_text
    from specseg.spec.validation import validate_document

    path = Path(args.spec)
    text = read_spec_file(path)
    composed, _ = compose(path)
    spec = validate_document(composed)  # never format an invalid spec
    if args.resolved:
        data = resolved(spec)
    else:
        doc, _ = load_document(path)
        data = doc.data
    out = canonical_text(data, text)
    if args.check:
        if out != text:
            print(f"{path}: not in canonical form (run specseg fmt {path} -o {path} --force)", file=sys.stderr)
            return 1
        print(f"{path}: canonical")
        return 0
    if args.output:
        _write_output(Path(args.output), out.encode("utf-8"), args.force)
    else:
        sys.stdout.write(out)
    return 0


def _write_output(path: Path, data: bytes, force: bool) -> None:
    """Write a command's output file atomically, refusing to overwrite without ``--force``."""
    from specseg.fileio import write_bytes_atomic

    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; use --force to overwrite it")
    write_bytes_atomic(path, data)


def hash_spec(args: argparse.Namespace) -> int:
    """``specseg hash SPEC``: the hash of the resolved spec."""
    from specseg.loader import load_spec
    from specseg.spec.canonical import spec_hash

    digest = spec_hash(load_spec(Path(args.spec), args.overrides))
    if args.json:
        _emit_json({"spec": args.spec, "hash": digest})
    else:
        print(digest)
    return 0


def diff_specs(args: argparse.Namespace) -> int:
    """``specseg diff A B``: what differs between two resolved specs, path by path."""
    from specseg.loader import load_spec
    from specseg.spec.canonical import diff

    changes = diff(load_spec(Path(args.a)), load_spec(Path(args.b)))
    if args.json:
        _emit_json(changes)
        return 0
    if not changes:
        print("no semantic differences")
    for c in changes:
        if c["change"] == "changed":
            print(f"~ {c['path']}: {json.dumps(c['a'])} -> {json.dumps(c['b'])}")
        elif c["change"] == "added":
            print(f"+ {c['path']}: {json.dumps(c['b'])}")
        else:
            print(f"- {c['path']}: {json.dumps(c['a'])}")
    return 0


def schema(args: argparse.Namespace) -> int:
    """``specseg schema [-o FILE]``: print or write the JSON Schema."""
    from specseg.schema import schema_text

    text = schema_text()
    if args.output:
        from specseg.fileio import write_text_atomic

        # The schema file is a generated artifact meant to be refreshed in place.
        write_text_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def import_smp(args: argparse.Namespace) -> int:
    """``specseg import-smp SRC -o OUTDIR``: write OUTDIR/spec.yaml and the weights beside it."""
    from specseg.interop.smp_import import import_smp as run_import

    spec_path = run_import(Path(args.src), Path(args.output), force=args.force)
    print(f"wrote {spec_path} and {spec_path.parent / 'model.safetensors'}")
    return 0


def list_things(args: argparse.Namespace) -> int:
    """``specseg list encoders|architectures``."""
    if args.what == "architectures":
        from specseg.spec.decoders import SECTIONS

        rows: list[dict[str, Any]] = [
            {
                "name": arch,
                "smp_class": section.smp_class,
                "encoder_depth": section.defaults.encoder_depth,
                "encoder_output_stride": section.defaults.encoder_output_stride,
                "head_upsampling": section.defaults.head_upsampling,
                "any_input_size": not section.defaults.requires_divisible_input,
                "description": (section.__doc__ or "").strip().splitlines()[0],
            }
            for arch, section in SECTIONS.items()
        ]
    else:
        from specseg.encoders.registry import registry

        rows = [{"name": e.name, "source": e.source, "weights": sorted(e.pretrained_settings)} for e in registry]
        rows.append({"name": "tu-<timm model>", "source": "timm", "weights": ["imagenet", "<timm tag>"]})
    if args.filter:
        rows = [r for r in rows if fnmatch.fnmatch(r["name"], args.filter)]
    if args.json:
        _emit_json(rows)
        return 0
    for r in rows:
        extra = f"  ({r['smp_class']}) {r['description']}" if args.what == "architectures" else f"  [{r['source']}]"
        print(f"{r['name']}{extra}")
    return 0
