"""The ``decoder:`` section for ``architecture: deeplabv3`` (and the ASPP fields DeepLabV3+ shares)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Mapping, Sequence

from pydantic import AfterValidator, Field, WithJsonSchema

from specseg.spec.common import Channels
from specseg.errors import SpecIssue
from specseg.spec.decoders.base import ArchitectureDefaults, DecoderSpec
from specseg.spec.decoders.checks import empty_feature_issues, output_stride_in

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: Encoder output strides the DeepLab decoders are built for (SMP refuses others).
DEEPLAB_OUTPUT_STRIDES = (8, 16)
#: SMP's default ASPP dilation rates (those of the DeepLabV3 paper for output stride 8).
DEFAULT_ATROUS_RATES = (12, 24, 36)

#: A dilation rate; the ASPP pads by the rate, so huge rates only cost memory.
AtrousRate = Annotated[int, Field(ge=1, le=1024)]


def _three_rates(rates: list[int]) -> list[int]:
    """The ASPP has exactly three dilated branches, one rate each."""
    if len(rates) != 3:
        raise ValueError(f"needs exactly 3 dilation rates (one per dilated ASPP branch), got {len(rates)}: {rates}")
    return rates


#: Three dilation rates; the count is checked by a validator for a clearer
#: message, and stated in the JSON Schema as minItems/maxItems.
AtrousRates = Annotated[
    list[AtrousRate],
    AfterValidator(_three_rates),
    WithJsonSchema({"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 1024}, "minItems": 3, "maxItems": 3}),
]

CHANNELS_DESCRIPTION = "Output channels of the ASPP module and of the decoder convolutions."
ATROUS_RATES_DESCRIPTION = (
    "Dilation rates of the three dilated 3x3 ASPP branches (exactly 3 integers >= 1); the ASPP also has "
    "a 1x1 branch and a global-pooling branch."
)
ASPP_DROPOUT_DESCRIPTION = "Dropout probability after the ASPP projection, in [0, 1)."


def aspp_rates_field() -> Any:
    """The ``atrous_rates`` field, shared by DeepLabV3 and DeepLabV3+."""
    return Field(default_factory=lambda: list(DEFAULT_ATROUS_RATES), description=ATROUS_RATES_DESCRIPTION)


class DeepLabV3DecoderSpec(DecoderSpec):
    """DeepLabV3 (Chen et al., 2017): atrous spatial pyramid pooling (ASPP) on dilated features.

    The deepest encoder features, kept at stride 8 (default) or 16 by
    dilating the last stages, go through ASPP (a 1x1 branch, three dilated
    3x3 branches and a global-pooling branch, concatenated and projected)
    and a 3x3 conv-BN-ReLU. There are no skip connections. The head is a
    1x1 convolution; as in SMP, its upsampling defaults to the encoder's
    effective output stride, min(encoder.output_stride, 2 ** encoder.depth),
    so the mask has the input's size.
    """

    defaults: ClassVar[ArchitectureDefaults] = ArchitectureDefaults(
        encoder_depth=5,
        encoder_output_stride=8,
        head_upsampling=8,
        head_kernel_size=1,
        requires_divisible_input=True,
    )
    smp_class: ClassVar[str] = "DeepLabV3"
    small_example: ClassVar[Mapping[str, Any]] = {"channels": 32}

    architecture: Literal["deeplabv3"] = Field(description="DeepLabV3 decoder (ASPP on dilated features).")
    channels: Channels = Field(256, description=CHANNELS_DESCRIPTION)
    atrous_rates: AtrousRates = aspp_rates_field()
    aspp_separable: bool = Field(False, description="Use depthwise-separable convolutions in the dilated ASPP branches.")
    aspp_dropout: float = Field(0.5, ge=0, lt=1, description=ASPP_DROPOUT_DESCRIPTION)

    @classmethod
    def default_head_upsampling(cls, encoder: dict[str, Any]) -> int:
        """SMP's head upsampling when none is given: the encoder's effective output stride.

        SMP uses ``2 ** depth`` for depth <= 3 and the output stride otherwise,
        which is ``min(output_stride, 2 ** depth)`` for every valid stride.
        ``encoder`` is the raw encoder section; malformed values fall back to
        the architecture default (field validation reports them).
        """
        depth = encoder.get("depth", cls.defaults.encoder_depth)
        stride = encoder.get("output_stride", cls.defaults.encoder_output_stride)
        if type(depth) is int and type(stride) is int and 1 <= depth <= 5 and stride in DEEPLAB_OUTPUT_STRIDES:
            return min(stride, 2**depth)
        return cls.defaults.head_upsampling

    def cross_issues(self, spec: "ModelSpec") -> list[SpecIssue]:
        return output_stride_in(DEEPLAB_OUTPUT_STRIDES, "DeepLabV3", spec)

    def feature_issues(self, spec: "ModelSpec", channels: Sequence[int]) -> list[SpecIssue]:
        """ASPP reads the deepest map, which must not be an encoder's empty stride-2 map."""
        return empty_feature_issues(channels, 1, "DeepLabV3", spec)
