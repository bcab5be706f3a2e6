"""Cross-field rules on the encoder that need the timm index (torch-free).

A ``tu-`` encoder (or a catalogue name built on a timm model) builds only
at the depths, output strides and input sizes its timm model supports; the
shipped timm index (:mod:`specseg.encoders.timm_index`) knows them, found
on the models themselves, so ``specseg validate`` refuses what would not build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
