"""The ``heads:`` entries of a version-2 spec: named segmentation and classification heads (torch-free)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field

from specseg.spec.base import SpecModel
from specseg.spec.common import Activation, KernelSize

#: Decoder and head names: identifiers, so that they are valid output names (ONNX, dict keys) and spec paths.
NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64)]
#: What a classification head reads when it does not read a decoder.
ENCODER = "encoder"


class _Head(SpecModel):
    """Fields every head has; ``from`` is a Python keyword, so the field is ``from_`` with the alias ``from``."""

    model_config = ConfigDict(serialize_by_alias=True)


class SegmentationHeadSpec(_Head):
    """A segmentation head: a convolution to ``classes`` channels on a decoder's output, upsampling, activation."""

    type: Literal["segmentation"] = Field(description="A per-pixel head on a decoder's output.")
    from_: Name = Field(alias="from", description="The decoder this head reads (a key of `decoders`).")
    classes: int = Field(1, ge=1, le=100_000, description="Output channels of the map (number of classes; 1 for a binary mask or a regression map).")
    activation: Activation | None = Field(None, description="Activation applied to the map; null returns logits (or raw values, for regression).")
    upsampling: int = Field(1, ge=1, le=64, description="Bilinear upsampling factor after the head convolution. Default: what the decoder's architecture needs to return the input size.")
    kernel_size: KernelSize = Field(3, description="Kernel size of the head convolution. Default depends on the decoder's architecture.")


class ClassificationHeadSpec(_Head):
    """An image-level head: global pooling, dropout, linear layer, activation (SMP's ``aux_params`` head)."""

    type: Literal["classification"] = Field(description="An image-level head (labels per image).")
    from_: Name = Field(ENCODER, alias="from", description="What the head pools: `encoder` (the deepest encoder features, as SMP's aux_params) or a key of `decoders`.")
    classes: int = Field(ge=1, le=100_000, description="Number of labels predicted by the head.")
    pooling: Literal["avg", "max"] = Field("avg", description="Global pooling before the linear layer.")
    dropout: float | None = Field(0.2, ge=0, lt=1, description="Dropout probability before the linear layer (SMP's default 0.2); null or 0 for none.")
    activation: Activation | None = Field(None, description="Activation applied to the labels; null returns logits.")


AnyHeadSpec = Annotated[Union[SegmentationHeadSpec, ClassificationHeadSpec], Field(discriminator="type")]
