"""The implementation of each ``specseg`` subcommand.

Each function takes the parsed arguments and returns an exit code; spec
problems are raised as :class:`SpecError` and reported by ``main``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from specseg.errors import SpecError
from specseg.input_shape import DEFAULT_INPUT_SIZE, default_input_shape


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
    from specseg.cli.usage import UsageError

    parts = [p.strip() for p in text.split(",")]
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if len(parts) != 4 or not all(re.fullmatch(r"[0-9]{1,9}", p) and int(p) > 0 for p in parts):
        raise UsageError(f"--input-shape must be four positive integers N,C,H,W; got {text!r}")
    n, c, h, w = (int(p) for p in parts)
    if n * c * h * w > 1 << 28:
        raise UsageError(f"--input-shape {text} has {n * c * h * w} elements; the test pass allows at most {1 << 28}")
    return n, c, h, w


def build(args: argparse.Namespace) -> int:
    """``specseg build SPEC``: build, run one forward pass on zeros, summarise.

    ``-o OUT`` also writes the model (format from OUT's suffix), ``--dry-run``
    summarises on the meta device instead, ``--max-memory`` sets the guard.
    """
    from specseg.cli.usage import UsageError

    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    max_memory = _max_memory(getattr(args, "max_memory", None))
    output = getattr(args, "output", None)
    outputs = [str(o) for o in ([output] if isinstance(output, str) else output or [])]
    folders = [Path(o) for o in outputs if _is_folder_output(o)]
    out_paths = [Path(o) for o in outputs if not _is_folder_output(o)]
    from_artifact = _is_artifact_source(args.spec)
    if from_artifact and args.overrides:
        raise UsageError(f"--set changes specs; {args.spec} is a trained model whose spec is fixed (edit a copy of its spec.yaml instead)")
    if getattr(args, "dry_run", False):
        if outputs:
            raise UsageError("--dry-run builds nothing to write; drop -o/--output, or drop --dry-run")
        if from_artifact:
            raise UsageError(f"--dry-run takes a spec file; {args.spec} is an artifact (see `specseg inspect {args.spec}`)")
        return _dry_run(args, shape)
    _check_outputs(out_paths, getattr(args, "force", False))
    _check_folders(folders, getattr(args, "force", False))

    import torch

    from specseg.builder import describe_loss, guarded_build, resolve

    if from_artifact:
        from specseg.artifacts import load

        model = load(args.spec)
    else:
        # The guard of specseg.build, plus the forward passes this command runs (test pass, trace).
        resolved_spec, doc, base = resolve(Path(args.spec), args.overrides)
        model = guarded_build(resolved_spec, doc, base, max_memory, forward_shapes=_forward_shapes(resolved_spec, shape, out_paths))
    spec = model.spec
    example_shape = shape  # the export's example input: --input-shape, else the exporter's default
    if shape is None:
        size = model.default_input_size(DEFAULT_INPUT_SIZE)
        shape = (1, spec.encoder.in_channels, size, size)
    model.eval()
    try:
        model.check_input_shape(torch.zeros(shape, device="meta"))
    except ValueError as exc:
        raise UsageError(f"--input-shape {','.join(map(str, shape))}: {exc}") from None
    from specseg.dryrun import output_shapes

    with torch.inference_mode():
        out = model(torch.zeros(shape))
    outputs = output_shapes(out)
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
        "preprocessing": _preprocessing_summary(spec),
    }
    if out_paths:
        from specseg.export import export_models

        from specseg.export import ExportError

        try:
            written = export_models(
                model, out_paths, input_shape=example_shape, force=getattr(args, "force", False), static=getattr(args, "static_shape", False)
            )
        except ExportError as exc:
            # Say what was written before the failing export (stdout), then the error (stderr, exit 1).
            for done in getattr(exc, "written", []):
                _print_written(done.to_dict())
            raise
        summary["written"] = [w.to_dict() for w in written]
    for folder in folders:
        from specseg.hub import ARTIFACT_NAME, CARD_NAME, SPEC_NAME, save_pretrained

        save_pretrained(model, folder, force=getattr(args, "force", False))
        files = [str(folder / name) for name in (ARTIFACT_NAME, SPEC_NAME, CARD_NAME)]
        summary.setdefault("written", []).append(
            {"path": str(folder), "format": "folder", "input_shape": None, "dynamic": {}, "files": files, "notes": []}
        )
    if args.json:
        _emit_json(summary)
    else:
        print(f"spec:         {args.spec}" + (f" ({spec.name})" if spec.name else ""))
        print(f"architecture: {spec.architecture}")
        print(f"encoder:      {spec.encoder.name} (depth {spec.encoder.depth}, output stride {model.encoder.output_stride})")
        print(f"parameters:   {total:,} total, {trainable:,} trainable")
        print(f"input:        {tuple(shape)}")
        prefix = "heads." if hasattr(spec, "heads") else ""
        for key, value in outputs.items():
            print(f"{prefix + key + ':':<13} {tuple(value)}")
        if summary["loss"]:
            terms = " + ".join(
                f"{t['weight']:g} * {t['name']}" + (f"[{t['head']}]" if "head" in t else "") + (f" ({t['mode']})" if t["mode"] else "")
                for t in summary["loss"]
            )
            print(f"loss:         {terms}")
        pre = summary["preprocessing"]
        if pre is not None:
            print(
                f"preprocessing: mean {tuple(pre['mean'])}, std {tuple(pre['std'])}, "
                f"input range {tuple(pre['input_range'])}, {pre['input_space']}"
            )
        for written_output in summary.get("written", []):
            _print_written(written_output)
    return 0


def _preprocessing_summary(spec: Any) -> dict[str, Any] | None:
    """The input normalisation of the spec's encoder weights (``specseg.preprocessing``), or None when unknown."""
    from specseg.preprocessing import preprocessing

    try:
        return preprocessing(spec).params()
    except (ValueError, KeyError, LookupError):
        # An encoder without tabulated statistics (e.g. a plugin without pretrained_settings).
        return None


def _forward_shapes(spec: Any, shape: tuple[int, int, int, int] | None, outputs: list[Path]) -> list[tuple[int, ...]]:
    """Inputs ``specseg build`` runs for real: the test pass, and for TorchScript the trace and its check."""
    n, c, h, w = shape or default_input_shape(spec.encoder.in_channels)
    shapes: list[tuple[int, ...]] = [(n, c, h, w)]
    if any(p.suffix.lower() == ".pt" for p in outputs):
        # Without --input-shape the example is at most 512x512 (16 x the largest output stride).
        eh, ew = (h, w) if shape else (512, 512)
        shapes.append((max(n, 2) + 1, c, eh + 32, ew + 64))
    return shapes


def _max_memory(text: str | None) -> str | None:
    """Check ``--max-memory`` early (a usage error), returning it for :func:`specseg.build`."""
    if text is None:
        return None
    from specseg.cli.usage import UsageError
    from specseg.dryrun import parse_size

    try:
        parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--max-memory: {exc}") from None
    return text


def _check_outputs(paths: list[Path], force: bool) -> None:
    """Refuse unknown suffixes, repeated or existing files before spending time on the build."""
    from specseg.cli.usage import UsageError
    from specseg.export import format_for, require_onnx

    if any(p.suffix.lower() == ".onnx" for p in paths):
        require_onnx()  # before minutes of building: names the [onnx] extra
    if len({p.resolve() for p in paths}) != len(paths):
        raise UsageError("-o names the same file twice")
    for path in paths:
        try:
            format_for(path)
        except ValueError as exc:
            raise UsageError(f"-o {path}: {exc}") from None
        check_output_path(path, force, "-o")


def check_output_path(path: Path, force: bool, option: str) -> None:
    """Refuse an output path that cannot be written, before any expensive work (a usage error).

    Checks what can be known in advance: the target is not an existing file
    (without ``--force``) nor a device, FIFO or directory; the file name fits
    the file system; the nearest existing folder on the way is a folder and
    a file can be created in it (probed with a temporary file, removed at once).
    """
    import errno
    import os
    import tempfile

    from specseg.cli.usage import UsageError
    from specseg.fileio import check_target, describe_os_error, is_folder

    name_max = 255
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise UsageError(f"{option} {path}: the name {part[:40]!r}... is {len(os.fsencode(part))} bytes; file names may have at most {name_max}")
    if is_folder(path):
        raise UsageError(f"{option} {path}: is a directory; give a file name such as {path / 'model.safetensors'}, "
                         f"or end the path with {os.sep} for a Hub-ready folder")
    try:
        check_target(path, force)
    except FileExistsError as exc:
        raise FileExistsError(f"{option} {exc}") from None
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: {folder} is not a folder, so no file can be created under it")
    try:
        fd, probe = tempfile.mkstemp(prefix=".specseg-probe.", dir=folder)
    except OSError as exc:
        reason = "read-only file system" if exc.errno == errno.EROFS else describe_os_error(exc)
        raise UsageError(f"{option} {path}: cannot create files in {folder} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its nearest ancestor that exists (as anything: a file there is reported by the caller)."""
    folder = Path(folder) if str(folder) else Path(".")
    while not (folder.exists() or folder.is_symlink()) and folder != folder.parent:
        folder = folder.parent
    return folder


def _is_folder_output(text: str) -> bool:
    """``-o DIR/`` (a trailing separator) or an existing folder without a file suffix: a Hub-ready folder.

    An existing folder named like a file (``-o model.onnx`` where ``model.onnx/`` is a folder) is
    refused as an output file rather than silently filled with a Hub folder's files.
    """
    from specseg.fileio import is_folder

    return text.endswith(("/", os.sep)) or (is_folder(text) and not Path(text).suffix)


def _is_artifact_source(text: str) -> bool:
    """A trained model rather than a spec: ``hf://...``, a ``.safetensors`` artifact, or a save_pretrained folder."""
    from specseg.hub import ARTIFACT_NAME, is_hub_source

    from specseg.fileio import is_regular_file

    return is_hub_source(text) or text.lower().endswith(".safetensors") or is_regular_file(Path(text) / ARTIFACT_NAME)


def _check_folders(folders: list[Path], force: bool) -> None:
    """Refuse a folder output whose files exist (without --force) or that is a file, before building."""
    from specseg.cli.usage import UsageError
    from specseg.hub import ARTIFACT_NAME, CARD_NAME, SPEC_NAME

    for folder in folders:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"-o {folder}/: {folder} is a file, not a folder")
        for name in (ARTIFACT_NAME, SPEC_NAME, CARD_NAME):
            if not force and (folder / name).exists():
                raise FileExistsError(f"{folder / name} exists; use --force to overwrite it")


def _print_written(output: dict[str, Any]) -> None:
    dynamic = output["dynamic"]
    detail = ""
    if dynamic:
        free = [d for d, ok in dynamic.items() if ok]
        detail = f"; dynamic {', '.join(free)}" if free else "; fixed input shape"
        detail += f"; example input {tuple(output['input_shape'])}"
    print(f"wrote:        {', '.join(output['files'])} ({output['format']}{detail})")
    for note in output["notes"]:
        print(f"note:         {note}")


def _dry_run(args: argparse.Namespace, shape: tuple[int, int, int, int] | None) -> int:
    """``specseg build SPEC --dry-run``: the summary of a meta-device build."""
    from specseg.builder import resolve
    from specseg.cli.usage import UsageError
    from specseg.dryrun import dry_run, format_bytes

    spec, doc, base = resolve(Path(args.spec), args.overrides)
    try:
        summary = {"spec": args.spec, **dry_run(spec, doc, base, shape)}
    except SpecError:
        raise  # found by the meta build (a SpecValueError too): exit 1, located, not a usage error
    except ValueError as exc:
        shown = ",".join(map(str, shape)) if shape else "(default)"
        raise UsageError(f"--input-shape {shown}: {exc}") from None
    if args.json:
        _emit_json(summary)
        return 0
    params, memory, flops = summary["parameters"], summary["memory"], summary["flops"]
    print(f"spec:         {args.spec}" + (f" ({spec.name})" if spec.name else ""))
    print(f"architecture: {summary['architecture']}")
    print(f"encoder:      {summary['encoder']} (depth {spec.encoder.depth})")
    print(f"parameters:   {params['total']:,} total, {params['trainable']:,} trainable")
    for part, value in _parts(params):
        print(f"  {part + ':':<22}{'-' if value is None else f'{value:,}'}")
    print(
        f"memory:       {format_bytes(memory['total_bytes'])} when built "
        f"(parameters {format_bytes(memory['parameters_bytes'])}, buffers {format_bytes(memory['buffers_bytes'])})"
    )
    print(f"input:        {tuple(summary['input_shape'])}")
    prefix = "heads." if "decoder_outputs" in summary else ""
    for key, value in summary.get("decoder_outputs", {}).items():
        print(f"{'decoders.' + key + ':':<13} {tuple(value)}")
    for key, value in summary["outputs"].items():
        print(f"{prefix + key + ':':<13} {tuple(value)}")
    parts = ", ".join(f"{k} {_flops(v)}" for k, v in _parts(flops) if k != "total" and v is not None)
    print(f"flops:        {_flops(flops['total'])} ({parts})")
    print("dry run:      built on the meta device; no parameter memory allocated, nothing downloaded")
    return 0


def _parts(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """A summary's per-part figures, version 2's groups (``decoders``, ``heads``) as ``group.name``."""
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        if key in ("total", "trainable"):
            continue
        if isinstance(value, dict):
            out.extend((f"{key}.{name}", v) for name, v in value.items())
        else:
            out.append((key, value))
    return out


def _flops(n: int) -> str:
    for unit, scale in (("PFLOPs", 1e15), ("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} FLOPs"


def inspect_artifact(args: argparse.Namespace) -> int:
    """``specseg inspect PATH``: the spec, hash and versions in an artifact; exit 1 if its hash does not match."""
    from specseg.artifacts import read_artifact_info

    info = read_artifact_info(args.path)  # a file, a save_pretrained folder or hf://OWNER/REPO[@REVISION]
    data = info.to_dict()
    if args.json:
        _emit_json(data)
    else:
        encoder = data["encoder"]
        source = encoder["source"] + (f" {encoder['version']}" if encoder["version"] else "")
        versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items() if v)
        print(f"file:         {data['file']}")
        print(f"spec hash:    {data['spec_hash']}" + ("" if data["hash_matches"] else "  (DOES NOT MATCH the embedded spec)"))
        if data["name"]:
            print(f"name:         {data['name']}")
        print(f"architecture: {data['architecture']}")
        print(f"encoder:      {encoder['name']} (from {source})")
        print(f"written with: {versions}")
        print(f"tensors:      {data['tensors']['count']} ({data['tensors']['bytes']:,} bytes)")
        print("spec:")
        for line in json.dumps(data["spec"], indent=2, sort_keys=True).splitlines():
            print(f"  {line}")
    if not data["hash_matches"]:
        print(f"{args.path}: the embedded spec does not match its hash; the file's metadata was altered", file=sys.stderr)
        return 1
    return 0


def fmt(args: argparse.Namespace) -> int:
    """``specseg fmt SPEC... [--resolved] [--check] [--to VERSION]``: canonical YAML of a spec (migrated to VERSION).

    ``--check`` takes several files (as pre-commit passes them) and reports
    each one; printing or ``-o`` takes exactly one.
    """
    from specseg.cli.usage import UsageError
    from specseg.spec.migrations import CURRENT_VERSION

    to = getattr(args, "to", None)
    if to is not None and not 1 <= to <= CURRENT_VERSION:
        raise UsageError(f"--to {to}: this release writes spec format versions 1 to {CURRENT_VERSION}")
    if not args.check and len(args.specs) > 1:
        raise UsageError("several files need --check; to print or write (-o) the canonical form, give one file")
    if args.check and args.output:
        raise UsageError("--check writes nothing; drop -o/--output")
    if not args.check:
        out = _canonical_text(Path(args.specs[0]), args.resolved, to)
        if args.output:
            _write_output(Path(args.output), out.encode("utf-8"), args.force)
        else:
            sys.stdout.write(out)
        return 0
    failed = False
    for name in args.specs:
        path = Path(name)
        try:
            out = _canonical_text(path, args.resolved, to)
        except SpecError as exc:
            _print_issues(exc)
            failed = True
            continue
        if out != path.read_text(encoding="utf-8"):
            print(f"{path}: not in canonical form (run specseg fmt {path} -o {path} --force)", file=sys.stderr)
            failed = True
        else:
            print(f"{path}: canonical")
    return 1 if failed else 0


def _canonical_text(path: Path, resolved_form: bool, to: int | None = None) -> str:
    """The canonical text of one spec file (migrated to version ``to``); raises :class:`SpecError` for an invalid one."""
    from specseg.cli.usage import UsageError
    from specseg.loader.compose import compose
    from specseg.loader.document import Document
    from specseg.loader.source import load_document, read_spec_file
    from specseg.spec.canonical import resolved
    from specseg.spec.formatting import canonical_text
    from specseg.spec.migrations import migrate
    from specseg.spec.validation import validate_document

    text = read_spec_file(path)
    composed, _ = compose(path)
    spec = validate_document(composed)  # never format an invalid spec
    if resolved_form:
        data = resolved(spec)
    else:
        doc, _ = load_document(path)
        data = doc.data
        if to is not None and isinstance(data, dict) and "extends" in data and data.get("specseg") != to:
            raise UsageError(
                f"--to {to}: {path} extends other files, which would stay at version {data.get('specseg')}; "
                "migrate the base files too and then this one, or add --resolved for one self-contained file"
            )
    if to is not None:
        try:
            data = migrate(data, to)
        except ValueError as exc:
            raise UsageError(f"--to {to}: {exc}") from None
        # The migrated spec must validate too: fmt never writes an invalid spec.
        validate_document(Document(data=data, file=str(path)))
    return canonical_text(data, text)


def _print_issues(exc: SpecError) -> None:
    for issue in exc.issues:
        print(issue.format(), file=sys.stderr)


def _write_output(path: Path, data: bytes, force: bool) -> None:
    """Write a command's output file atomically, refusing to overwrite without ``--force``."""
    from specseg.fileio import write_bytes_atomic

    check_output_path(path, force, "-o")
    write_bytes_atomic(path, data)


def hash_spec(args: argparse.Namespace) -> int:
    """``specseg hash SPEC...``: the hash of each resolved spec; exit 1 if any spec is invalid.

    One file prints the bare hash (or ``{spec, hash}``); several print
    ``HASH  FILE`` lines (or a JSON list), every file reported.
    """
    from specseg.loader import load_spec
    from specseg.spec.canonical import spec_hash

    results: list[dict[str, Any]] = []
    failed = False
    for name in args.specs:
        try:
            results.append({"spec": name, "hash": spec_hash(load_spec(Path(name), args.overrides))})
        except SpecError as exc:
            if len(args.specs) == 1:
                raise
            _print_issues(exc)
            failed = True
    if args.json:
        _emit_json(results[0] if len(args.specs) == 1 else results)
    elif len(args.specs) == 1:
        print(results[0]["hash"])
    else:
        for r in results:
            print(f"{r['hash']}  {r['spec']}")
    return 1 if failed else 0


def diff_specs(args: argparse.Namespace) -> int:
    """``specseg diff A B``: what differs between two resolved specs, path by path."""
    from specseg.loader import load_spec
    from specseg.spec.canonical import diff

    changes = diff(load_spec(Path(args.a)), load_spec(Path(args.b)))
    # git's --exit-code: 1 when the specs differ (exit 1 also means an invalid spec; stderr says which).
    status = 1 if changes and getattr(args, "exit_code", False) else 0
    if args.json:
        _emit_json(changes)
        return status
    if not changes:
        print("no semantic differences")
    for c in changes:
        if c["change"] == "changed":
            print(f"~ {c['path']}: {json.dumps(c['a'])} -> {json.dumps(c['b'])}")
        elif c["change"] == "added":
            print(f"+ {c['path']}: {json.dumps(c['b'])}")
        elif c["change"] == "reordered":
            print(f"~ {c['path']} order: {', '.join(c['a'])} -> {', '.join(c['b'])}")
        else:
            print(f"- {c['path']}: {json.dumps(c['a'])}")
    return status


def schema(args: argparse.Namespace) -> int:
    """``specseg schema [-o FILE]``: print or write the JSON Schema."""
    from specseg.schema import schema_text

    text = schema_text(with_timm=getattr(args, "with_timm", False))
    if args.output:
        path = Path(args.output)
        # The schema file is a generated artifact meant to be refreshed in place; any other file is the user's.
        force = getattr(args, "force", False) or _is_specseg_schema(path)
        _write_output(path, text.encode("utf-8"), force)
    else:
        sys.stdout.write(text)
    return 0


def _is_specseg_schema(path: Path) -> bool:
    """Whether ``path`` is a JSON Schema written by ``specseg schema`` (any version), safe to refresh."""
    from specseg.schema import SCHEMA_ID

    try:
        if not path.is_file() or path.stat().st_size > 16 << 20:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("$id") == SCHEMA_ID


def import_smp(args: argparse.Namespace) -> int:
    """``specseg import-smp SRC -o OUTDIR``: write OUTDIR/spec.yaml and the weights beside it."""
    from specseg.interop.smp_import import SPEC_NAME, WEIGHTS_NAME
    from specseg.interop.smp_import import import_smp as run_import

    out_dir = Path(args.output)
    for name in (SPEC_NAME, WEIGHTS_NAME):  # before reading the weights: the outputs can be written
        check_output_path(out_dir / name, args.force, "-o")

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
    elif args.what == "plugins":
        return _list_plugins(args)
    else:
        from specseg.encoders.catalog import encoder_rows

        rows = encoder_rows(args.filter)
    if args.filter:
        rows = [r for r in rows if fnmatch.fnmatch(r["name"], args.filter)]
    if args.what == "encoders":
        _fill_plugin_weights(rows)
    if args.json:
        _emit_json(rows)
        return 0
    columns = _ARCHITECTURE_COLUMNS if args.what == "architectures" else _ENCODER_COLUMNS
    _print_table([{title: _cell(r[key]) for title, key in columns} for r in rows], [title for title, _ in columns])
    return 0


#: Text columns of ``list`` (title, JSON key): the same facts as ``--json``, one row per line.
_ARCHITECTURE_COLUMNS = [
    ("NAME", "name"),
    ("SMP CLASS", "smp_class"),
    ("DEPTH", "encoder_depth"),
    ("OUTPUT STRIDE", "encoder_output_stride"),
    ("HEAD UPSAMPLING", "head_upsampling"),
    ("ANY INPUT SIZE", "any_input_size"),
    ("DESCRIPTION", "description"),
]
_ENCODER_COLUMNS = [
    ("NAME", "name"),
    ("SOURCE", "source"),
    ("PARAMS", "params"),
    ("OUT CHANNELS", "out_channels"),
    ("TIMM MODEL", "timm_model"),
    ("WEIGHTS", "weights"),
]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _print_table(rows: list[dict[str, str]], titles: list[str]) -> None:
    """Left-aligned columns; the last column is not padded (descriptions stay one line)."""
    widths = {t: max([len(t)] + [len(r[t]) for r in rows]) for t in titles[:-1]}
    for row in [dict(zip(titles, titles))] + rows:
        print("  ".join([row[t].ljust(widths[t]) for t in titles[:-1]] + [row[titles[-1]]]).rstrip())


def _fill_plugin_weights(rows: list[dict[str, Any]]) -> None:
    """Plugin rows list their weights names: the plugin is imported for its pretrained_settings.

    A plugin that fails to import keeps ``"weights": []`` and a warning line on stderr.
    """
    from specseg.encoders.registry import PluginError, registry

    for row in rows:
        if row["weights"] is not None:
            continue
        try:
            entry = registry.get(row["name"])
        except PluginError as exc:
            print(f"warning: {exc}", file=sys.stderr)
            entry = None
        row["weights"] = sorted(entry.pretrained_settings) if entry is not None else []


def _list_plugins(args: argparse.Namespace) -> int:
    """``specseg list plugins``: installed encoder plugins, each imported to check it loads."""
    from specseg.encoders.plugin_report import plugin_rows

    rows, warnings = plugin_rows(load=True)
    if args.filter:
        rows = [r for r in rows if fnmatch.fnmatch(r["name"], args.filter)]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        _emit_json(rows)
        return 0
    for r in rows:
        version = f" {r['version']}" if r["version"] else ""
        status = r["status"] if r["status"] != "error" else "error (see warning above)"
        print(f"{r['name']}  [{r['distribution']}{version}]  {r['entry_point']}  {status}")
    if not rows:
        print("no encoder plugins installed (entry-point group specseg.encoders)")
    return 0


def check_encoder(args: argparse.Namespace) -> int:
    """``specseg check-encoder NAME``: exit 0 when the encoder keeps the contract, 1 otherwise."""
    from specseg.cli.usage import UsageError
    from specseg.encoders.registry import registry
    from specseg.errors import SpecIssue

    params: Any = {}
    if args.params:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--params is not valid JSON: {exc}") from None
        except RecursionError:  # the json module recurses once per nesting level
            raise UsageError("--params nests too deeply; encoder parameters are a flat JSON object") from None
        if not isinstance(params, dict):
            raise UsageError("--params must be a JSON object")
    problem = registry.problem(args.name)
    if problem is None and not registry.is_valid_name(args.name):
        problem = f"unknown encoder {args.name!r}; see `specseg list encoders`"
    if problem is not None:
        raise SpecError([SpecIssue(problem, ("encoder", "name"))])

    _check_params(args.name, params)

    from specseg.testing import check_encoder as run_checks

    violations = run_checks(args.name, **params)
    if args.json:
        _emit_json({"name": args.name, "ok": not violations, "violations": violations})
    elif violations:
        for v in violations:
            print(v, file=sys.stderr)
    else:
        print(f"{args.name}: ok")
    return 0 if not violations else 1


def _check_params(name: str, params: dict[str, Any]) -> None:
    """Refuse ``--params`` the encoder rejects with one located message, before the contract checks.

    The params go through the same validation as a spec's ``encoder.params``
    (a plugin's params model), then one encoder is built to catch keyword
    arguments the constructor does not take; each check would otherwise
    report the same failure once per configuration it builds.
    """
    from specseg.errors import Location, SpecIssue
    from specseg.loader import load_spec

    where = Location("--params", 1, 1)
    spec = {"specseg": 1, "encoder": {"name": name, "params": params}, "decoder": {"architecture": "unet"}}
    try:
        load_spec(spec)
    except SpecError as exc:
        issues = [SpecIssue(i.message, i.path, where) for i in exc.issues if i.path[:2] == ("encoder", "params")]
        if issues:
            raise SpecError(issues) from None
    if not params:
        return
    from specseg.encoders.factory import EncoderBuildError, build_encoder
    from specseg.spec.encoder import EncoderSpec

    try:
        build_encoder(EncoderSpec(name=name, params=params), load_weights=False)
    except EncoderBuildError as exc:
        if exc.field == "params":
            raise SpecError([SpecIssue(str(exc), ("encoder", "params"), where)]) from None
    except Exception:  # noqa: BLE001 - anything else is a contract violation the checks report
        pass
