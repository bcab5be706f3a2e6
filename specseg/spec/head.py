"""The ``head:`` and ``aux_params:`` sections (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from specseg.spec.base import SpecModel
from specseg.spec.common import Activation, KernelSize


class HeadSpec(SpecModel):
    """The segmentation head: a convolution to ``classes`` channels, upsampling, activation."""

    classes: int = Field(1, ge=1, le=100_000, description="Output channels of the mask (number of classes).")
    activation: Activation | None = Field(None, description="Activation applied to the mask; null returns logits.")
    upsampling: int = Field(1, ge=1, le=64, description="Bilinear upsampling factor after the head convolution. Default depends on the architecture.")
    kernel_size: KernelSize = Field(3, description="Kernel size of the head convolution. Default depends on the architecture.")


class AuxParams(SpecModel):
    """An optional classification head on the deepest encoder features."""

    classes: int = Field(ge=1, le=100_000, description="Number of labels predicted by the classification head.")
    pooling: Literal["avg", "max"] = Field("avg", description="Global pooling before the linear layer.")
    dropout: float | None = Field(0.2, ge=0, lt=1, description="Dropout probability before the linear layer (SMP's default 0.2); null or 0 for none.")
    activation: Activation | None = Field(None, description="Activation applied to the labels; null returns logits.")
