"""What every decoder section shares, the per-architecture defaults record, and the section registry.

A section registers itself: defining a :class:`DecoderSpec` subclass with an
``architecture: Literal["name"]`` field adds it to :data:`SECTIONS` (the
package imports every module under :mod:`specseg.spec.decoders`, so a new
architecture's section module is found without being listed anywhere). The
torch side looks up the module that builds a section by the same name
(:mod:`specseg.decoders.registry`); this side never imports torch code.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Sequence

from pydantic import Field

from specseg.errors import SpecIssue
from specseg.spec.base import SpecModel
from specseg.spec.common import MAX_ENCODER_DEPTH

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: Kept for code written against the old tuple form: cross-field rules now return :class:`SpecIssue`.
CrossIssue = SpecIssue

#: Which encoder build a decoder reads: ``pyramid`` (features at growing strides, the encoder
#: contract of :mod:`specseg.encoders.base`) or ``vit`` (the blocks of a plain ViT, all at its
#: patch stride, with prefix tokens: DPT). Both satisfy the same contract; the kind selects the build.
EncoderKind = Literal["pyramid", "vit"]

#: Every decoder section, keyed by its ``architecture`` value (filled as sections are defined).
SECTIONS: dict[str, type["DecoderSpec"]] = {}


@dataclass(frozen=True)
class ArchitectureDefaults:
    """Defaults outside the decoder section that depend on the architecture.

    These equal SMP 0.6's constructor defaults for the same architecture.
    """

    encoder_depth: int = 5
    encoder_output_stride: int = 32
    head_upsampling: int = 1
    head_kernel_size: int = 3
    #: Whether input height/width must be divisible by the encoder's total stride.
    requires_divisible_input: bool = True


#: SMP's decoder channels of U-Net, U-Net++ and MA-Net: one entry per stage, deepest first.
DECODER_STAGE_CHANNELS = (256, 128, 64, 32, 16)


@dataclass(frozen=True)
class StageChannels:
    """A decoder field holding one channel count per encoder stage, and its default.

    The default is the first ``encoder.depth`` entries of ``defaults``; it is
    filled only for depths ``min_depth..len(defaults)`` (others are reported
    by the section's rules).
    """

    field: str
    defaults: tuple[int, ...]
    min_depth: int = 1

    def fill(self, decoder: dict[str, Any], depth: Any) -> None:
        """Add the default to a raw ``decoder`` mapping that lacks the field."""
        if self.field not in decoder and isinstance(depth, int) and self.min_depth <= depth <= len(self.defaults):
            decoder[self.field] = list(self.defaults[:depth])


def stage_channels_field(stage: StageChannels, description: str) -> Any:
    """The pydantic field of a per-stage channels list: 1..5 entries, ``stage.defaults`` when omitted."""
    return Field(
        default_factory=lambda: list(stage.defaults), min_length=1, max_length=MAX_ENCODER_DEPTH, description=description
    )


def architecture_of(cls: type) -> str | None:
    """The ``architecture`` literal a section class declares, or None for a base class."""
    fields = getattr(cls, "model_fields", {})
    field = fields.get("architecture")
    if field is None:
        return None
    values = typing.get_args(field.annotation)
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


class DecoderSpec(SpecModel):
    """Base of every ``decoder:`` section; ``architecture`` is the discriminator."""

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults()
    #: The SMP class this architecture corresponds to (for import-smp and docs).
    smp_class: ClassVar[str] = ""
    #: SMP constructor arguments whose spec key does not follow the general rule
    #: (``decoder_X`` -> ``decoder.X``), mapped to their ``decoder.`` key.
    smp_renames: ClassVar[dict[str, str]] = {}
    #: Which encoder build the decoder reads (see :data:`EncoderKind`).
    encoder_kind: ClassVar[EncoderKind] = "pyramid"
    #: The per-stage channels field and its default, for architectures that have one.
    stage_channels: ClassVar[StageChannels | None] = None
    #: Decoder keys of a small model of this architecture (a second or two to build, export or
    #: compile), for the tests that run every architecture; ``small_encoder`` is its encoder section.
    small_example: ClassVar[Mapping[str, Any]] = {}
    small_encoder: ClassVar[Mapping[str, Any]] = {"name": "resnet18", "depth": 3}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        architecture = architecture_of(cls)
        if architecture is None:
            return
        existing = SECTIONS.get(architecture)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"architecture {architecture!r} is defined twice: {existing.__module__} and {cls.__module__}")
        SECTIONS[architecture] = cls

    @classmethod
    def fill_defaults(cls, decoder: dict[str, Any], encoder: dict[str, Any]) -> None:
        """Fill decoder defaults that depend on other sections (e.g. channels on depth).

        Called on raw data before validation; it must only add missing keys.
        """
        if cls.stage_channels is not None:
            cls.stage_channels.fill(decoder, encoder.get("depth", cls.defaults.encoder_depth))

    @classmethod
    def default_head_upsampling(cls, encoder: dict[str, Any]) -> int:
        """The head's upsampling when the spec omits it (may depend on encoder depth/stride)."""
        return cls.defaults.head_upsampling

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        """Rules that involve other sections; each issue names every path it involves."""
        return []

    def feature_issues(self, spec: "ModelSpec", channels: Sequence[int]) -> list[SpecIssue]:
        """Rules on the encoder's feature channels (``channels``: one count per returned map, the input first).

        One rule set for both sides: ``specseg validate`` applies it to the
        channels the encoder declares as data (the catalogue table, the timm
        index), and the build applies it to the built encoder, so a spec the
        validator accepts never fails here at build time. Empty by default.
        """
        return []
