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
            load_spec(Path(path))
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

    model = build_model(Path(args.spec))
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
    return 0


def schema(args: argparse.Namespace) -> int:
    """``specseg schema [-o FILE]``: print or write the JSON Schema."""
    from specseg.schema import schema_text

    text = schema_text()
    if args.output:
        from specseg.fileio import write_text_atomic

        write_text_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
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
