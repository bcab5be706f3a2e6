"""The encoder catalogue: rows for ``specseg list encoders`` and the README's encoder table.

Listing is fast: built-in encoders' channels and parameter counts are
tabulated (:mod:`specseg.encoders._catalog_static`, regenerated with
:func:`compute_metadata` and checked by the tests); timm's models are listed
by name from ``timm.list_models()`` without building any; plugin encoders
are listed from package metadata without importing them.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from specseg.encoders.registry import registry


def _static() -> dict[str, dict[str, Any]]:
    from specseg.encoders._catalog_static import METADATA

    return METADATA


def encoder_rows(pattern: str | None = None, include_timm: bool = True) -> list[dict[str, Any]]:
    """One row per encoder name matching the glob ``pattern`` (all when None).

    Keys: ``name``; ``source`` (``builtin``, ``timm``, ``runtime`` for
    in-process registrations, or a plugin's distribution name);
    ``out_channels`` (at depth 5) and ``params`` (parameter count at depth 5,
    3 input channels), null where unknown without building the encoder;
    ``weights`` (available weights names; for ``tu-`` models timm's
    pretrained tags, ``imagenet`` meaning the default one); ``timm_model``
    (the timm model it builds, if any). Sorted: built-in and registered
    names first, then ``tu-`` names.
    """
    static = _static()
    rows: list[dict[str, Any]] = []
    for entry in registry.entries():
        if pattern is not None and not fnmatch.fnmatchcase(entry.name, pattern):
            continue
        meta = static.get(entry.name, {}) if entry.is_builtin else {}
        rows.append(
            {
                "name": entry.name,
                "source": entry.source,
                "out_channels": meta.get("out_channels"),
                "params": meta.get("params"),
                "weights": list(entry.pretrained_settings) if not entry.pending else None,
                "timm_model": entry.timm_model,
            }
        )
    if include_timm and (pattern is None or pattern.startswith(("tu-", "tu", "t", "*", "?", "["))):
        import timm

        tags: dict[str, list[str]] = {}
        for name in timm.list_pretrained():
            model, _, tag = name.partition(".")
            tags.setdefault(model, []).append(tag)
        for model in timm.list_models():
            name = f"tu-{model}"
            if pattern is not None and not fnmatch.fnmatchcase(name, pattern):
                continue
            rows.append(
                {
                    "name": name,
                    "source": "timm",
                    "out_channels": None,
                    "params": None,
                    "weights": (["imagenet"] + tags[model]) if model in tags else [],
                    "timm_model": model,
                }
            )
    return rows


def smp_comparison_rows() -> list[dict[str, Any]]:
    """The README's encoder table: one row per SMP encoder name specseg accepts.

    Keys: ``name``, ``family``, ``source`` (``specseg`` for specseg's own
    module, ``timm`` for a timm model), ``timm_model``, ``weights``,
    ``same_as_smp`` (network and state dict identical to SMP 0.6's),
    ``same_state_dict`` (SMP's checkpoints for the name load strictly) and
    ``note`` (how they differ, with out_channels and parameter counts where
    they differ).
    """
    from specseg.encoders.smp_names import SMP_NAMES

    static = _static()
    rows = []
    for row in SMP_NAMES:
        meta = static.get(row.name, {})
        notes = [row.note] if row.note else []
        ours_ch, smp_ch = meta.get("out_channels"), meta.get("smp_out_channels")
        if ours_ch is not None and smp_ch is not None and ours_ch != smp_ch:
            notes.append(f"out_channels {ours_ch} (SMP: {smp_ch})")
        ours_p, smp_p = meta.get("params"), meta.get("smp_params")
        if ours_p is not None and smp_p is not None and ours_p != smp_p:
            notes.append(f"{ours_p:,} parameters (SMP: {smp_p:,})")
        rows.append(
            {
                "name": row.name,
                "family": row.family,
                "source": "timm" if row.timm_model else "specseg",
                "timm_model": row.timm_model,
                "weights": list(row.pretrained_settings),
                "same_as_smp": not notes,
                "same_state_dict": row.timm_model is None or not row.note,
                "note": "; ".join(notes),
            }
        )
    return rows


def compute_metadata(name: str, with_smp: bool = True) -> dict[str, Any]:
    """Out_channels and parameter count of a built-in encoder at depth 5, built on the meta device.

    With ``with_smp`` (and segmentation_models_pytorch installed) SMP's values
    for the same name are added. Used to regenerate the static table and by its test.
    """
    import torch

    from specseg.encoders.factory import build_encoder
    from specseg.spec.encoder import EncoderSpec

    def on_meta(make: Any) -> Any:
        try:
            with torch.device("meta"):
                return make()
        except Exception:  # noqa: BLE001 - some networks cannot be built on the meta device
            return make()

    encoder = on_meta(lambda: build_encoder(EncoderSpec(name=name), load_weights=False))
    out: dict[str, Any] = {"out_channels": list(encoder.out_channels), "params": sum(p.numel() for p in encoder.parameters())}
    if with_smp:
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from segmentation_models_pytorch.encoders import get_encoder

                reference = on_meta(lambda: get_encoder(name, weights=None))
                out["smp_out_channels"] = list(reference.out_channels)
                out["smp_params"] = sum(p.numel() for p in reference.parameters())
        except Exception:  # noqa: BLE001 - SMP absent, or cannot build it on the meta device
            pass
    return out


def render_static_table() -> str:
    """The source text of :mod:`specseg.encoders._catalog_static` (regenerate after changing built-ins)."""
    rows = {name: compute_metadata(name) for name in registry.names(include_plugins=False)}
    lines = [
        '"""Static metadata of built-in encoders (generated by specseg.encoders.catalog.render_static_table; do not edit)."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "METADATA: dict[str, dict[str, Any]] = {",
    ]
    lines += [f"    {name!r}: {meta!r}," for name, meta in rows.items()]
    lines.append("}")
    return "\n".join(lines) + "\n"
