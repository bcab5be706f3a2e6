"""Decoder sections, one module per architecture, joined in a discriminated union.

To add an architecture: write its section module here (fields, defaults,
cross-field rules, ``build``), its blocks in :mod:`specseg.decoders`, and
list the section in :data:`SECTIONS`.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.unet import UnetDecoderSpec

#: Every decoder section, keyed by its ``architecture`` value.
SECTIONS: dict[str, type[DecoderSpec]] = {
    "unet": UnetDecoderSpec,
}

_members = tuple(SECTIONS.values())
AnyDecoderSpec = (
    Annotated[Union[_members], Field(discriminator="architecture")]  # type: ignore[valid-type]
    if len(_members) > 1
    else _members[0]
)

__all__ = ["SECTIONS", "AnyDecoderSpec", "ArchitectureDefaults", "DecoderSpec"]
