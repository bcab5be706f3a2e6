"""The ``specseg`` command: argument parsing, dispatch and exit codes.

Exit codes: 0 success, 1 invalid spec or input file, 2 usage error,
3 internal error (a bug: the message asks for a report and ``--debug``
shows the traceback). Commands import torch only when they build a model.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any, Callable, Sequence

from specseg._version import __version__
from specseg.cli.usage import UsageError
from specseg.errors import SpecError, SpecsegError, one_line

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _parser() -> argparse.ArgumentParser:
    from specseg.cli import commands

    parser = argparse.ArgumentParser(
        prog="specseg",
        description="Validate segmentation model specs and build them into PyTorch models.",
    )
    parser.add_argument("--version", action="version", version=f"specseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors and of plugins that fail to import")
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        help="do not load installed encoder plugins (the same as SPECSEG_DISABLE_PLUGINS=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add_set(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            type=_override,
            metavar="PATH=VALUE",
            help="override a spec value, e.g. --set head.classes=5 --set decoder.channels=[128,64,32,16,8] (repeatable; values parse as YAML)",
        )

    p = sub.add_parser("validate", help="check spec files without building them (does not import torch)")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (.yaml, .yml, .json)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every result")
    add_set(p)
    p.set_defaults(run=commands.validate)

    p = sub.add_parser("fmt", help="print a spec in canonical form (or check that it is)")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec file (.yaml, .yml); several with --check")
    p.add_argument("--resolved", action="store_true", help="write out every default and inline extends")
    p.add_argument("--check", action="store_true", help="exit 1 if any file is not in canonical form (each file is reported)")
    p.add_argument(
        "--to",
        metavar="VERSION",
        type=int,
        help="migrate to spec format VERSION (e.g. --to 2: decoder -> decoders.main, head -> heads.mask, aux_params -> heads.labels)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(run=commands.fmt)

    p = sub.add_parser("hash", help="print the stable hash of the resolved spec")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (.yaml, .yml, .json); with several, each line is 'HASH  FILE'")
    p.add_argument("--json", action="store_true", help="print {spec, hash} as JSON (a list of them for several files)")
    add_set(p)
    p.set_defaults(run=commands.hash_spec)

    p = sub.add_parser("diff", help="semantic differences between two resolved specs")
    p.add_argument("a", metavar="A", help="first spec")
    p.add_argument("b", metavar="B", help="second spec")
    p.add_argument("--json", action="store_true", help="print the differences as a JSON array")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the specs differ (as git diff --exit-code), 0 when they do not")
    p.set_defaults(run=commands.diff_specs)

    p = sub.add_parser("build", help="validate, build, run one forward pass and summarise the model")
    p.add_argument(
        "spec",
        metavar="SPEC",
        help="spec file (.yaml, .yml, .json), or a trained model: an artifact (.safetensors), a save_pretrained folder, "
        "or hf://OWNER/REPO[@REVISION] on the Hugging Face Hub",
    )
    add_set(p)
    p.add_argument(
        "--input-shape",
        metavar="N,C,H,W",
        help="input shape of the test forward pass and of --dry-run (default 1,in_channels,256,256), and the example input of -o exports",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        action="append",
        help="also write the model, in the format OUT's suffix names: .safetensors (artifact: weights + spec), "
        ".onnx, .pt2 (torch.export) or .pt (TorchScript), or DIR/ for a Hugging Face Hub-ready folder (artifact, "
        "spec.yaml, model card README.md); repeat for several formats from one build",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.add_argument(
        "--static-shape",
        action="store_true",
        help="ONNX and .pt2 exports: fix batch, height and width at the example input's sizes (a quick capture; "
        "give the size with --input-shape)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="build on the meta device only: parameter counts, memory, output shapes and FLOPs, with no memory allocated and nothing downloaded",
    )
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="refuse to build a model whose parameters and buffers exceed SIZE (e.g. 8GiB, 500MB; 'off' for no limit; default: half the available memory)",
    )
    p.set_defaults(run=commands.build)

    p = sub.add_parser("inspect", help="show the spec, hash and versions embedded in a .safetensors artifact (does not import torch)")
    p.add_argument(
        "path",
        metavar="PATH",
        help="artifact written by `specseg build SPEC -o FILE.safetensors`, a save_pretrained folder, or hf://OWNER/REPO[@REVISION]",
    )
    p.add_argument("--json", action="store_true", help="print everything as one JSON object")
    p.set_defaults(run=commands.inspect_artifact)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    p.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of stdout (an existing specseg schema is refreshed)")
    p.add_argument("--force", action="store_true", help="overwrite FILE even if it is not a specseg schema")
    p.add_argument(
        "--with-timm",
        action="store_true",
        help="also list every tu- encoder name of the installed timm, for completion in editors (imports timm)",
    )
    p.set_defaults(run=commands.schema)

    p = sub.add_parser("import-smp", help="convert an SMP save_pretrained model (folder or Hugging Face repository) into spec.yaml + weights")
    p.add_argument(
        "src",
        metavar="SRC",
        help="folder written by an SMP model's save_pretrained, or the Hugging Face repository id of one "
        "(owner/name[@revision], fetched through huggingface_hub: its cache and HF_HUB_OFFLINE apply)",
    )
    p.add_argument("-o", "--output", metavar="OUTDIR", required=True, help="folder for spec.yaml and model.safetensors")
    p.add_argument("--force", action="store_true", help="overwrite existing files in OUTDIR")
    p.set_defaults(run=commands.import_smp)

    p = sub.add_parser("list", help="list encoders, architectures or installed encoder plugins")
    p.add_argument("what", choices=["encoders", "architectures", "plugins"], help="what to list")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--filter", metavar="GLOB", help="only names matching GLOB (e.g. 'resnet*')")
    p.set_defaults(run=commands.list_things)

    p = sub.add_parser("check-encoder", help="check that an encoder keeps the encoder contract (builds it with random weights)")
    p.add_argument("name", metavar="NAME", help="encoder name (registered, plugin, or tu-<timm model>)")
    p.add_argument("--params", metavar="JSON", help="encoder.params as a JSON object")
    p.add_argument("--json", action="store_true", help="print {name, ok, violations} as one JSON object")
    p.set_defaults(run=commands.check_encoder)
    return parser


def _override(text: str) -> str:
    """argparse type of ``--set``: ``PATH=VALUE`` with a well-formed path, else a usage error (exit 2)."""
    from specseg.loader.compose import parse_override_path

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE, e.g. head.classes=5; got {text!r}")
    try:
        parse_override_path(text.split("=", 1)[0].strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _show_debug_log() -> None:
    """``--debug``: print specseg's debug records (e.g. a plugin's import traceback) on stderr."""
    import logging

    log = logging.getLogger("specseg")
    if not any(getattr(h, "_specseg_debug", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._specseg_debug = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def _disable_plugins() -> None:
    """``--no-plugins``: turn entry-point discovery off for this process, before anything uses the registry."""
    import os

    os.environ["SPECSEG_DISABLE_PLUGINS"] = "1"
    loaded = sys.modules.get("specseg.encoders.registry")
    if loaded is not None:  # already used in this process (main called in-process): forget its plugins
        loaded.registry.rediscover()


def _one_line_output() -> None:
    """Never fail on printing a non-UTF-8 file name: characters the stream cannot encode are escaped."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream already in use in a way that cannot change
                pass


def _warnings_on_one_line(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints each warning (ours or a library's) as one line."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
        stream = file if file is not None else sys.stderr
        try:
            stream.write(one_line(f"specseg {command}: warning: {category.__name__}: {message}") + "\n")
        except (OSError, ValueError):
            pass

    return show


def _log_records_on_one_line(command: str) -> Any:
    """Library log records that reach no handler (Python's last-resort handler) print as one line each."""
    import logging

    class OneLine(logging.StreamHandler):  # type: ignore[type-arg]
        def format(self, record: logging.LogRecord) -> str:
            text = record.getMessage()
            if record.exc_info and record.levelno >= logging.ERROR:
                text += f" ({record.exc_info[0].__name__ if record.exc_info[0] else 'error'})"
            return one_line(f"specseg {command}: {record.levelname.lower()}: {text}")

    handler = OneLine(sys.stderr)
    handler.setLevel(logging.WARNING)
    previous = logging.lastResort
    logging.lastResort = handler
    return previous


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    import warnings

    _one_line_output()
    parser = _parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    if args.debug:
        _show_debug_log()
    if args.no_plugins:
        _disable_plugins()
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _warnings_on_one_line(args.command)
    previous_last_resort = _log_records_on_one_line(args.command)
    try:
        return run(args)
    except SpecError as exc:
        for issue in exc.issues:
            print(issue.format(), file=sys.stderr)
        return EXIT_INVALID
    except (UsageError, FileExistsError) as exc:
        print(one_line(f"specseg {args.command}: error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except SpecsegError as exc:
        # Any other problem specseg recognised (an artifact, an export, weights): the user's to fix, not a bug.
        for issue in exc.issues:
            print(issue.format(), file=sys.stderr)
        if not exc.issues:
            print(one_line(f"specseg {args.command}: error: {exc}"), file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        # A file that cannot be read or written (EIO, a full disk, a name too long): the input or the
        # environment, not a bug. BrokenPipeError is a reader that went away: not an error.
        if isinstance(exc, BrokenPipeError):
            return EXIT_OK
        from specseg.fileio import describe_os_error

        name = exc.filename
        where = f"{os.fsdecode(name) if isinstance(name, (str, bytes)) else name}: " if name is not None else ""
        print(one_line(f"specseg {args.command}: error: {where}{describe_os_error(exc)}"), file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no raw tracebacks
        if args.debug:
            traceback.print_exc()
        print(
            one_line(f"specseg {args.command}: internal error: {type(exc).__name__}: {exc}") + "\n"
            "This is a bug in specseg; please report it with the spec that caused it. "
            "Run again with --debug for the traceback.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        import logging

        warnings.showwarning = previous_showwarning
        logging.lastResort = previous_last_resort
