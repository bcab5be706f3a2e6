"""Cross-field rules on the encoder that need the timm index (torch-free).

A ``tu-`` encoder (or a catalogue name built on a timm model) builds only
at the depths, output strides and input sizes its timm model supports; the
shipped timm index (:mod:`specseg.encoders.timm_index`) knows them, found
on the models themselves, so ``specseg validate`` refuses what would not build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from specseg.errors import SpecIssue
from specseg.spec.decoders.base import CrossIssue

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec


def timm_model_of(name: str) -> str | None:
    """The timm model a pyramid encoder name builds (``tu-`` names and timm-backed catalogue names), or None."""
    if name.startswith("tu-"):
        return name[3:].partition(".")[0]
    from specseg.encoders.registry import registry

    entry = registry.peek(name)
    if entry is not None and entry.is_builtin and entry.timm_model is not None and not entry.timm_options:
        return entry.timm_model
    return None


def timm_encoder_issues(spec: "ModelSpec") -> list[CrossIssue]:
    """Located problems of a timm-backed pyramid encoder at the spec's depth and output stride.

    Encoders with ``encoder.params`` are left to the build, which checks the
    model it was given on the meta device (the index describes the defaults);
    only the keywords a pyramid encoder sets itself are refused here.
    """
    if spec.encoder.params:
        from specseg.encoders.encoder_params import PYRAMID_RESERVED
        from specseg.encoders.registry import registry

        entry = None if spec.encoder.name.startswith("tu-") else registry.peek(spec.encoder.name)
        on_timm = entry is None or (entry.is_builtin and entry.timm_model is not None)
        if spec.decoder.encoder_kind == "vit" or not on_timm:
            return []

        # A pyramid encoder sets these itself (a plain ViT takes ``depth`` as its block count).
        return [
            (("encoder", "params", key), f"encoder.params may not set {key!r}: it is set by {PYRAMID_RESERVED[key]}", ())
            for key in spec.encoder.params
            if key in PYRAMID_RESERVED
        ]
    if spec.decoder.encoder_kind == "vit":
        if not spec.encoder.name.startswith("tu-"):
            return []  # the architecture's own rule names the fix
        from specseg.encoders.timm_index import vit_problems

        return [
            (("encoder", field), message, (("decoder", "architecture"),))
            for field, message in vit_problems(spec.encoder.name, spec.encoder.depth)
        ]
    if spec.decoder.encoder_kind not in ("hierarchical", "pyramid"):
        return []
    from specseg.encoders.timm_index import builtin_problems, encoder_problems

    model = timm_model_of(spec.encoder.name)
    if model is None:  # specseg's own modules (and patched timm models): verdicts found on them
        return [
            (("encoder", field), message, (("encoder", "name"),))
            for field, message in builtin_problems(spec.encoder.name, spec.encoder.depth, spec.encoder.output_stride)
        ]

    related = {"name": (("encoder", "depth"),), "depth": (("encoder", "name"),), "output_stride": (("encoder", "name"), ("encoder", "depth"))}
    return [
        (("encoder", field), message, related.get(field, ()))
        for field, message in encoder_problems(f"tu-{model}", spec.encoder.depth, spec.encoder.output_stride)
    ]


def declared_feature_channels(spec: "ModelSpec") -> tuple[int, ...] | None:
    """The channels of every map the spec's encoder will return (the input first), from data; None if unknown.

    Built-in names: the catalogue's table (measured on the built modules; a
    shallower encoder returns a prefix). ``tu-`` names: the timm index's
    feature levels, picked by the same layout the build uses. None where only
    a build can tell: plugin encoders, ``tu-`` models given ``encoder.params``
    (they may change the stages), models the index lacks or refuses, ViTs.
    """
    encoder = spec.encoder
    if spec.decoder.encoder_kind not in ("hierarchical", "pyramid"):
        return None
    if encoder.name.startswith("tu-"):
        if encoder.params:
            return None
        from specseg.encoders import timm_layout
        from specseg.encoders.timm_index import entry

        model = encoder.name[3:].partition(".")[0]
        info = entry(model)
        if info is None or "d" not in info or "c" not in info:
            return None
        try:
            plan = timm_layout.layout(model, info["d"], info["r"], encoder.depth)
        except timm_layout.LayoutError:
            return None  # refused by the timm rules already
        levels = [int(info["c"][i]) for i in plan.indices]
        if plan.style == "transformer":
            return (encoder.in_channels, 0, *levels)
        if plan.style == "vgg":
            return tuple(levels)
        return (encoder.in_channels, *levels)
    from specseg.encoders._catalog_static import METADATA

    metadata = METADATA.get(encoder.name)
    if metadata is None:
        return None  # a plugin: its channels are known once it is built
    channels = tuple(int(c) for c in metadata["out_channels"][: encoder.depth + 1])
    from specseg.encoders.families import VGG, family_of

    if family_of(encoder.name) == VGG:
        return channels  # SMP's VGG returns its stride-1 map first, not the input
    return (encoder.in_channels, *channels[1:])


def feature_channel_issues(spec: "ModelSpec") -> list[SpecIssue]:
    """The decoder's rules on the encoder's feature channels, where the encoder declares them as data.

    The build applies the same rules (:meth:`DecoderSpec.feature_issues`) to
    the built encoder, so what passes here does not fail there.
    """
    channels = declared_feature_channels(spec)
    return [] if channels is None else spec.decoder.feature_issues(spec, channels)
