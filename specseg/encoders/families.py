"""Encoder families from the catalogue, for rules that depend on what an encoder is (torch-free).

SMP decides a few things by encoder family: U-Net adds a center block for
VGG encoders; some architectures refuse the Mix Transformer. specseg reads
the family from the catalogue row of the name (:mod:`specseg.encoders.smp_names`)
instead of testing name prefixes, so a renamed or added encoder of the family
follows the rule, and ``tu-vgg16`` (which SMP treats as a plain timm model) does not.
"""

from __future__ import annotations

from specseg.encoders.registry import registry

#: Family names as the catalogue spells them.
VGG = "VGG"
MIX_TRANSFORMER = "Mix Transformer"


def family_of(name: str) -> str:
    """The catalogue family of encoder ``name``; empty for ``tu-`` models and names outside the catalogue.

    Never imports plugin code (plugin entries have no family).
    """
    if name.startswith("tu-"):
        return ""
    entry = registry.peek(name)
    return entry.family if entry is not None else ""
