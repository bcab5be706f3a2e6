"""The ``specseg`` command: argument parsing, dispatch and exit codes.

Exit codes: 0 success, 1 invalid spec or input file, 2 usage error,
3 internal error (a bug: the message asks for a report and ``--debug``
shows the traceback). Commands import torch only when they build a model.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable, Sequence

from specseg._version import __version__
from specseg.errors import SpecError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class UsageError(Exception):
    """Bad command-line usage that argparse cannot detect (exit code 2)."""


def _parser() -> argparse.ArgumentParser:
    from specseg.cli import commands

    parser = argparse.ArgumentParser(
        prog="specseg",
        description="Validate segmentation model specs and build them into PyTorch models.",
    )
    parser.add_argument("--version", action="version", version=f"specseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check spec files without building them (does not import torch)")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (.yaml, .yml, .json)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every result")
    p.set_defaults(run=commands.validate)

    p = sub.add_parser("build", help="validate, build, run one forward pass and summarise the model")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml, .yml, .json)")
    p.add_argument("--input-shape", metavar="N,C,H,W", help="input shape of the test forward pass (default 1,in_channels,256,256)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(run=commands.build)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    p.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of stdout")
    p.set_defaults(run=commands.schema)

    p = sub.add_parser("list", help="list encoders or architectures")
    p.add_argument("what", choices=["encoders", "architectures"], help="what to list")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--filter", metavar="GLOB", help="only names matching GLOB (e.g. 'resnet*')")
    p.set_defaults(run=commands.list_things)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except SpecError as exc:
        for issue in exc.issues:
            print(issue.format(), file=sys.stderr)
        return EXIT_INVALID
    except UsageError as exc:
        print(f"specseg {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no raw tracebacks
        if args.debug:
            traceback.print_exc()
        print(
            f"specseg {args.command}: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in specseg; please report it with the spec that caused it. "
            "Run again with --debug for the traceback.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
