"""The command line's usage error, in a module of its own so that commands and the entry point share it."""

from __future__ import annotations

from specseg.errors import SpecsegError


class UsageError(SpecsegError):
    """Bad command-line usage that argparse cannot detect (exit code 2)."""
