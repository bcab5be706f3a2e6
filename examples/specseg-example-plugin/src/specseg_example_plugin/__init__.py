"""An example specseg encoder plugin (kept import-light: the encoder module imports torch)."""

__version__ = "0.1.0"
