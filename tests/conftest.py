"""Shared test helpers: paths of the repository's folders."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture
def tmp_spec(tmp_path: Path):
    """Write spec text to a temporary ``.yaml`` (or given suffix) file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
