"""The package version, kept in one place (pyproject reads it dynamically)."""

__version__ = "0.1.0"
