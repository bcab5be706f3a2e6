"""Small building blocks shared by decoders and heads."""

from specseg.blocks.activation import Activation
from specseg.blocks.attention import Attention, SCSEAttention
from specseg.blocks.conv import Conv2dNormReLU
from specseg.blocks.norm import LayerNorm2d, make_norm
from specseg.blocks.pointwise import PointwiseConv2d

__all__ = ["Activation", "Attention", "SCSEAttention", "Conv2dNormReLU", "LayerNorm2d", "make_norm", "PointwiseConv2d"]
