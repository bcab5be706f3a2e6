"""The timm index: which timm models exist and what each supports as a ``tu-`` encoder (torch-free).

``specseg validate`` cannot build a ``tu-`` model (that needs torch and
seconds), yet accepting a spec promises that it builds. This index, a
compact file shipped with specseg (``timm_index.json.gz``) and generated
from the timm version specseg is tested with by running every model on the
meta device (:mod:`specseg.encoders.timm_index_build`), answers for each
timm model name:

* whether it exists (with case-insensitive "did you mean" suggestions) and
  its pretrained tags;
* whether it gives a feature pyramid at all (``e``: why not), its feature
  levels (``d`` default-level reductions, ``r``/``c`` reductions and
  channels of every level), hence the encoder depths it supports;
* the input sizes it takes (``sizes``, a :class:`~specseg.encoders.sizes.SizeRule`;
  absent: any; for plain ViTs, ``strict``: the one ``[h, w]`` their patch embedding takes);
* how it reaches output stride 16 or 8 with exactly the declared strides
  (``os``: ``"depth/stride"`` -> ``native``, ``stages`` or why it cannot),
  and depths that fail on the real model (``bad``).

The builder uses the same verdicts (and checks live what the index cannot
speak for: models given ``encoder.params``, or a timm version whose models
the index lacks). Refresh: ``python -m specseg.encoders.timm_index_build --refresh``.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

from specseg.encoders import timm_layout
from specseg.encoders.sizes import SizeRule, dpt_input_multiple
from specseg.loader.suggest import closest

INDEX_PATH = Path(__file__).with_name("timm_index.json.gz")


def read_index(path: Path = INDEX_PATH) -> dict[str, Any]:
    """The index stored at ``path`` (an empty one when the file is missing)."""
    try:
        with gzip.open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return {"timm": None, "models": {}}


@functools.lru_cache(maxsize=1)
def index() -> dict[str, Any]:
    """The shipped index (read once per process)."""
    return read_index()


@functools.lru_cache(maxsize=1)
def installed_timm_version() -> str | None:
    """The installed timm version, from package metadata (timm itself is not imported)."""
    from importlib import metadata

    try:
        return metadata.version("timm")
    except metadata.PackageNotFoundError:
        return None


def is_current() -> bool:
    """Whether the index was generated from the installed timm version (so its name list is complete)."""
    return bool(index()["models"]) and index().get("timm") == installed_timm_version()


def entry(model_name: str) -> dict[str, Any] | None:
    """The index entry of a timm model name (without pretrained tag), or None when the index lacks it."""
    return index()["models"].get(model_name)


def name_problem(encoder_name: str) -> str | None:
    """Why the ``tu-`` name ``encoder_name`` names no timm model (with suggestions), or None.

    With an index from another timm version than the installed one, names
    the index lacks are let through (the build checks them against timm).
    """
    body = encoder_name[3:]
    model, _, tag = body.partition(".")
    models = index()["models"]
    if model in models:
        info = models[model]
        tags = info.get("t", [])
        if tag and tags and tag not in tags:
            hints = closest(tag, tags, n=3)
            hint = f"did you mean {', '.join(repr(f'tu-{model}.{h}') for h in hints)}? " if hints else ""
            return f"timm model {model!r} has no pretrained tag {tag!r}; {hint}its tags: {', '.join(tags[:12])}{' ...' if len(tags) > 12 else ''}"
        return None
    if not models or not is_current() and encoder_name[:3] == "tu-" and body == body.lower():
        return None
    hints = closest(model, models, n=3)
    hint = f"; did you mean {', '.join(repr('tu-' + h) for h in hints)}?" if hints else ""
    return (
        f"timm has no model named {model!r}{hint} (timm {index().get('timm')}; "
        "`specseg list encoders 'tu-*'` lists them; names are lowercase)"
    )


def _brief(reason: str, limit: int = 200) -> str:
    """A stored reason cut to one readable clause."""
    return reason if len(reason) <= limit else reason[: limit - 3].rstrip() + "..."


def _layout(model: str, info: dict[str, Any], depth: int) -> timm_layout.Layout:
    return timm_layout.layout(model, info["d"], info["r"], depth)


def encoder_problems(encoder_name: str, depth: int, output_stride: int) -> list[tuple[str, str]]:
    """``(encoder key, message)`` for each reason ``tu-`` encoder ``encoder_name`` cannot be a pyramid encoder as asked.

    Empty when the index says it builds (or cannot speak for the name).
    """
    model = encoder_name[3:].partition(".")[0]
    info = entry(model)
    if info is None:
        return []
    if "e" not in info and "d" not in info:
        return []  # listed but not examined (an interrupted refresh): the build checks it live
    if "e" in info:
        return [("name", f"timm model {model!r} cannot be used as an encoder: {info['e']}")]
    try:
        plan = _layout(model, info, depth)
    except timm_layout.LayoutError as exc:
        valid = supported_depths(model)
        field = exc.field
        text = str(exc)
        if field == "depth" and valid:
            text += f"; it supports encoder.depth {', '.join(map(str, valid))}"
        return [(field, text)]
    bad = info.get("bad", {}).get(str(depth))
    if bad is not None:
        return [("depth", f"timm model {model!r} does not run at encoder.depth {depth}: {bad}")]
    if plan.needs_dilation(output_stride):
        verdict = dilation_verdict(model, depth, output_stride)
        if verdict not in ("native", "stages", None):
            return [
                (
                    "output_stride",
                    f"timm model {model!r} cannot be dilated to output_stride {output_stride} with exactly the declared "
                    f"strides ({_brief(verdict)}); use output_stride 32" + (" or a smaller encoder.depth" if depth > 1 else ""),
                )
            ]
    return []


def vit_problems(encoder_name: str, depth: int) -> list[tuple[str, str]]:
    """``(encoder key, message)`` when ``tu-`` model ``encoder_name`` cannot be DPT's ViT encoder at ``depth``.

    From the index: CNN-style models (first features at stride 1 or 2) have
    no patch embedding; a ViT has one feature level per block, and DPT
    rescales by powers of two, so the patch size must be one.
    """
    model = encoder_name[3:].partition(".")[0]
    info = entry(model)
    if info is None or "d" not in info:
        return []
    default, full = info["d"], info["r"]
    if default and default[0] <= 2:
        return [
            (
                "name",
                f"timm model {model!r} is a CNN (features from stride {default[0]}), not a vision transformer with a "
                "patch embedding, which DPT needs; use a ViT such as tu-vit_tiny_patch16_224 (for CNN encoders use "
                "another architecture, e.g. upernet or fpn)",
            )
        ]
    if len(set(full)) > 1:
        return [
            (
                "name",
                f"timm model {model!r} is hierarchical (features at strides {sorted(set(full))}), not a plain vision "
                "transformer, which DPT needs; use a ViT such as tu-vit_tiny_patch16_224 (for hierarchical encoders "
                "use another architecture, e.g. upernet or fpn)",
            )
        ]
    if len(set(full)) == 1:
        patch = full[0]
        if patch & (patch - 1):
            return [("name", f"timm model {model!r} has patch size {patch}; DPT rescales its features by powers of two, so it needs a power-of-two patch size such as 8 or 16")]
        if depth > len(full):
            return [("depth", f"timm model {model!r} has {len(full)} blocks; encoder.depth must be at most {len(full)}, got {depth}")]
        # Only a patch embedding with a strict size fixes the input (timm's default for most ViTs).
        strict = info.get("strict")
        multiple = dpt_input_multiple(patch, depth)
        if strict and (strict[0] % multiple or strict[1] % multiple):
            fits = [d for d in range(1, depth) if not (strict[0] % dpt_input_multiple(patch, d) or strict[1] % dpt_input_multiple(patch, d))]
            return [
                (
                    "depth",
                    f"timm model {model!r} takes {strict[0]}x{strict[1]} inputs only, and DPT at encoder.depth {depth} needs "
                    f"input sizes that are multiples of {multiple}, so no input fits; use encoder.depth "
                    f"{fits[-1] if fits else 1} or less, or set encoder.params.img_size to a multiple of {multiple} "
                    "(or encoder.params.dynamic_img_size: true)",
                )
            ]
    return []


def builtin_problems(name: str, depth: int, output_stride: int) -> list[tuple[str, str]]:
    """``(encoder key, message)`` when built-in encoder ``name`` cannot reach ``output_stride`` at ``depth``.

    The index holds what each built-in name gave when built at output stride
    16 and 8 (``builtins``); names it lacks (plugins) are checked at build.
    """
    if output_stride >= 2**depth:
        return []  # nothing to dilate: no need to read the index
    info = index().get("builtins", {}).get(name)
    if info is None:
        return []
    verdicts = info.get("os", {})
    verdict = verdicts.get(f"{depth}/{output_stride}")
    if verdict is None:
        deeper = [verdicts.get(f"{d}/{output_stride}") for d in range(depth + 1, 6)]
        verdict = "ok" if "ok" in deeper else next((v for v in deeper if v is not None), "ok")
    if verdict == "ok":
        return []
    return [("output_stride", _brief(verdict, 300))]


def supported_depths(model: str) -> list[int]:
    """The encoder depths (1..5) the model supports, per the index."""
    info = entry(model)
    if info is None or "d" not in info or "e" in info:
        return []
    depths = []
    for depth in range(1, 6):
        try:
            _layout(model, info, depth)
        except timm_layout.LayoutError:
            continue
        if str(depth) not in info.get("bad", {}):
            depths.append(depth)
    return depths


def dilation_verdict(model: str, depth: int, output_stride: int) -> str | None:
    """``native``/``stages`` (how to dilate), a reason it cannot be, or None when the index did not check this pair."""
    info = entry(model.partition(".")[0])
    if info is None:
        return None
    verdicts = info.get("os", {})
    verdict = verdicts.get(f"{depth}/{output_stride}")
    if verdict is None:
        # A shallower encoder dilates a subset of the stages a deeper one that works dilates.
        deeper = [verdicts.get(f"{d}/{output_stride}") for d in range(depth + 1, 6)]
        verdict = next((v for v in deeper if v in ("native", "stages")), None)
    return verdict


def size_rule(model: str) -> tuple[bool, SizeRule | None]:
    """(whether the index knows the model, its :class:`SizeRule` or None for any size)."""
    info = entry(model.partition(".")[0])
    if info is None or "d" not in info:
        return False, None
    return True, SizeRule.from_json(info.get("sizes"))
