"""Small models of every architecture, for the tests that run each one (compile, layouts, inference).

``resnet18`` encoders (DPT: timm's 6-block ``test_vit``, with narrow
decoder channels), two classes and an aux classification head, at 64x64
(PAN at 128x128: its pyramid attention needs an 8x8 deepest map at output
stride 16).
"""

from __future__ import annotations

from typing import Any

import torch

from specseg.spec.decoders import SECTIONS

ARCHITECTURES = sorted(SECTIONS)


def small_spec(arch: str) -> dict[str, Any]:
    """The spec of ``arch``'s small model (seeded: every build has the same weights)."""
    section = SECTIONS[arch]
    # The encoder of the section's small example, at its full default depth.
    encoder: dict[str, Any] = {"name": section.small_encoder["name"]}
    decoder: dict[str, Any] = {"architecture": arch}
    if section.encoder_kind == "vit":
        # A ViT decoder's default widths (up to 1024) are not small: take the section's small ones.
        decoder.update(section.small_example)
    return {
        "specseg": 1,
        "encoder": encoder,
        "decoder": decoder,
        "head": {"classes": 2},
        "aux_params": {"classes": 3},
        "seed": 0,
    }


def small_input(arch: str) -> torch.Tensor:
    """A seeded batch of two images of the smallest size every small model takes."""
    size = 128 if arch == "pan" else 64
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
