"""The declared record of what an encoder produces: one :class:`Feature` per returned map (torch-free).

In the spirit of timm's ``FeatureInfo``: an encoder declares, for each map
its ``forward`` returns, the channels, the stride and the layout; the record
is checked where it is made (:class:`FeatureInfo` refuses an inconsistent
declaration), decoders and the model read it instead of guessing from
positions or attribute names, and :func:`specseg.testing.check_encoder`
compares it with a real forward pass.

The maps, shallowest first, are ``depth + 1``:

* feature 0 is at stride 1: the input itself (layout ``input``), or for
  VGG-style networks, whose first stage keeps the resolution, that stage's map;
* a stage the network does not have (the stride-2 stage of a transformer
  whose first features are at stride 4) is an ``empty`` map: 0 channels,
  shape (N, 0, H/2, W/2), so every encoder of a depth has the same number of maps;
* every other feature is a ``map``: (N, C, H/stride, W/stride).

Strides never decrease; pyramid encoders double them per stage up to the
output stride (then dilate), plain ViTs (DPT) keep the patch stride for
every block and also return each block's prefix tokens (``prefix_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from specseg.errors import SpecsegError

FeatureLayout = Literal["input", "map", "empty"]

#: The default output stride of an undilated encoder: five halvings.
UNDILATED_OUTPUT_STRIDE = 32


class EncoderContractError(SpecsegError, ValueError):
    """An encoder's declared features are inconsistent (a bug in the encoder, named in the message)."""


@dataclass(frozen=True)
class Feature:
    """One returned map: its channels, its stride relative to the input, and its layout."""

    channels: int
    stride: int
    layout: FeatureLayout = "map"


@dataclass(frozen=True)
class FeatureInfo:
    """The ``depth + 1`` maps an encoder returns, checked when made.

    ``prefix_tokens`` is True for encoders returning, with their maps, each
    map's prefix (class, distillation, register) tokens (plain ViTs; see
    :class:`specseg.encoders.timm_vit.ViTFeatures`).
    """

    features: tuple[Feature, ...]
    depth: int
    prefix_tokens: bool = False

    def __post_init__(self) -> None:
        problems = _problems(self.features, self.depth)
        if problems:
            raise EncoderContractError(f"invalid encoder feature declaration {self.describe()}: " + "; ".join(problems))

    @classmethod
    def pyramid(
        cls,
        channels: Sequence[int],
        depth: int,
        output_stride: int = UNDILATED_OUTPUT_STRIDE,
        strides: Sequence[int] | None = None,
        prefix_tokens: bool = False,
        first: FeatureLayout = "input",
    ) -> "FeatureInfo":
        """The record of ``channels`` (``depth + 1`` entries, the first the input's).

        ``strides`` default to ``min(2 ** i, output_stride)``: each stage halves
        the resolution until the output stride, deeper stages are dilated. A
        0-channel entry after the first is an ``empty`` map. ``first`` is the
        first map's layout: ``input``, or ``map`` for a stride-1 stage (VGG).
        """
        channels = [int(c) for c in channels]
        if strides is None:
            strides = [min(2**i, output_stride) for i in range(len(channels))]
        if len(strides) != len(channels):
            raise EncoderContractError(
                f"invalid encoder feature declaration: {len(channels)} channel counts but {len(strides)} strides"
            )
        layouts: list[FeatureLayout] = [first] + ["empty" if c == 0 else "map" for c in channels[1:]]
        features = tuple(Feature(c, int(s), layout) for c, s, layout in zip(channels, strides, layouts))
        return cls(features, depth, prefix_tokens)

    @property
    def channels(self) -> list[int]:
        """Channels of each map, the first being the input's."""
        return [f.channels for f in self.features]

    @property
    def strides(self) -> list[int]:
        """Stride of each map relative to the input, the first being 1."""
        return [f.stride for f in self.features]

    @property
    def output_stride(self) -> int:
        """Stride of the deepest map."""
        return self.features[-1].stride

    def describe(self) -> str:
        """``channels@stride`` per map, e.g. ``[3@1, 64@2, 0@2(empty)]``."""
        parts = [f"{f.channels}@{f.stride}" + ("" if f.layout == "map" or f.layout == "input" else f"({f.layout})") for f in self.features]
        return "[" + ", ".join(parts) + "]"


def _problems(features: Sequence[Feature], depth: int) -> list[str]:
    """What is wrong with a declaration (empty when it is consistent)."""
    problems: list[str] = []
    if len(features) != depth + 1:
        problems.append(f"{len(features)} features declared for depth {depth}; expected depth + 1 = {depth + 1}")
    if not features:
        return problems
    first = features[0]
    if first.layout == "empty" or first.stride != 1 or first.channels < 1:
        problems.append("feature 0 must be at stride 1 with at least 1 channel (the input itself, or a stride-1 stage)")
    for i, feature in enumerate(features[1:], start=1):
        if feature.layout == "input":
            problems.append(f"feature {i} has layout 'input'; only feature 0 is the input")
        elif feature.layout == "empty" and feature.channels != 0:
            problems.append(f"feature {i} is empty but declares {feature.channels} channels")
        elif feature.layout == "map" and feature.channels < 1:
            problems.append(f"feature {i} declares {feature.channels} channels; a map needs at least 1")
        if feature.stride < 1:
            problems.append(f"feature {i} declares stride {feature.stride}; strides are positive")
    strides = [f.stride for f in features]
    if any(b < a for a, b in zip(strides, strides[1:])):
        problems.append(f"strides {strides} decrease; each feature is at least as deep as the one before")
    return problems
