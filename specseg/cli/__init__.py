"""The ``specseg`` command line."""

from specseg.cli.main import main

__all__ = ["main"]
