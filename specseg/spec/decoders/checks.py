"""Cross-field rules shared by several decoder sections, and build-time rules on the encoder's features.

Every rule returns :class:`~specseg.errors.SpecIssue` values naming each
path it involves; the validator adds file locations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from specseg.encoders.families import MIX_TRANSFORMER, family_of
from specseg.errors import SpecIssue, SpecPath, cross_issue, spec_error
from specseg.spec.common import GroupNormOptions, Norm

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec

#: The architecture key that a rule about the encoder refers back to.
_ARCHITECTURE: SpecPath = ("decoder", "architecture")


def channels_match_depth(channels: Sequence[int], spec: "ModelSpec") -> list[SpecIssue]:
    """``len(decoder.channels) == encoder.depth``: one decoder stage per encoder stage."""
    depth = spec.encoder.depth
    if len(channels) == depth:
        return []
    return [
        cross_issue(
            ("decoder", "channels"),
            f"has {len(channels)} entries but encoder.depth is {depth}: give one channel count "
            f"per encoder stage ({depth} entries), or set encoder.depth to {len(channels)}",
            [("encoder", "depth")],
        )
    ]


def groupnorm_divides(norm: Norm, channels: int | Sequence[int], channels_path: SpecPath) -> list[SpecIssue]:
    """GroupNorm's ``num_groups`` must divide every normalised channel count.

    ``channels`` is one count (at ``channels_path``) or a list (each entry at ``channels_path + (i,)``).
    """
    if not isinstance(norm, GroupNormOptions):
        return []
    groups = norm.num_groups
    counts = [((), channels)] if isinstance(channels, int) else [((i,), c) for i, c in enumerate(channels)]
    return [
        cross_issue(
            tuple(channels_path) + index,
            f"{c} channels cannot be split into decoder.norm.num_groups={groups} groups; use a multiple of {groups}",
            [("decoder", "norm", "num_groups")],
        )
        for index, c in counts
        if c % groups
    ]


def output_stride_in(allowed: Sequence[int], architecture: str, spec: "ModelSpec") -> list[SpecIssue]:
    """``encoder.output_stride`` must be one the architecture's decoder is designed for."""
    stride = spec.encoder.output_stride
    if stride in allowed:
        return []
    valid = " or ".join(str(s) for s in allowed)
    return [cross_issue(("encoder", "output_stride"), f"{architecture} needs encoder.output_stride {valid}, got {stride}", [_ARCHITECTURE])]


def depth_at_least(minimum: int, architecture: str, spec: "ModelSpec") -> list[SpecIssue]:
    """``encoder.depth >= minimum``: the decoder reads features down to that stage."""
    depth = spec.encoder.depth
    if depth >= minimum:
        return []
    depths = [str(d) for d in range(minimum, 6)]
    valid = depths[0] if len(depths) == 1 else ", ".join(depths[:-1]) + " or " + depths[-1]
    return [cross_issue(("encoder", "depth"), f"{architecture} needs encoder.depth {valid}, got {depth}", [_ARCHITECTURE])]


def mix_transformer_refused(architecture: str, spec: "ModelSpec") -> list[SpecIssue]:
    """SMP refuses its Mix Transformer (``mit_b*``) encoders for some architectures; so does specseg."""
    name = spec.encoder.name
    if family_of(name) != MIX_TRANSFORMER:
        return []
    return [
        cross_issue(
            ("encoder", "name"),
            f"{architecture} does not support the Mix Transformer encoders (mit_b0..mit_b5), as in SMP; "
            f"got {name!r}. Choose another encoder",
            [_ARCHITECTURE],
        )
    ]


def mix_transformer_depth(spec: "ModelSpec") -> list[SpecIssue]:
    """Mix Transformer encoders have an empty stride-2 stage: at ``encoder.depth`` 1 there is no feature to decode."""
    if family_of(spec.encoder.name) != MIX_TRANSFORMER or spec.encoder.depth >= 2:
        return []
    return [
        cross_issue(
            ("encoder", "depth"),
            f"encoder {spec.encoder.name!r} (a Mix Transformer) has no stride-2 feature (its first stage is at "
            f"stride 4), so encoder.depth {spec.encoder.depth} leaves nothing to decode; use encoder.depth 2 or more",
            [("encoder", "name")],
        )
    ]


# --- rules on the encoder's feature channels (DecoderSpec.feature_issues) -----------------------------
# Applied by validate to the channels an encoder declares as data, and by the build to the built encoder.


def groupnorm_width_issues(norm: Norm, widths: Sequence[int], architecture: str) -> list[SpecIssue]:
    """GroupNorm's ``num_groups`` must divide the widths a decoder takes from the encoder's features.

    Some decoders normalise layers whose widths follow from the encoder's
    channels rather than from ``decoder.channels``. Empty widths (the empty
    stride-2 map of transformer-style encoders) normalise nothing.
    """
    if not isinstance(norm, GroupNormOptions):
        return []
    groups = norm.num_groups
    bad = sorted({int(w) for w in widths if w and w % groups})
    if not bad:
        return []
    divisors = [g for g in range(groups - 1, 0, -1) if all(w % g == 0 for w in widths if w)]
    hint = f", e.g. {divisors[0]}" if divisors and divisors[0] > 1 else ""
    return [
        cross_issue(
            ("decoder", "norm", "num_groups"),
            f"num_groups={groups} must divide every width the {architecture} decoder normalises, including widths "
            f"taken from the encoder's features: {bad} are not multiples of {groups}; choose a num_groups that "
            f"divides them{hint}",
            [("encoder", "name")],
        )
    ]


def empty_feature_issues(channels: Sequence[int], used: int, architecture: str, spec: "ModelSpec") -> list[SpecIssue]:
    """A decoder that reads the last ``used`` encoder maps must not get an empty one.

    Transformer-style encoders (first feature at stride 4) return an empty
    stride-2 map, which a shallow encoder pushes into the maps a decoder reads.
    """
    if all(list(channels)[-used:]):
        return []
    # The empty map is the shallowest, so one more stage pushes it out of the used ones.
    minimum = used + 1
    valid = "5" if minimum == 5 else f"{minimum} or more"
    return [
        cross_issue(
            ("encoder", "depth"),
            f"the {architecture} decoder reads the last {used} encoder feature map(s), but encoder "
            f"{spec.encoder.name!r} has no stride-2 feature (its first feature is at stride 4), so with "
            f"encoder.depth {spec.encoder.depth} one of them is empty; use encoder.depth {valid}",
            [("encoder", "name"), _ARCHITECTURE],
        )
    ]


def raise_feature_issues(issues: Sequence[SpecIssue]) -> None:
    """At build time: raise the error for the feature-channel problems of the built encoder, if any."""
    if issues:
        raise spec_error(issues)
