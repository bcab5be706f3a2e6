"""What every decoder section shares, and the per-architecture defaults record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from specseg.spec.base import SpecModel

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: (spec path, message, related spec paths) — turned into located issues by the validator.
CrossIssue = tuple[tuple[Any, ...], str, tuple[tuple[Any, ...], ...]]


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


class DecoderSpec(SpecModel):
    """Base of every ``decoder:`` section; ``architecture`` is the discriminator."""

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults()
    #: The SMP class this architecture corresponds to (for import-smp and docs).
    smp_class: ClassVar[str] = ""
    #: SMP constructor arguments whose spec key does not follow the general rule
    #: (``decoder_X`` -> ``decoder.X``), mapped to their ``decoder.`` key.
    smp_renames: ClassVar[dict[str, str]] = {}
    #: Which encoder family the decoder needs: ``hierarchical`` (CNN-like
    #: pyramids, the encoder contract) or ``vit`` (plain ViT blocks, for DPT).
    encoder_kind: ClassVar[str] = "hierarchical"

    @classmethod
    def fill_defaults(cls, decoder: dict[str, Any], encoder: dict[str, Any]) -> None:
        """Fill decoder defaults that depend on other sections (e.g. channels on depth).

        Called on raw data before validation; it must only add missing keys.
        """

    @classmethod
    def default_head_upsampling(cls, encoder: dict[str, Any]) -> int:
        """The head's upsampling when the spec omits it (may depend on encoder depth/stride)."""
        return cls.defaults.head_upsampling

    def cross_issues(self, spec: "ModelSpec") -> list[CrossIssue]:
        """Rules that involve other sections; each names every path it involves."""
        return []

    def build(self, encoder: Any, spec: "ModelSpec") -> Any:
        """Build the decoder module for ``encoder`` (imports torch lazily)."""
        raise NotImplementedError

    def build_head(self, decoder: Any, spec: "ModelSpec") -> Any | None:
        """The architecture's own segmentation head, or None for the shared ``SegmentationHead``.

        Only architectures whose head differs from SMP's shared one (DPT) override this.
        """
        return None
