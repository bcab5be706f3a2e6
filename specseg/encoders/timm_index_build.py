"""Generating the timm index: what each timm model supports as a ``tu-`` encoder, found on the model itself.

Every model is built on the meta device (shapes without memory or
arithmetic) exactly as :class:`~specseg.encoders.timm_universal.TimmUniversalEncoder`
builds it, and run on meta inputs, so every verdict rests on real feature
maps: the strides of each level at output stride 32, 16 and 8 (by timm's own
``output_stride`` or by dilating stages, whichever gives exactly the declared
strides), and the input sizes it takes. Models that cannot run on the meta
device are run on the CPU at small sizes instead.

Run ``python -m specseg.encoders.timm_index --refresh`` after changing the
timm version or specseg's encoder code; the test suite re-checks a sample.
"""

from __future__ import annotations

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
from specseg.encoders.sizes import SizeRule, rule_from_sizes

#: Sizes tried first; a model passing them all takes any multiple of 32.
QUICK_SIZES = (32, 64, 96, 160, 256)
#: Sizes tried when a quick one fails, to find the model's rule (with the model's own size and twice it).
SCAN_SIZES = tuple(range(32, 513, 32))
#: (depth, output_stride) pairs whose dilation is checked; other pairs follow from these levels.
DILATIONS = ((5, 16), (5, 8), (4, 8), (4, 16), (3, 8))
#: Seconds allowed for one model before it is recorded as failed.
MODEL_TIMEOUT_S = 240


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    return f"{type(exc).__name__}: {detail}"[:300]


def _build(name: str, depth: int, output_stride: int, method: str, params: dict[str, Any], meta: bool) -> Any:
    from specseg.encoders.timm_universal import TimmUniversalEncoder

    context = torch.device("meta") if meta else contextlib.nullcontext()
    with context, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TimmUniversalEncoder(name, depth=depth, output_stride=output_stride, dilation=method, **params)


def _meta_unsupported(exc: BaseException) -> bool:
    """Whether ``exc`` is the meta device's limitation rather than the model's."""
    if isinstance(exc, NotImplementedError):
        return True
    text = str(exc).lower()
    # Not a bare "meta": class names such as MetaFormer contain it.
    markers = ("meta tensor", "device meta", "device='meta'", "on meta", "'meta'", "meta device", "item()", "data-dependent", "data dependent")
    return not isinstance(exc, TypeError) and any(marker in text for marker in markers)


def check_strides(encoder: Any, size: int, meta: bool = True) -> str | None:
    """Run ``encoder`` on a ``size`` x ``size`` input; None when every map has its declared stride and channels, else why not."""
    device = "meta" if meta else "cpu"
    x = torch.zeros(1, encoder.in_channels, size, size, device=device)
    encoder.eval()  # as `specseg build` runs it (a training batch of one 1x1 map is the batch's problem, not the size's)
    with torch.inference_mode():
        features = encoder(x)
    strides = list(encoder.feature_info.strides)
    channels = encoder.out_channels
    if len(features) != len(strides):
        return f"{len(features)} feature maps instead of {len(strides)}"
    for i, (feature, stride, width) in enumerate(zip(features, strides, channels)):
        expected = (size // stride, size // stride)
        got = tuple(int(v) for v in feature.shape[-2:])
        if got != expected or int(feature.shape[1]) != width:
            return (
                f"feature {i} is {int(feature.shape[1])}x{got[0]}x{got[1]} at a {size}x{size} input, "
                f"declared {width}x{expected[0]}x{expected[1]} (stride {stride})"
            )
    return None


class _Runner:
    """Builds and runs one model on the meta device, falling back to the CPU where meta cannot run it."""

    def __init__(self, name: str, params: dict[str, Any]):
        self.name = name
        self.params = params
        self.meta = True
        self.no_native = False
        self.img_size: int | None = None
        self.cache: dict[tuple[int, int, str], Any] = {}

    def encoder(self, depth: int, output_stride: int, method: str) -> Any:
        key = (depth, output_stride, method)
        if key not in self.cache:
            self.cache[key] = _build(self.name, depth, output_stride, method, self.params, self.meta)
        return self.cache[key]

    def check(self, depth: int, output_stride: int, method: str, size: int) -> str | None:
        """None if the encoder builds and runs at ``size`` with its declared strides, else the reason."""
        try:
            encoder = self.encoder(depth, output_stride, method)
            return check_strides(encoder, size, self.meta)
        except Exception as exc:  # noqa: BLE001 - any failure is a verdict about the model
            if self.meta and _meta_unsupported(exc):
                self.meta = False
                self.cache.clear()
                return self.check(depth, output_stride, method, size)
            return _first_line(exc)


def _sizes(runner: _Runner, depth: int) -> tuple[SizeRule | None, str | None]:
    """The size rule of the encoder at ``depth`` (output stride 32), and a reason if no size works."""
    quick = {s: runner.check(depth, 32, "none", s) for s in QUICK_SIZES}
    if all(v is None for v in quick.values()):
        return None, None
    sizes = tuple(sorted(set(SCAN_SIZES) | ({runner.img_size, 2 * runner.img_size} if runner.img_size else set())))
    results = {s: quick.get(s) if s in quick else runner.check(depth, 32, "none", s) for s in sizes}
    rule = rule_from_sizes([s for s, v in results.items() if v is None], sizes)
    if rule is not None and rule.only == ():
        reasons = [v for _, v in sorted(results.items()) if v]
        # The largest size's reason: small sizes fail for reasons of their own (a 1x1 map under a 3x3 kernel).
        return rule, reasons[-1] if reasons else "no input size works"
    return rule, None


def _test_size(rule: SizeRule | None) -> int:
    """A valid input size whose deepest map is at least 2x2 (so a wrong padding shows)."""
    if rule is None:
        return 64
    return rule.nearest(64) or 64


def find_dilation(name: str, depth: int, output_stride: int, params: dict[str, Any] | None = None, size: int | None = None) -> str:
    """``native`` or ``stages`` (the first that gives exactly the declared strides), or why neither does."""
    runner = _Runner(name, dict(params or {}))
    if size is None:
        rule, _ = _sizes(runner, depth) if params else size_rule_from_index(name)
        size = _test_size(rule)
    return _dilation(runner, depth, output_stride, size)


def size_rule_from_index(name: str) -> tuple[SizeRule | None, None]:
    from specseg.encoders import timm_index

    return timm_index.size_rule(name)[1], None


def _short(reason: str) -> str:
    """A dilation failure without the wrapper text the builder adds."""
    reason = reason.removeprefix("NotDilatableError: ")
    if " cannot be dilated to output_stride " in reason and ": " in reason:
        reason = reason.split(": ", 1)[1].split("; use output_stride")[0]
    if "unexpected keyword" in reason and "output_stride" in reason:
        return "timm has no output_stride option for it"
    return reason


def _dilation(runner: _Runner, depth: int, output_stride: int, size: int) -> str:
    reasons = []
    for method in ("native", "stages"):
        if method == "native" and runner.no_native:
            reasons.append("timm has no output_stride option for it")
            continue
        reason = runner.check(depth, output_stride, method, size)
        if reason is None:
            return method
        reason = _short(reason)
        if method == "native" and reason == "timm has no output_stride option for it":
            runner.no_native = True
        reasons.append(reason if method == "native" else f"dilating its stages: {reason}")
    return "; ".join(dict.fromkeys(reasons))


def find_size_rule(name: str, params: dict[str, Any] | None = None, depth: int = 5) -> SizeRule | None:
    """The input sizes ``name`` (with ``params``) takes, found by running it."""
    return _sizes(_Runner(name, dict(params or {})), depth)[0]


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
    import timm
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

    done: dict[str, Any] = {}
    if journal is not None and journal.exists():
        for line in journal.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["name"]] = record["entry"]

    tags: dict[str, list[str]] = {}
    for full_name in timm.list_pretrained():
        model, _, tag = full_name.partition(".")
        if tag:
            tags.setdefault(model, []).append(tag)
    models: dict[str, Any] = {}
    for name in names or timm.list_models():
        start = time.monotonic()
        if name in done:
            models[name] = done[name]
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
        for line in journal.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                examined[record["name"]] = record["entry"]
    tags: dict[str, list[str]] = {}
    for full_name in timm.list_pretrained():
        model, _, tag = full_name.partition(".")
        if tag:
            tags.setdefault(model, []).append(tag)
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
    """``python -m specseg.encoders.timm_index --refresh [--out PATH] [NAME ...]``."""
    from specseg.encoders.timm_index import INDEX_PATH

    out = INDEX_PATH
    names: list[str] = []
    args = list(argv)
    if "--refresh-builtins" in args:
        # Only the built-in names' verdicts (after adding or changing a built-in encoder module).
        from specseg.encoders.timm_index import read_index

        index = read_index(out)
        index["builtins"] = generate_builtins(progress=lambda line: print(line, file=sys.stderr, flush=True))
        write(index, out)
        print(f"wrote {out}: {len(index['builtins'])} built-in names", file=sys.stderr)
        return 0
    while args:
        arg = args.pop(0)
        if arg == "--out":
            out = Path(args.pop(0))
        elif arg != "--refresh":
            names.append(arg)
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
