"""Version-1 whole-model weights in a version-2 network: the state-dict key mapping (torch-free).

A version-1 spec migrated to version 2 (``specseg fmt --to 2``) builds the
same network under other names:

=========================  ===============================
version 1 key prefix       version 2 key prefix
=========================  ===============================
``encoder.``               ``encoder.`` (unchanged)
``decoder.``               ``decoders.<decoder>.``
``segmentation_head.``     ``heads.<segmentation head>.``
``classification_head.``   ``heads.<classification head>.``
=========================  ===============================

The mapping exists when the version-2 spec has one decoder, one
segmentation head reading it and at most one classification head reading
the encoder, as a migrated spec has (``main``, ``mask``, ``labels``).
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

from specseg.spec.heads import ENCODER, ClassificationHeadSpec, SegmentationHeadSpec
from specseg.spec.multitask import MultiTaskSpec

V = TypeVar("V")
#: Top-level module names of a version-1 network (besides ``encoder``).
V1_PREFIXES = ("decoder.", "segmentation_head.", "classification_head.")


def v1_prefix_map(spec: MultiTaskSpec) -> dict[str, str] | None:
    """``{version-1 prefix: version-2 prefix}`` for ``spec``, or None when it is not a version-1 shape."""
    if len(spec.decoders) != 1:
        return None
    (decoder,) = spec.decoders
    segmentation = [n for n, h in spec.heads.items() if isinstance(h, SegmentationHeadSpec)]
    classification = [n for n, h in spec.heads.items() if isinstance(h, ClassificationHeadSpec)]
    if len(segmentation) != 1 or len(classification) > 1:
        return None
    if classification and spec.heads[classification[0]].from_ != ENCODER:
        return None
    mapping = {"decoder.": f"decoders.{decoder}.", "segmentation_head.": f"heads.{segmentation[0]}."}
    if classification:
        mapping["classification_head."] = f"heads.{classification[0]}."
    return mapping


def is_v1_state_dict(state_dict: Mapping[str, Any]) -> bool:
    """Whether ``state_dict`` has a version-1 network's layout (a ``decoder.`` or ``segmentation_head.`` key)."""
    return any(k.startswith(V1_PREFIXES[:2]) for k in state_dict)


def v1_to_v2_state_dict(state_dict: Mapping[str, V], spec: MultiTaskSpec) -> dict[str, V]:
    """Rename a version-1 network's keys for ``spec``'s network; other keys pass unchanged.

    Raises ``ValueError`` when ``spec`` has no version-1 counterpart.
    """
    mapping = v1_prefix_map(spec)
    if mapping is None:
        raise ValueError(
            "version-1 weights (decoder.*, segmentation_head.*) fit only a version-2 spec with one decoder, "
            "one segmentation head and at most one classification head on the encoder"
        )
    out: dict[str, V] = {}
    for key, value in state_dict.items():
        for old, new in mapping.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out
