"""What every decoder module declares to the model that runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn


class Decoder(nn.Module):
    """Base of every decoder: ``forward(features)`` maps the encoder's features to ``out_channels`` channels.

    Subclasses set ``out_channels`` and, where their blocks need them,
    ``min_deepest_size`` and ``input_multiple``, which
    :class:`~specseg.model.SegmentationModel` reads to refuse an input
    size with a message rather than a shape error deep inside a block.
    """

    # No class-level annotations: torch.jit.script reads them and, postponed ('int'), cannot resolve them.
    if TYPE_CHECKING:
        #: Channels of the map fed to the segmentation head.
        out_channels: int
    #: The smallest height and width of the deepest feature map the decoder can process (0: any).
    min_deepest_size = 0
    #: Input height and width must be multiples of this, besides the encoder's output stride (1: no extra rule).
    input_multiple = 1
