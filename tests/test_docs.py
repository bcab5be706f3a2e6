"""The README's reference tables are generated from the spec models and must be current."""

from __future__ import annotations

from specseg.docs import GENERATORS, render
from tests.conftest import ROOT


def test_readme_generated_tables_are_current() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render(text) == text, "README.md is stale: run `python -m specseg.docs README.md`"


def test_every_generated_block_is_in_the_readme() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in GENERATORS:
        assert f"<!-- BEGIN GENERATED: {name} -->" in text
