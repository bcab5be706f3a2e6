"""Decoder sections, one module per architecture, joined in a discriminated union.

To add an architecture: write its section module here (fields, defaults,
cross-field rules, ``build``), its blocks in :mod:`specseg.decoders`, and
list the section in :data:`SECTIONS`.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.deeplabv3 import DeepLabV3DecoderSpec
from specseg.spec.decoders.deeplabv3plus import DeepLabV3PlusDecoderSpec
from specseg.spec.decoders.dpt import DPTDecoderSpec
from specseg.spec.decoders.fpn import FPNDecoderSpec
from specseg.spec.decoders.linknet import LinknetDecoderSpec
from specseg.spec.decoders.manet import MAnetDecoderSpec
from specseg.spec.decoders.pan import PANDecoderSpec
from specseg.spec.decoders.pspnet import PSPNetDecoderSpec
from specseg.spec.decoders.segformer import SegformerDecoderSpec
from specseg.spec.decoders.unet import UnetDecoderSpec
from specseg.spec.decoders.unetplusplus import UnetPlusPlusDecoderSpec
from specseg.spec.decoders.upernet import UPerNetDecoderSpec

#: Every decoder section, keyed by its ``architecture`` value.
SECTIONS: dict[str, type[DecoderSpec]] = {
    "deeplabv3": DeepLabV3DecoderSpec,
    "deeplabv3plus": DeepLabV3PlusDecoderSpec,
    "dpt": DPTDecoderSpec,
    "fpn": FPNDecoderSpec,
    "linknet": LinknetDecoderSpec,
    "manet": MAnetDecoderSpec,
    "pan": PANDecoderSpec,
    "pspnet": PSPNetDecoderSpec,
    "segformer": SegformerDecoderSpec,
    "unet": UnetDecoderSpec,
    "unetplusplus": UnetPlusPlusDecoderSpec,
    "upernet": UPerNetDecoderSpec,
}

_members = tuple(SECTIONS.values())
AnyDecoderSpec = (
    Annotated[Union[_members], Field(discriminator="architecture")]  # type: ignore[valid-type]
    if len(_members) > 1
    else _members[0]
)

__all__ = ["SECTIONS", "AnyDecoderSpec", "ArchitectureDefaults", "DecoderSpec"]
