"""Architectures register themselves: a section module and a decoder module are all a new one needs.

The sections (torch-free, :mod:`specseg.spec.decoders`) and the decoder
builders (torch, :mod:`specseg.decoders`) are found by scanning their
packages; everything that lists architectures (the spec union, the schema,
the README tables, ``specseg list architectures``, the tests that run every
architecture) derives from them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from specseg.decoders.registry import build_for, registered_architectures
from specseg.spec.decoders import SECTIONS
from specseg.spec.model import ModelSpec

ROOT = Path(__file__).resolve().parent.parent

#: A 13th architecture, written as a reviewer would add it: the section module...
TOY_SECTION = '''
"""The ``decoder:`` section for ``architecture: toy`` (a test architecture)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

from pydantic import Field

from specseg.errors import SpecIssue
from specseg.spec.common import Channels
from specseg.spec.decoders.base import DecoderSpec
from specseg.spec.decoders.checks import depth_at_least


class ToyDecoderSpec(DecoderSpec):
    """Toy: a 1x1 convolution on the deepest features, upsampled to the input size."""

    smp_class: ClassVar[str] = "Toy"
    small_example: ClassVar[Mapping[str, Any]] = {"channels": 8}

    architecture: Literal["toy"] = Field(description="Toy decoder.")
    channels: Channels = Field(16, description="Output channels.")

    def cross_issues(self, spec: Any) -> list[SpecIssue]:
        return depth_at_least(2, "Toy", spec)
'''

#: ...and the decoder module, with its builder.
TOY_DECODER = '''
"""The toy decoder (a test architecture)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from specseg.decoders.base import Decoder
from specseg.decoders.registry import register_decoder
from specseg.spec.decoders.toy import ToyDecoderSpec


class ToyDecoder(Decoder):
    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 1)
        self.out_channels = channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return F.interpolate(self.conv(features[-1]), size=features[0].shape[-2:], mode="nearest")


@register_decoder(ToyDecoderSpec)
def build_toy(section, encoder, spec):
    return ToyDecoder(encoder.feature_info.channels[-1], section.channels)
'''

#: Run in a copy of the package holding the two new files: everything else must follow.
PROBE = '''
import json, sys
import torch
import specseg
from specseg.cli.main import main
from specseg.docs import architectures_table
from specseg.schema import json_schema
from specseg.spec.decoders import SECTIONS

spec = {"specseg": 1, "encoder": {"name": "resnet18", "depth": 3}, "decoder": {"architecture": "toy", **SECTIONS["toy"].small_example}, "head": {"classes": 2}}
model = specseg.build(spec).eval()
with torch.no_grad():
    shape = list(model(torch.randn(1, 3, 64, 64)).shape)
try:
    specseg.load_spec({**spec, "encoder": {"name": "resnet18", "depth": 1}})
    refused = None
except specseg.SpecError as exc:
    refused = [(list(i.path), i.message) for i in exc.issues]
schema = json.dumps(json_schema())
print(json.dumps({
    "sections": list(SECTIONS),
    "shape": shape,
    "refused": refused,
    "in_schema": '"toy"' in schema,
    "in_readme_table": "toy" in architectures_table(),
}))
'''


def test_every_section_has_a_registered_decoder_and_example() -> None:
    assert registered_architectures() == sorted(SECTIONS)
    for arch, section in SECTIONS.items():
        assert build_for(section.model_construct(architecture=arch)).section is section
        # The section's small example is a valid spec of the architecture.
        ModelSpec.model_validate(
            {"specseg": 1, "encoder": dict(section.small_encoder), "decoder": {"architecture": arch, **section.small_example}}
        )


def test_sections_are_found_in_name_order() -> None:
    assert list(SECTIONS) == sorted(SECTIONS) and len(SECTIONS) == 12


def test_a_new_architecture_needs_only_its_section_and_decoder_modules(tmp_path: Path) -> None:
    """A 13th architecture, added as two files in a copy of the package, validates, builds, and appears in the schema and docs."""
    shutil.copytree(ROOT / "specseg", tmp_path / "specseg", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "specseg" / "spec" / "decoders" / "toy.py").write_text(textwrap.dedent(TOY_SECTION))
    (tmp_path / "specseg" / "decoders" / "toy.py").write_text(textwrap.dedent(TOY_DECODER))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SPECSEG_DISABLE_PLUGINS": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "toy" in result["sections"] and result["sections"] == sorted(result["sections"])
    assert result["shape"] == [1, 2, 64, 64]
    assert result["refused"] == [[["encoder", "depth"], "Toy needs encoder.depth 2, 3, 4 or 5, got 1"]]
    assert result["in_schema"] and result["in_readme_table"]


def test_the_spec_side_never_imports_the_torch_side() -> None:
    """The dependency goes one way: no module under specseg/spec imports specseg.decoders, specseg.model or torch."""
    from tests.test_imports import import_graph

    torch_side = ("specseg.decoders", "specseg.model", "specseg.construct", "specseg.builder", "specseg.blocks")
    graph = import_graph()
    offenders = {
        module: sorted(t for t in targets if t.startswith(torch_side))
        for module, targets in graph.items()
        if module.startswith("specseg.spec")
    }
    assert {m: t for m, t in offenders.items() if t} == {}
    for path in (ROOT / "specseg" / "spec").rglob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path
