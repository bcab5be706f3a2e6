"""Cross-field rules shared by several decoder sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from specseg.spec.common import GroupNormOptions, Norm
from specseg.spec.decoders.base import CrossIssue

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec


def channels_match_depth(channels: Sequence[int], spec: "ModelSpec") -> list[CrossIssue]:
    """``len(decoder.channels) == encoder.depth``: one decoder stage per encoder stage."""
    depth = spec.encoder.depth
    if len(channels) == depth:
        return []
    return [
        (
            ("decoder", "channels"),
            f"has {len(channels)} entries but encoder.depth is {depth}: give one channel count "
            f"per encoder stage ({depth} entries), or set encoder.depth to {len(channels)}",
            (("encoder", "depth"),),
        )
    ]


def groupnorm_divides(norm: Norm, channels: Sequence[int], channels_path: tuple[str, ...]) -> list[CrossIssue]:
    """GroupNorm's ``num_groups`` must divide every normalised channel count."""
    if not isinstance(norm, GroupNormOptions):
        return []
    issues: list[CrossIssue] = []
    for i, c in enumerate(channels):
        if c % norm.num_groups:
            issues.append(
                (
                    channels_path + (i,),
                    f"{c} channels cannot be split into decoder.norm.num_groups={norm.num_groups} groups; "
                    f"use a multiple of {norm.num_groups}",
                    (("decoder", "norm", "num_groups"),),
                )
            )
    return issues
