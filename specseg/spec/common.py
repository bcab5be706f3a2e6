"""Value types shared by several spec sections (torch-free)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from specseg.spec.base import SpecModel


def _integer_only(value: Any) -> Any:
    """Refuse booleans and floats where a Literal of integers is expected.

    Pydantic checks ``Literal[1, 3]`` by equality, even in strict mode, so
    ``true`` (== 1) and ``3.0`` (== 3) would pass and be silently read as 1 and 3.
    """
    if isinstance(value, (bool, float)):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: ``Literal`` choices of integers that refuse ``true`` and ``5.0`` like every other integer field.
FormatVersion = Annotated[Literal[1], BeforeValidator(_integer_only)]
OutputStride = Annotated[Literal[8, 16, 32], BeforeValidator(_integer_only)]
KernelSize = Annotated[Literal[1, 3, 5, 7], BeforeValidator(_integer_only)]

#: Activations a head may apply to its output, as in SMP.
Activation = Literal[
    "identity", "sigmoid", "softmax", "softmax2d", "logsoftmax", "tanh", "argmax", "argmax2d"
]

#: ``torch.nn.functional.interpolate`` modes that work on 4-D (N, C, H, W) tensors.
InterpolationMode = Literal["nearest", "nearest-exact", "bilinear", "bicubic", "area"]

#: The deepest encoder a spec can use: five downsampling stages (stride 32), as in SMP.
MAX_ENCODER_DEPTH = 5

#: Sizes are bounded so that a typo cannot ask for terabytes; the memory guard
#: at build time catches the combinations that are still too large.
Channels = Annotated[int, Field(ge=1, le=65536)]


class BatchNormOptions(SpecModel):
    """``torch.nn.BatchNorm2d`` after each decoder convolution."""

    type: Literal["batchnorm"] = Field(description="Batch normalisation.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for numerical stability.")
    momentum: float | None = Field(0.1, ge=0, le=1, description="Running-statistics momentum; null for a cumulative average.")
    affine: bool = Field(True, description="Learnable scale and shift.")
    track_running_stats: bool = Field(True, description="Keep running mean and variance for eval mode.")


class LayerNormOptions(SpecModel):
    """Layer normalisation over the channel dimension of each pixel."""

    type: Literal["layernorm"] = Field(description="Layer normalisation over channels.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for numerical stability.")
    elementwise_affine: bool = Field(True, description="Learnable per-channel scale and shift.")
    bias: bool = Field(True, description="Learnable shift (only with elementwise_affine).")


class InstanceNormOptions(SpecModel):
    """``torch.nn.InstanceNorm2d`` after each decoder convolution."""

    type: Literal["instancenorm"] = Field(description="Instance normalisation.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for numerical stability.")
    momentum: float | None = Field(0.1, ge=0, le=1, description="Running-statistics momentum.")
    affine: bool = Field(False, description="Learnable scale and shift.")
    track_running_stats: bool = Field(False, description="Keep running statistics for eval mode.")


class GroupNormOptions(SpecModel):
    """``torch.nn.GroupNorm``; ``num_groups`` must divide every normalised channel count."""

    type: Literal["groupnorm"] = Field(description="Group normalisation.")
    num_groups: int = Field(ge=1, le=65536, description="Number of channel groups; must divide each decoder channel count.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for numerical stability.")
    affine: bool = Field(True, description="Learnable per-channel scale and shift.")


class IdentityNormOptions(SpecModel):
    """No normalisation; the convolution then gets a bias, as in SMP."""

    type: Literal["identity"] = Field(description="No normalisation.")


class InPlaceNormOptions(SpecModel):
    """In-place activated batch norm (needs the optional ``inplace_abn`` package)."""

    type: Literal["inplace"] = Field(description="InPlaceABN (requires the inplace_abn package).")
    activation: Literal["leaky_relu", "elu", "identity"] = Field("leaky_relu", description="Fused activation.")
    activation_param: float = Field(0.01, description="Negative slope (leaky_relu) or alpha (elu).")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for numerical stability.")
    momentum: float = Field(0.1, ge=0, le=1, description="Running-statistics momentum.")


NormOptions = Annotated[
    Union[
        BatchNormOptions,
        LayerNormOptions,
        InstanceNormOptions,
        GroupNormOptions,
        IdentityNormOptions,
        InPlaceNormOptions,
    ],
    Field(discriminator="type"),
]

NormName = Literal["batchnorm", "layernorm", "instancenorm", "inplace", "identity"]

#: SMP's ``decoder_use_norm``: a name, a boolean (true = batchnorm, false = none),
#: or a mapping ``{type: ..., **options}``.
Norm = Union[NormName, bool, NormOptions]

NORM_DESCRIPTION = (
    "Normalisation after each decoder convolution: batchnorm | layernorm | instancenorm | "
    "inplace | identity, true (batchnorm) or false (none), or a mapping {type: ..., **options} "
    "such as {type: groupnorm, num_groups: 8}."
)


def norm_options(norm: Norm) -> NormOptions:
    """Normalise any accepted ``norm`` form into its options object."""
    if norm is True:
        return BatchNormOptions(type="batchnorm")
    if norm is False:
        return IdentityNormOptions(type="identity")
    if isinstance(norm, str):
        if norm == "inplace":
            # SMP's string form of inplace uses a plain (slope 0) leaky ReLU.
            return InPlaceNormOptions(type="inplace", activation="leaky_relu", activation_param=0.0)
        cls = {
            "batchnorm": BatchNormOptions,
            "layernorm": LayerNormOptions,
            "instancenorm": InstanceNormOptions,
            "identity": IdentityNormOptions,
        }[norm]
        return cls(type=norm)
    return norm
