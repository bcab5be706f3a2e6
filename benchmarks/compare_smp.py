#!/usr/bin/env python
"""specseg side by side with segmentation_models_pytorch (SMP) 0.6.

For each of the twelve architectures (encoder ``resnet34``; DPT needs a ViT
and uses the ``tu-`` encoder of ``specs/dpt-*.yaml`` on both sides), with the
same constructor arguments on both sides (specseg's spec is written from
SMP's arguments by :func:`specseg.interop.smp_config.spec_from_smp_kwargs`),
it measures:

* build time: spec -> module (validation included) vs the SMP constructor
  with ``encoder_weights=None``; median of several builds after one warm-up
  build, in a fresh process per library and architecture;
* CPU forward latency, batch 1, ``torch.inference_mode``, a fixed thread
  count, default (contiguous) and ``channels_last`` memory formats: both
  models hold the same (trained-looking: BatchNorm statistics moved off
  their initial values) weights and run in the same process, interleaved
  (each model equally often in each position) after warm-up, so that load
  changes on the machine hit both alike; a second SMP instance runs
  alongside as a control (SMP vs SMP: the noise floor of the ratio); both
  outputs are compared with SMP's network run in float64;
* loading a trained model: specseg's artifact (``specseg.load``) or spec +
  ``weights:`` file (``specseg.build``) vs SMP's ``from_pretrained`` on a
  ``save_pretrained`` folder of the same model: wall time of the call and
  peak resident memory (``ru_maxrss``) minus the baseline after imports, in
  a fresh process per run; also the whole process (imports + load);
* CLI latency: ``specseg validate specs/unet-resnet34.yaml`` vs
  ``python -c "import torch"`` (and that validate does not import torch).

It prints a table with the ratio specseg / SMP for every row and writes it,
with the machine description and the command, to ``benchmarks/RESULTS.md``.

Usage::

    python benchmarks/compare_smp.py                  # the full benchmark (~35 min on 2 cores)
    python benchmarks/compare_smp.py --quick          # fewer runs and sizes (smoke test)
    python benchmarks/compare_smp.py --arch unet,fpn --out /tmp/results.md

Needs the test extra (``pip install -e ".[test]"``, which brings SMP 0.6).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "RESULTS.md"
CLI_SPEC = "specs/unet-resnet34.yaml"

#: Targets of the issue: specseg / SMP ratios (forward, load) and absolute limits (CLI).
TARGET_FORWARD = 1.00
TARGET_LOAD_WALL = 0.5
TARGET_LOAD_RSS = 0.6
TARGET_VALIDATE_S = 0.3


# --------------------------------------------------------------------------- cases


def architecture_cases(only: list[str] | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """``architecture -> (SMP class, SMP keyword arguments)``, the same for both libraries.

    Every architecture uses ``resnet34`` with SMP's defaults, except DPT,
    which needs a ViT: it takes the encoder (name, output indices, params)
    of ``specs/dpt-*.yaml``, on both sides.
    """
    sys.path.insert(0, str(ROOT))
    from specseg.spec.decoders import SECTIONS  # torch-free

    cases: dict[str, tuple[str, dict[str, Any]]] = {}
    for arch, section in SECTIONS.items():
        if only and arch not in only:
            continue
        kwargs: dict[str, Any] = {"encoder_name": "resnet34"}
        if arch == "dpt":
            kwargs = _dpt_kwargs()
        cases[arch] = (section.smp_class, kwargs)
    unknown = sorted(set(only or ()) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown architecture(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return cases


def _dpt_kwargs() -> dict[str, Any]:
    import yaml

    path = sorted((ROOT / "specs").glob("dpt-*.yaml"))[0]
    encoder = yaml.safe_load(path.read_text(encoding="utf-8"))["encoder"]
    kwargs: dict[str, Any] = {"encoder_name": encoder["name"]}
    if encoder.get("output_indices") is not None:
        kwargs["encoder_output_indices"] = list(encoder["output_indices"])
    if encoder.get("depth") is not None:
        kwargs["encoder_depth"] = encoder["depth"]
    kwargs.update(encoder.get("params") or {})
    return kwargs


def _describe_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


# --------------------------------------------------------------------------- workers (run in subprocesses)


def _setup_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != 1:
        torch.set_num_interop_threads(1)  # allowed once per process, before any parallel work


def _maxrss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _specseg_spec(smp_class: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    from specseg.interop.smp_config import spec_from_smp_kwargs

    return spec_from_smp_kwargs(smp_class, kwargs)


def _trained_batchnorm(model: Any) -> None:
    """Move the BatchNorm statistics away from their initial values, as training does (in place)."""
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.normal_(0, 0.1)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)


def worker_build(task: dict[str, Any]) -> dict[str, Any]:
    """Median build time of one library and architecture (after one warm-up build)."""
    import torch

    _setup_threads(task["threads"])
    smp_class, kwargs = task["smp_class"], task["kwargs"]
    if task["lib"] == "specseg":
        import specseg

        spec = _specseg_spec(smp_class, kwargs)
        make: Callable[[], Any] = lambda: specseg.build(spec)  # noqa: E731
    else:
        import segmentation_models_pytorch as smp

        cls = getattr(smp, smp_class)
        make = lambda: cls(encoder_weights=None, **kwargs)  # noqa: E731
    start = time.perf_counter()
    model = make()
    first = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    del model
    times = []
    for _ in range(task["runs"]):
        start = time.perf_counter()
        model = make()
        times.append(time.perf_counter() - start)
        del model
    return {"first": first, "times": times, "params": params}


def worker_forward(task: dict[str, Any]) -> dict[str, Any]:
    """Interleaved forward latencies of specseg and SMP models holding the same weights.

    specseg runs twice: as built, and after ``optimize_for_inference()``
    (channels_last, prepacked convolutions; it converts a contiguous input
    itself, so it is left in its layout when the others change). A second SMP instance with the same weights runs too (unless ``control``
    is false, as with --quick): SMP against SMP (same code, same weights)
    shows how far apart two equal models measure on this machine, the noise
    floor of the specseg / SMP ratio.
    """
    import torch

    _setup_threads(task["threads"])
    import segmentation_models_pytorch as smp

    import specseg

    smp_class, kwargs = task["smp_class"], task["kwargs"]
    torch.manual_seed(0)
    ref = getattr(smp, smp_class)(encoder_weights=None, **kwargs).eval()
    _trained_batchnorm(ref)
    ours = specseg.build(_specseg_spec(smp_class, kwargs)).eval()
    ours.load_state_dict(ref.state_dict())
    models = {"specseg": ours, "specseg-optimized": copy.deepcopy(ours).optimize_for_inference(), "smp": ref}
    if task.get("control", True):
        control = getattr(smp, smp_class)(encoder_weights=None, **kwargs).eval()
        control.load_state_dict(ref.state_dict())
        models["smp-control"] = control
    results = []
    exact: dict[int, Any] = {}
    smp_cl_error: dict[int, float] = {}
    for fmt in task["formats"]:
        memory_format = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        for name, model in models.items():
            if name != "specseg-optimized":
                model.to(memory_format=memory_format)
        for size in task["sizes"]:
            gen = torch.Generator().manual_seed(size)
            x = torch.randn(1, 3, size, size, generator=gen).contiguous(memory_format=memory_format)
            times: dict[str, list[float]] = {name: [] for name in models}
            with torch.inference_mode():
                if size not in exact:
                    # SMP's network in float64: the values every model should compute; and SMP's own error
                    # channels_last, the layout the optimized model computes in whatever its input's.
                    exact[size] = copy.deepcopy(ref).double()(x.double())
                    smp_cl = copy.deepcopy(ref).to(memory_format=torch.channels_last)
                    smp_cl_error[size] = float((smp_cl(x.contiguous(memory_format=torch.channels_last)).double() - exact[size]).abs().max())
                errors = {name: float((model(x).double() - exact[size]).abs().max()) for name, model in models.items()}
                errors["smp-channels_last"] = smp_cl_error[size]
                for _ in range(task["warmup"] - 1):
                    for model in models.values():
                        model(x)
                # Each model in each position equally often (a Latin square: rotations, forwards and backwards).
                names = list(models)
                orders = [names[i:] + names[:i] for i in range(len(names))]
                orders += [order[::-1] for order in orders]
                for r in range(task["runs"]):
                    for name in orders[r % len(orders)]:
                        start = time.perf_counter()
                        models[name](x)
                        times[name].append(time.perf_counter() - start)
            results.append({"size": size, "format": fmt, "times": times, "errors": errors})
    out: dict[str, Any] = {"results": results}
    if task.get("prepare_folder"):
        # The load benchmark's files, written here to spare a process start (not timed).
        out["prepared"] = worker_prepare_load({**task, "folder": task["prepare_folder"]})
    return out


def worker_prepare_load(task: dict[str, Any]) -> dict[str, Any]:
    """Write the same trained model for both libraries: SMP save_pretrained, specseg import/artifact."""
    import importlib.util

    import torch

    _setup_threads(task["threads"])
    import segmentation_models_pytorch as smp

    import specseg

    folder = Path(task["folder"])
    torch.manual_seed(1)
    model = getattr(smp, task["smp_class"])(encoder_weights=None, **task["kwargs"])
    _trained_batchnorm(model)
    model.save_pretrained(folder / "smp")
    spec_path = specseg.import_smp(folder / "smp", folder / "specseg")
    out = {"smp": str(folder / "smp"), "spec": str(spec_path), "artifact": None}
    if importlib.util.find_spec("specseg.artifacts") is not None:
        from specseg.artifacts import save_artifact  # type: ignore[import-not-found]

        artifact = folder / "model.safetensors"
        save_artifact(specseg.build(spec_path), artifact)
        out["artifact"] = str(artifact)
    size = (folder / "smp" / "model.safetensors").stat().st_size
    out["weights_bytes"] = size
    return out


def _checksum(model: Any) -> float:
    """Sum of every floating-point weight: reads (touches) all of them, with small temporaries only."""
    return float(sum(float(t.sum()) for t in model.state_dict().values() if t.is_floating_point()))


def _specseg_loader(task: dict[str, Any]) -> Callable[[], Any]:
    import specseg
    from specseg.builder import build  # the model code an SMP import brings in at once

    if task["lib"] == "specseg-artifact":
        try:
            load_artifact = specseg.load
        except AttributeError:  # ``specseg.load`` not exported (yet): the module's function
            from specseg.artifacts import load as load_artifact  # type: ignore[import-not-found]
        return lambda: load_artifact(task["artifact"])  # noqa: E731
    return lambda: build(task["spec"])  # noqa: E731


def worker_load(task: dict[str, Any]) -> dict[str, Any]:
    """Load a trained model once; wall time and peak RSS above the after-imports baseline.

    The baseline imports what each library needs: SMP's package (which
    imports timm and every model), specseg's package and builder, plus timm
    for a ``tu-`` encoder (specseg imports timm only for those).
    """
    _setup_threads(task["threads"])
    if task["lib"].startswith("specseg"):
        if str(task["kwargs"].get("encoder_name", "")).startswith("tu-"):
            import timm  # noqa: F401
        load = _specseg_loader(task)
        if task["lib"] == "specseg-artifact":
            import specseg.artifacts  # noqa: F401
    else:
        import segmentation_models_pytorch as smp

        load = lambda: smp.from_pretrained(task["smp"])  # noqa: E731
    baseline = _maxrss_kb()
    start = time.perf_counter()
    model = load()
    seconds = time.perf_counter() - start
    peak = _maxrss_kb()
    checksum = _checksum(model)
    touched = _maxrss_kb()
    return {"seconds": seconds, "rss_kb": peak - baseline, "touched_kb": touched - baseline, "baseline_kb": baseline, "checksum": checksum}


WORKERS = {
    "build": worker_build,
    "forward": worker_forward,
    "prepare_load": worker_prepare_load,
    "load": worker_load,
}


def run_worker(task: dict[str, Any], env: dict[str, str], timeout: float = 3600) -> tuple[dict[str, Any], float]:
    """Run one measurement in a fresh interpreter; returns its JSON result and the process wall time."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(task)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=timeout,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"worker {task['kind']} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


# --------------------------------------------------------------------------- measurements (parent)


class Table:
    """Rows of ``measurement | architecture | specseg | SMP | ratio | note``, in sections."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, section: str, what: str, arch: str, ours: float, theirs: float, unit: str, note: str = "") -> dict[str, Any]:
        row = {
            "section": section, "what": what, "arch": arch, "specseg": ours, "smp": theirs, "unit": unit,
            "ratio": ours / theirs if theirs else float("nan"), "note": note,
        }
        self.rows.append(row)
        print(_format_row(row), flush=True)
        return row

    def sections(self) -> list[str]:
        return list(dict.fromkeys(r["section"] for r in self.rows))


def _fmt_value(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:g} {unit}"


def _format_row(row: dict[str, Any]) -> str:
    return (
        f"| {row['what']} | {row['arch']} | {_fmt_value(row['specseg'], row['unit'])} | "
        f"{_fmt_value(row['smp'], row['unit'])} | {row['ratio']:.2f} | {row['note']} |"
    )


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def measure_build(table: Table, cases: dict[str, Any], args: argparse.Namespace, env: dict[str, str]) -> None:
    for arch, (smp_class, kwargs) in cases.items():
        out = {}
        for lib in ("specseg", "smp"):
            task = {"kind": "build", "lib": lib, "smp_class": smp_class, "kwargs": kwargs, "runs": args.build_runs, "threads": args.threads}
            out[lib], _ = run_worker(task, env)
        same = out["specseg"]["params"] == out["smp"]["params"]
        note = f"{out['smp']['params'] / 1e6:.1f} M parameters" if same else f"PARAMETER COUNTS DIFFER ({out['specseg']['params']} vs {out['smp']['params']})"
        table.add(
            "Build (spec -> module vs SMP constructor)", "build", arch,
            1000 * statistics.median(out["specseg"]["times"]),
            1000 * statistics.median(out["smp"]["times"]),
            "ms", note,
        )


def measure_forward(
    table: Table, cases: dict[str, Any], args: argparse.Namespace, env: dict[str, str], load_dir: Path | None, prepared: dict[str, Any]
) -> None:
    for arch, (smp_class, kwargs) in cases.items():
        task = {
            "kind": "forward", "smp_class": smp_class, "kwargs": kwargs, "sizes": args.sizes,
            "formats": ["contiguous", "channels_last"], "runs": args.runs, "warmup": args.warmup, "threads": args.threads,
            "prepare_folder": str(load_dir / arch) if load_dir is not None else None,
            "control": not args.quick,
        }
        out, _ = run_worker(task, env)
        if "prepared" in out:
            prepared[arch] = out["prepared"]
        for result in out["results"]:
            size, fmt, errors = result["size"], result["format"], result["errors"]
            theirs, control = result["times"]["smp"], result["times"].get("smp-control")
            noise = statistics.median(control) / statistics.median(theirs) if control else None
            for variant, label, smp_error in (
                ("specseg", fmt, "smp"),
                ("specseg-optimized", f"{fmt}, optimized", "smp-channels_last"),
            ):
                ours = result["times"][variant]
                lo, hi = _quartiles([a / b for a, b in zip(ours, theirs)])
                note = f"paired ratios {lo:.2f}-{hi:.2f}"
                if noise is not None:
                    note += f"; SMP vs SMP {noise:.2f}"
                note += f"; max error vs float64 {errors[variant]:.0e} (SMP{' channels_last' * (smp_error != 'smp')} {errors[smp_error]:.0e})"
                if errors[variant] > 1e-4 + 2 * errors[smp_error]:
                    note += "; LESS ACCURATE THAN SMP"
                row = table.add(
                    f"Forward latency {size}x{size}", f"forward {size}x{size} {label}", arch,
                    1000 * statistics.median(ours), 1000 * statistics.median(theirs), "ms", note,
                )
                if noise is not None:
                    row["noise"] = noise


def measure_load(
    table: Table, cases: dict[str, Any], args: argparse.Namespace, env: dict[str, str], load_dir: Path, prepared: dict[str, Any]
) -> list[str]:
    """Returns the ways specseg loaded (artifact, spec + weights), for the report."""
    section = "Loading a trained model"
    ways: list[str] = []
    for arch, (smp_class, kwargs) in cases.items():
        prep = prepared.get(arch)
        if prep is None:
            task = {"kind": "prepare_load", "smp_class": smp_class, "kwargs": kwargs, "folder": str(load_dir / arch), "threads": args.threads}
            prep, _ = run_worker(task, env)
        libs = (["specseg-artifact"] if prep["artifact"] else []) + ["specseg-spec"]
        libs = (libs[:1] if args.quick else libs) + ["smp"]
        runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libs}
        for r in range(args.load_runs):
            for lib in (libs if r % 2 == 0 else libs[::-1]):
                task = {"kind": "load", "lib": lib, "threads": args.threads, "kwargs": kwargs, **prep}
                result, wall = run_worker(task, env)
                result["process"] = wall
                runs[lib].append(result)
        mib = prep["weights_bytes"] / 2**20

        def med(lib: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[lib])

        for lib in libs[:-1]:
            way = "artifact, `specseg.load`" if lib == "specseg-artifact" else "spec + sha256-pinned weights, `specseg.build`"
            if way not in ways:
                ways.append(way)
            same = abs(runs[lib][0]["checksum"] - runs["smp"][0]["checksum"]) <= 1e-6 * max(1.0, abs(runs["smp"][0]["checksum"]))
            bad = "" if same else "; LOADED WEIGHTS DIFFER"
            label = "artifact" if lib == "specseg-artifact" else "spec+weights"
            table.add(section, f"load wall time ({label})", arch, 1000 * med(lib, "seconds"), 1000 * med("smp", "seconds"), "ms", bad.lstrip("; "))
            table.add(section, f"load peak RSS above imports ({label})", arch, med(lib, "rss_kb") / 1024, med("smp", "rss_kb") / 1024, "MiB", f"weights file {mib:.1f} MiB{bad}")
            table.add(section, f"peak RSS once every weight is read ({label})", arch, med(lib, "touched_kb") / 1024, med("smp", "touched_kb") / 1024, "MiB", "")
            table.add(section, f"whole process: imports + load ({label})", arch, 1000 * med(lib, "process"), 1000 * med("smp", "process"), "ms", "")
    return ways


def _time_command(cmd: list[str], env: dict[str, str], runs: int) -> tuple[list[float], str]:
    times = []
    out = ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        out = proc.stdout
    return times, out


def measure_cli(table: Table, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """``specseg validate`` of one spec vs ``python -c "import torch"``.

    This environment may set PYTHONDONTWRITEBYTECODE (no .pyc files are
    written, so an editable install recompiles specseg's sources on every
    run, which an installed package never does): the CLI is measured with a
    bytecode cache in a folder of its own (PYTHONPYCACHEPREFIX, under the
    temporary directory, kept between runs since Python checks it against
    the sources' timestamps; warmed up first), as a pip-installed specseg
    runs. The run without any cache is reported as well (not with --quick).
    """
    pyc = Path(tempfile.gettempdir()) / "specseg-benchmark-pycache"
    cached = dict(env)
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    cached["PYTHONPYCACHEPREFIX"] = str(pyc)
    validate = [sys.executable, "-m", "specseg", "validate", CLI_SPEC]
    console = Path(sys.executable).with_name("specseg")
    if console.exists():
        validate = [str(console), "validate", CLI_SPEC]
    _time_command(validate, cached, 1)  # fills the bytecode cache
    torch_cmd = [sys.executable, "-c", "import torch"]
    if not args.quick:
        _time_command(torch_cmd, env, 1)  # warms the page cache
    v_times, t_times = [], []
    for _ in range(args.cli_runs):
        v_times += _time_command(validate, cached, 1)[0]
        t_times += _time_command(torch_cmd, env, 1)[0]
    n_times: list[float] = []
    if not args.quick:
        nocache = dict(env)
        nocache["PYTHONDONTWRITEBYTECODE"] = "1"
        nocache.pop("PYTHONPYCACHEPREFIX", None)
        n_times, _ = _time_command(validate, nocache, max(1, args.cli_runs // 2))
    probe = (
        "import sys; from specseg.cli.main import main; rc = main(['validate', %r]); "
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', rc)" % CLI_SPEC
    )
    _, out = _time_command([sys.executable, "-c", probe], cached, 1)
    imports_torch = "NOTORCH" not in out
    v, t = statistics.median(v_times), statistics.median(t_times)
    section = "CLI latency"
    what = f"`specseg validate {CLI_SPEC}` vs `python -c \"import torch\"`"
    table.add(section, what, "-", v, t, "s", "torch imported by validate!" if imports_torch else "validate does not import torch")
    if n_times:
        table.add(section, what + ", no bytecode cache", "-", statistics.median(n_times), t, "s", "PYTHONDONTWRITEBYTECODE=1: specseg's sources compiled on every run")
    return {"validate_s": v, "torch_s": t, "imports_torch": imports_torch}


# --------------------------------------------------------------------------- report


def machine_description(args: argparse.Namespace, load_start: tuple[float, float, float]) -> list[str]:
    import importlib.metadata as md

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores visible",
        f"- torch threads: `torch.set_num_threads({args.threads})`, `set_num_interop_threads(1)`, OMP/MKL_NUM_THREADS={args.threads}",
        f"- Python {platform.python_version()}, {platform.system()} {platform.release()}",
        f"- torch {version('torch')}, timm {version('timm')}, segmentation-models-pytorch {version('segmentation-models-pytorch')}, "
        f"pydantic {version('pydantic')}, specseg {version('specseg')}",
        f"- load average at start (1/5/15 min): {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}; "
        f"at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]


def targets(table: Table, cli: dict[str, Any] | None) -> list[str]:
    lines = []
    groups = (
        ("as built (SMP's operators)", lambda r: r["what"].startswith("forward") and not r["what"].endswith("optimized")),
        ("after `optimize_for_inference()`", lambda r: r["what"].startswith("forward") and r["what"].endswith("optimized")),
    )
    for title, selected in groups:
        fwd = [r for r in table.rows if selected(r)]
        if not fwd:
            continue
        by_arch: dict[str, float] = {}
        for r in fwd:
            by_arch[r["arch"]] = max(by_arch.get(r["arch"], 0.0), r["ratio"])
        slow = {a: v for a, v in by_arch.items() if v > TARGET_FORWARD}
        lines.append(
            f"- forward latency ratio <= {TARGET_FORWARD:.2f} for every architecture, size and format, {title}: "
            + ("**met**" if not slow else "**not met** for " + ", ".join(f"{a} (worst row {v:.2f})" for a, v in slow.items()))
            + f" (worst row {max(by_arch.values()):.2f}, median of all rows {statistics.median(r['ratio'] for r in fwd):.2f})"
        )
        over = [r for r in fwd if r["ratio"] > TARGET_FORWARD]
        if over and all("noise" in r for r in fwd):
            spread = max(abs(r["noise"] - 1) for r in fwd)
            within = [r for r in over if r["ratio"] - 1 <= spread]
            lines.append(
                f"  - {len(over)} of {len(fwd)} rows above {TARGET_FORWARD:.2f}; {len(within)} of them by no more than the "
                f"largest SMP-vs-SMP difference measured ({spread:.2f}), i.e. within this machine's noise"
            )
    for what, target in (("load wall time", TARGET_LOAD_WALL), ("load peak RSS above imports", TARGET_LOAD_RSS)):
        for label in ("artifact", "spec+weights"):
            rows = [r for r in table.rows if r["what"] == f"{what} ({label})"]
            if rows:
                bad = [r for r in rows if r["ratio"] > target]
                lines.append(
                    f"- {what} ({label}) ratio <= {target}: "
                    + ("**met**" if not bad else "**not met** for " + ", ".join(f"{r['arch']} ({r['ratio']:.2f})" for r in bad))
                    + f" (worst {max(r['ratio'] for r in rows):.2f})"
                )
    if cli is not None:
        ok = cli["validate_s"] < TARGET_VALIDATE_S and not cli["imports_torch"]
        lines.append(
            f"- `specseg validate` of one spec under {TARGET_VALIDATE_S} s wall without importing torch: "
            + ("**met**" if ok else "**not met**")
            + f" ({cli['validate_s']:.3f} s with a bytecode cache; torch {'imported' if cli['imports_torch'] else 'not imported'})"
        )
    return lines


#: How to read the results: facts about the code measured, whatever the numbers.
NOTES = [
    "## Reading the results",
    "",
    "- Forward, contiguous rows: specseg runs SMP's operators except where it computes the same values more cheaply: "
    "the ResNet stem's max pooling (maxima of strided views instead of PyTorch's NCHW kernel, which also computes "
    "argmax indices), DeepLab's ASPP skipping kernel taps that only read zero padding, U-Net++ concatenating "
    "each node's inputs once instead of twice, FPN's add merge summing the maps one after another instead of "
    "stacking copies of them first (bit for bit the same sum), and SegFormer's per-pixel linear layers (and DPT's readout "
    "projection) handing on a channels_last view with regular strides, where SMP's reshape leaves a batch of one "
    "with an odd stride that sends the next resize to a copy and a slower kernel (both layouts).",
    "- Forward, channels_last rows as built: PyTorch's channels_last max pooling is already fast, so specseg keeps it. "
    "1x1 convolutions run through oneDNN (`specseg/blocks/pointwise.py`): with one thread, PyTorch's rule gives "
    "them its native kernel, 2-3x slower on channels_last maps; this is what SegFormer's fusion layer, DeepLab's "
    "and PSPNet's projections, DPT's, FPN's and LinkNet's 1x1 layers gain. Apart from that and the ASPP, U-Net++, FPN and "
    "SegFormer savings, these rows run the same operators as SMP, op for op (the float64 column shows the same error): "
    "U-Net, PAN, MAnet and DeepLabV3 are 1.00 within the noise that the SMP-vs-SMP control shows.",
    "- Forward, all rows: specseg's decoders free each intermediate map once the next exists, where SMP keeps "
    "DeepLabV3+'s two halves, FPN's pyramid and UPerNet's and SegFormer's resized maps alive through the convolution "
    "that follows their concatenation; at 512x512 the freed memory is reused instead of fresh pages being mapped.",
    "- Forward, optimized rows: on the CPU, PyTorch hands float32 convolutions to oneDNN, which first reorders the "
    "weights into its blocked layout, on every call; for a ResNet's deepest layers at 256x256 the reorder costs more "
    "than the convolution. `optimize_for_inference()` keeps the reordered weights between calls (rebuilt whenever "
    "PyTorch records a weight change; `specseg/inference.py`) and runs channels_last. The gain is largest where "
    "weights are large next to the feature maps (small inputs, deep encoders). The values are the channels_last "
    "values; the float64 column shows the same error as SMP's. It is opt-in because a weight written through "
    "`param.data` bypasses PyTorch's change tracking and needs another call.",
    "- Load, spec + weights: the spec pins the weights file by sha256, and specseg checks it before reading the "
    "file (hashing costs about 0.6 ms per MiB here); the hash runs on a thread while the network is built on the meta "
    "device, once, for the memory guard and then for the weights. An artifact carries its spec inside the safetensors "
    "header and needs no hash. SMP checks no hash.",
    "- Peak RSS right after loading counts only the pages of specseg's memory-mapped weights read so far; the row "
    "\"once every weight is read\" is the comparable steady state (one copy of the weights, where SMP holds a "
    "randomly initialised model plus the loaded state dict at its peak).",
    "- Build: `specseg.build` validates the spec and measures it on the meta device (the memory guard) before "
    "building; the random initialisation, which takes most of the time, is the same as SMP's.",
]


def write_report(
    path: Path, table: Table, args: argparse.Namespace, machine: list[str], cases: dict[str, Any], ways: list[str] | None, cli: dict[str, Any] | None, elapsed: float
) -> None:
    command = ("python benchmarks/compare_smp.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip()
    dpt = cases.get("dpt")
    lines = [
        "# specseg vs segmentation_models_pytorch: benchmark results",
        "",
        "Generated by `benchmarks/compare_smp.py`; do not edit by hand. Reproduce with (test extra installed, from the repository root):",
        "",
        "```bash",
        command,
        "```",
        "",
        "## Machine",
        "",
        *machine,
        f"- total benchmark time: {elapsed / 60:.1f} min",
        "",
        "## Setup",
        "",
        "- Same SMP constructor arguments on both sides; specseg's spec is written from them by "
        "`spec_from_smp_kwargs` (the documented mapping). Encoder `resnet34`, `encoder_weights=None`, SMP's defaults otherwise"
        + (f"; DPT needs a ViT and uses the encoder of `specs/dpt-*.yaml` on both sides ({_describe_kwargs(dpt[1])})" if dpt else "")
        + ".",
        f"- Build: median of {args.build_runs} builds after one warm-up build, in a fresh process per library and architecture; "
        "specseg's time includes validating the spec.",
        f"- Forward: batch 1, `torch.inference_mode()`, eval mode, {args.warmup} warm-up run(s), then the median of {args.runs} runs. "
        "specseg runs as built and, in the rows marked \"optimized\", after `model.optimize_for_inference()` (which keeps "
        "its channels_last layout and converts a contiguous input itself). All models hold the same weights, BatchNorm "
        "statistics moved off their initial values as training does, and run in one process, interleaved (each model "
        "equally often in each position of the rotation), so that load changes on the machine hit all alike; \"paired ratios\" gives the quartiles of the run-by-run ratios. A second SMP instance with the same "
        "weights runs in the same rotation: \"SMP vs SMP\" is its median over SMP's, the difference this machine shows "
        "between two identical models (the noise floor of every ratio). \"Max error vs float64\" compares each output with "
        "SMP's network run in float64 (the exact values, to float32's precision); a note flags specseg when it is further "
        "from them than 1e-4 plus twice SMP's own error (SMP's error channels_last for the optimized rows, which compute in that layout). `channels_last` rows convert the models and the input with "
        "`memory_format=torch.channels_last`.",
        f"- Load: {args.load_runs} fresh process(es) per way and architecture, alternating; specseg loads by "
        + (", and by ".join(ways) if ways else "n/a")
        + "; SMP by `smp.from_pretrained` on its `save_pretrained` folder of the same model. Wall time of the loading call; "
        "peak RSS (`ru_maxrss`) minus its value after the imports (specseg: `import specseg` and its builder, plus timm for a "
        "`tu-` encoder; SMP: `import segmentation_models_pytorch`), right after loading and again once every weight has been "
        "read (specseg's safetensors tensors are memory-mapped: pages are read when first used); whole-process wall time "
        "(interpreter start, imports, load). Medians.",
        f"- CLI: median of {args.cli_runs} runs of `specseg validate {CLI_SPEC}` with a warm bytecode cache (as an installed "
        "package runs; this environment sets PYTHONDONTWRITEBYTECODE, so the run without any cache is shown too) and of "
        "`python -c \"import torch\"`; the ratio is informative, the target is the absolute time.",
        "",
        "## Results",
        "",
        "Ratio = specseg / SMP (below 1: specseg is faster or lighter).",
        "",
    ]
    for section in table.sections():
        lines += [f"### {section}", "", "| measurement | architecture | specseg | SMP | ratio | note |", "|---|---|---|---|---|---|"]
        lines += [_format_row(r) for r in table.rows if r["section"] == section]
        lines.append("")
    lines += ["## Targets", "", *targets(table, cli), "", *NOTES, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer runs and one size (a smoke test, not a measurement)")
    p.add_argument("--arch", help="comma-separated architectures (default: all twelve)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report file (default {DEFAULT_OUT.relative_to(ROOT)})")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared machine)")
    p.add_argument("--sizes", help="comma-separated input sizes (default 256,512; --quick 256)")
    p.add_argument("--runs", type=int, help="timed forward runs per row (default 16: each model twice in each position; --quick 4)")
    p.add_argument("--warmup", type=int, help="warm-up forward runs (default 3; --quick 1)")
    p.add_argument("--build-runs", type=int, help="timed builds (default 5; --quick 2)")
    p.add_argument("--load-runs", type=int, help="fresh load processes per library (default 3; --quick 1)")
    p.add_argument("--cli-runs", type=int, help="CLI runs (default 9; --quick 2)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: build, forward, load, cli")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([256] if quick else [256, 512])
    args.runs = args.runs or (4 if quick else 16)
    args.warmup = args.warmup or (1 if quick else 3)
    args.build_runs = args.build_runs or (2 if quick else 5)
    args.load_runs = args.load_runs or (1 if quick else 3)
    args.cli_runs = args.cli_runs or (2 if quick else 9)
    args.skip = {s for s in args.skip.split(",") if s}
    bad = args.skip - {"build", "forward", "load", "cli"}
    if bad:
        p.error(f"--skip: unknown part(s) {', '.join(sorted(bad))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        sys.path.insert(0, str(ROOT))
        print(json.dumps(WORKERS[task["kind"]](task)))
        return 0
    load_start = os.getloadavg()
    started = time.perf_counter()
    cases = architecture_cases(args.arch.split(",") if args.arch else None)
    env = _env(args.threads)
    table = Table()
    print(f"load average at start: {load_start[0]:.2f}; threads: {args.threads}", flush=True)
    ways = cli = None
    prepared: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="specseg-bench-") as tmp:
        load_dir = Path(tmp) if "load" not in args.skip else None
        if "build" not in args.skip:
            measure_build(table, cases, args, env)
        if "forward" not in args.skip:
            measure_forward(table, cases, args, env, load_dir, prepared)
        if load_dir is not None:
            ways = measure_load(table, cases, args, env, load_dir, prepared)
    if "cli" not in args.skip:
        cli = measure_cli(table, args, env)
    machine = machine_description(args, load_start)
    write_report(args.out, table, args, machine, cases, ways, cli, time.perf_counter() - started)
    print("\n" + "\n".join(targets(table, cli)))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
