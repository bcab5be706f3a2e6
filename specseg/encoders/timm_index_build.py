"""Generating the timm index: what each timm model supports as a ``tu-`` encoder, found on the model itself.

Every model is built on the meta device (shapes without memory or
arithmetic) exactly as :class:`~specseg.encoders.timm_universal.TimmUniversalEncoder`
builds it, and run on meta inputs, so every verdict rests on real feature
maps: the strides of each level at output stride 32, 16 and 8 (by timm's own
``output_stride`` or by dilating stages, whichever gives exactly the declared
strides), and the input sizes it takes. Models that cannot run on the meta
device are run on the CPU at small sizes instead.

Run ``python -m specseg.encoders.timm_index_build --refresh`` after changing the
timm version or specseg's encoder code; the test suite re-checks a sample.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from specseg.encoders import timm_layout
from specseg.encoders.timm_universal import DILATIONS, _dilation, _first_line, _Runner, _sizes, _test_size  # the build's live checks

#: Seconds allowed for one model before it is recorded as failed.
MODEL_TIMEOUT_S = 240

@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no verdict within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def examine(name: str) -> dict[str, Any]:
    """The index entry of timm model ``name``: see :mod:`specseg.encoders.timm_index` for the keys."""
    from timm.models import _registry

    from specseg.encoders.timm_universal import probe

    entry: dict[str, Any] = {"f": _registry._model_to_module.get(name, "")}
    cfg = _registry.get_pretrained_cfg(name)
    if cfg is not None and cfg.input_size:
        entry["img"] = int(cfg.input_size[-1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            default, full, channels, nhwc = probe(name)
    except Exception as exc:  # noqa: BLE001
        entry["e"] = f"timm cannot build it with features_only: {_first_line(exc)}"
        return entry
    entry.update({"d": list(default), "r": list(full), "c": list(channels)})
    if len(set(full)) == 1:
        strict = _strict_image_size(name)
        if strict is not None:
            entry["strict"] = strict
    depths = []
    for depth in range(1, 6):
        try:
            timm_layout.layout(name, default, full, depth)
            depths.append(depth)
        except timm_layout.LayoutError:
            pass
    if not depths:
        return entry
    runner = _Runner(name, {})
    runner.img_size = entry.get("img")
    deepest = max(depths)
    rule, reason = _sizes(runner, deepest)
    if rule is not None:
        entry["sizes"] = rule.to_json()
    if reason is not None:
        entry["e"] = f"it runs at no input size: {reason}"
        return entry
    size = _test_size(rule)
    if deepest > 1:
        # Shallower encoders take a prefix of the same levels; depth 1 is the one with its own code paths.
        verdict = runner.check(1 if 1 in depths else min(depths), 32, "none", size)
        if verdict is not None:
            entry["bad"] = {str(1 if 1 in depths else min(depths)): verdict}
    dilation: dict[str, str] = {}
    for depth, output_stride in DILATIONS:
        if depth not in depths:
            continue
        if depth < 5 and dilation.get(f"5/{output_stride}") in ("native", "stages"):
            continue  # fewer dilated stages than a depth that works: looked up from that one
        plan = timm_layout.layout(name, default, full, depth)
        if plan.needs_dilation(output_stride):
            dilation[f"{depth}/{output_stride}"] = _dilation(runner, depth, output_stride, size)
    if dilation:
        entry["os"] = dilation
    if not runner.meta:
        entry["cpu"] = 1
    return entry


def _strict_image_size(name: str) -> list[int] | None:
    """The one input size a plain ViT's patch embedding takes (``[h, w]``), or None when it takes any size.

    DPT builds the ViT as timm does by default, so this is the size it gets
    unless ``encoder.params`` set ``img_size`` or ``dynamic_img_size``.
    """
    import timm

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False)
    embed = getattr(model, "patch_embed", None)
    size = getattr(embed, "img_size", None)
    if not getattr(embed, "strict_img_size", False) or size is None:
        return None
    return [int(size[0]), int(size[1])]


def _read_journal(journal: Path) -> dict[str, Any]:
    """The entries a refresh journal holds (one JSON record per line), by model name."""
    entries: dict[str, Any] = {}
    for line in journal.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            entries[record["name"]] = record["entry"]
    return entries


def _pretrained_tags() -> dict[str, list[str]]:
    """timm's pretrained tags of each model (``resnet18`` -> ``["a1_in1k", ...]``)."""
    import timm

    tags: dict[str, list[str]] = {}
    for full_name in timm.list_pretrained():
        model, _, tag = full_name.partition(".")
        if tag:
            tags.setdefault(model, []).append(tag)
    return tags


def generate(
    names: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    journal: Path | None = None,
) -> dict[str, Any]:
    """The whole index for the installed timm (or for ``names`` only).

    With ``journal`` (a JSON-lines file), each model's entry is appended as
    soon as it is known and models already there are not examined again, so
    an interrupted refresh resumes where it stopped.
    """
    import timm

    done = _read_journal(journal) if journal is not None and journal.exists() else {}
    tags = _pretrained_tags()
    models: dict[str, Any] = {}
    for name in names or timm.list_models():
        start = time.monotonic()
        if name in done:
            models[name] = {**done[name], **({"t": tags[name]} if name in tags else {})}
            continue
        try:
            with _time_limit(MODEL_TIMEOUT_S):
                entry = examine(name)
        except Exception as exc:  # noqa: BLE001 - a timeout or a crash is recorded, not fatal
            entry = {"e": f"could not be examined: {_first_line(exc)}"}
        if journal is not None:
            with open(journal, "a") as handle:
                handle.write(json.dumps({"name": name, "entry": entry}) + "\n")
        if name in tags:
            entry["t"] = tags[name]
        models[name] = entry
        if progress is not None:
            progress(f"{name}\t{time.monotonic() - start:.2f}s\t{entry.get('e', '')}")
    return {"timm": timm.__version__, "torch": torch.__version__.split("+")[0], "models": models}


def from_journals(journals: list[Path]) -> dict[str, Any]:
    """An index of every installed timm model name, with the entries examined so far in ``journals``.

    Names not examined yet are listed with their family and tags only: ``validate``
    knows they exist, and the build checks what they support live.
    """
    import timm
    from timm.models import _registry

    examined: dict[str, Any] = {}
    for journal in journals:
        examined.update(_read_journal(journal))
    tags = _pretrained_tags()
    models: dict[str, Any] = {}
    for name in timm.list_models():
        entry = dict(examined.get(name) or {"f": _registry._model_to_module.get(name, "")})
        if name in tags:
            entry["t"] = tags[name]
        models[name] = entry
    return {"timm": timm.__version__, "torch": torch.__version__.split("+")[0], "models": models}


def write(index: dict[str, Any], path: Path) -> None:
    """Store ``index`` compactly (sorted keys, gzip without a timestamp, so a refresh diff shows only real changes)."""
    data = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write(data)


def main(argv: list[str]) -> int:
    """``python -m specseg.encoders.timm_index_build --refresh [--out PATH] [NAME ...]`` (or ``--refresh-builtins``)."""
    from specseg.encoders.timm_index import INDEX_PATH

    parser = argparse.ArgumentParser(
        prog="python -m specseg.encoders.timm_index_build",
        description="Regenerate the timm index (what each timm model supports as a tu- encoder) from the installed timm.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--refresh", action="store_true", help="examine timm's models (all, or the NAMEs given)")
    action.add_argument("--refresh-builtins", action="store_true", help="re-check only the built-in encoder names")
    parser.add_argument("--out", type=Path, default=INDEX_PATH, help="index file to write (default: the packaged one)")
    parser.add_argument("names", nargs="*", metavar="NAME", help="timm model names to refresh (default: all)")
    options = parser.parse_args(argv)
    out: Path = options.out
    names: list[str] = options.names
    if options.refresh_builtins:
        # Only the built-in names' verdicts (after adding or changing a built-in encoder module).
        from specseg.encoders.timm_index import read_index

        index = read_index(out)
        index["builtins"] = generate_builtins(progress=lambda line: print(line, file=sys.stderr, flush=True))
        write(index, out)
        print(f"wrote {out}: {len(index['builtins'])} built-in names", file=sys.stderr)
        return 0
    if names:
        import timm

        unknown = sorted(set(names) - set(timm.list_models()))
        if unknown:
            parser.error(f"not timm model names: {', '.join(unknown)}")
    start = time.monotonic()
    torch.set_num_threads(1)
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    journal = out.with_name(out.name + ".journal")
    index = generate(names or None, progress=progress, journal=journal)
    if names and out.exists():
        # Refreshing some names keeps the others.
        from specseg.encoders.timm_index import read_index

        old = read_index(out)
        old["models"].update(index["models"])
        index = {**old, "timm": index["timm"], "torch": index["torch"]}
    else:
        index["builtins"] = generate_builtins(progress=progress)
    write(index, out)
    journal.unlink(missing_ok=True)
    print(f"wrote {out}: {len(index['models'])} models in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return 0


# --- built-in (catalogue) encoders ---------------------------------------------------------------------


def _check_builtin(name: str, depth: int, output_stride: int, size: int) -> str | None:
    """None if built-in encoder ``name`` builds at ``depth``/``output_stride`` and its deepest map has that stride."""
    from specseg.encoders.factory import EncoderBuildError, build_encoder
    from specseg.spec.encoder import EncoderSpec

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoder = build_encoder(EncoderSpec(name=name, depth=depth, output_stride=output_stride), load_weights=False)
        encoder.eval()
        with torch.inference_mode():
            features = encoder(torch.zeros(1, 3, size, size, device="meta"))
    except EncoderBuildError as exc:
        return str(exc).split(": ", 1)[-1] if "cannot be dilated" not in str(exc) else str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure is a verdict
        return _first_line(exc)
    stride = min(output_stride, 2**depth)
    got = tuple(int(v) for v in features[-1].shape[-2:])
    if got != (size // stride, size // stride):
        return f"its deepest feature map is {got[0]}x{got[1]} at a {size}x{size} input, not stride {stride}"
    return None


def examine_builtin(name: str) -> dict[str, Any]:
    """Index entry of a built-in encoder name: ``os`` verdicts (``ok`` or why not) at output stride 16 and 8."""
    entry: dict[str, Any] = {}
    verdicts = {}
    for depth, output_stride in ((5, 16), (5, 8), (4, 8)):
        if depth == 4 and (verdicts.get("5/8") == "ok" or verdicts.get("5/16") != "ok"):
            continue  # a deeper encoder that works covers it; one that cannot dilate at all will not here either
        verdicts[f"{depth}/{output_stride}"] = _check_builtin(name, depth, output_stride, 64) or "ok"
    entry["os"] = verdicts
    return entry


def generate_builtins(names: list[str] | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``{name: entry}`` for the built-in encoder names (see :func:`examine_builtin`)."""
    from specseg.encoders.registry import registry

    out = {}
    # Names built straight from a timm model are covered by that model's entry.
    own = [e.name for e in registry.entries() if e.is_builtin and (e.timm_model is None or e.timm_options)]
    for name in names or own:
        start = time.monotonic()
        try:
            with _time_limit(MODEL_TIMEOUT_S):
                out[name] = examine_builtin(name)
        except Exception as exc:  # noqa: BLE001
            out[name] = {"e": f"could not be examined: {_first_line(exc)}"}
        if progress is not None:
            progress(f"{name}\t{time.monotonic() - start:.2f}s\t{out[name]}")
    return out


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
