"""Sweep SMP's encoder names through ``save_pretrained`` + ``specseg import-smp``, as a checker of issue 15 would.

For every SMP 0.6 encoder name (all 124, or those matching ``--names``), this
builds SMP models with ``encoder_weights=None`` for architecture and option
combinations the test suite does not contain (other architectures, depths 3
and 4, the output strides SMP dilates to, decoder options, input channels,
auxiliary heads), moves BatchNorm statistics off their initial values, saves
them with ``save_pretrained``, brings them over with ``specseg.import_smp``
and compares:

- parameter counts and state-dict keys (must be equal);
- eval-mode outputs on a 64x64 input (PAN: 128x128 at stride 16, 256x256 at 32; within ``--atol``, 1e-4 by default).

Where float32 outputs differ by more than ``--atol``, both models are run again
in float64: a float64 difference below 1e-9 of the output's magnitude means
the two compute the same sum in another order (float32 rounding, reported as
``rounding``), anything else is a real difference (``DIFFERENT``). A
combination SMP refuses must be refused by specseg too (a ``SpecError``), and
the next combination is tried for that name.

Runs on the CPU in one process; ``--combos N`` models per name (default 1,
chosen round-robin so that every architecture is met), ``--jsonl FILE``
appends one line per model. Slow (minutes to an hour): not part of the test
suite, whose default run keeps one cheap case per family
(``tests/test_smp_encoder_parity.py``; ``SPECSEG_SMP_ALL=1`` for every name).

    python benchmarks/smp_sweep.py --names 'mit_*' --combos 2
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the parity tests' helpers (tests/smp_cases), as compare_smp.py does

from tests.smp_cases import randomise_batchnorm  # noqa: E402

#: (SMP class, extra constructor arguments): combinations beside those of the tests.
COMBOS: list[tuple[str, dict[str, Any]]] = [
    ("Unet", {"encoder_depth": 4, "decoder_channels": (128, 64, 32, 16), "decoder_attention_type": "scse", "in_channels": 1}),
    ("UnetPlusPlus", {"encoder_depth": 3, "decoder_channels": (32, 16, 8), "decoder_interpolation": "bilinear"}),
    ("MAnet", {"encoder_depth": 4, "decoder_channels": (64, 32, 16, 8), "decoder_pab_channels": 16}),
    ("Linknet", {"encoder_depth": 4, "in_channels": 4}),
    ("FPN", {"encoder_depth": 4, "decoder_merge_policy": "cat", "decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32}),
    ("PSPNet", {"encoder_depth": 4, "psp_out_channels": 64, "in_channels": 4}),
    ("DeepLabV3", {"encoder_output_stride": 16, "decoder_channels": 64, "decoder_atrous_rates": (6, 12, 18), "aux_params": {"classes": 3}}),
    ("DeepLabV3Plus", {"encoder_output_stride": 8, "decoder_channels": 64, "decoder_aspp_separable": False}),
    ("PAN", {"decoder_channels": 16, "in_channels": 1}),
    ("UPerNet", {"encoder_depth": 4, "decoder_channels": 64}),
    ("Segformer", {"decoder_segmentation_channels": 64, "aux_params": {"classes": 2, "dropout": 0.1}}),
    ("Unet", {"encoder_depth": 3, "decoder_channels": (32, 16, 8), "decoder_use_norm": False}),
    ("DeepLabV3", {"encoder_depth": 4, "encoder_output_stride": 8, "decoder_channels": 32}),
    ("FPN", {"encoder_depth": 3, "decoder_pyramid_channels": 32, "decoder_segmentation_channels": 32, "upsampling": 2}),
    ("PSPNet", {"encoder_depth": 2, "psp_out_channels": 32, "upsampling": 4}),
    ("Unet", {"encoder_depth": 2, "decoder_channels": (32, 16), "aux_params": {"classes": 4, "pooling": "max"}}),
    ("UnetPlusPlus", {"encoder_depth": 4, "decoder_channels": (64, 32, 16, 8), "decoder_use_norm": "instancenorm"}),
    ("PAN", {"encoder_output_stride": 32, "decoder_channels": 16}),
    ("PSPNet", {"encoder_depth": 1, "psp_out_channels": 16, "upsampling": 2}),
]


def _outputs(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return float("inf")
    return max(float((x.double() - y.double()).abs().max()) for x, y in zip(a, b))


def compare(smp_class: str, name: str, kwargs: dict[str, Any], atol: float, size: int) -> dict[str, Any]:
    """One model: SMP's, saved and imported; the verdict and its numbers."""
    import segmentation_models_pytorch as smp

    import specseg

    result: dict[str, Any] = {"name": name, "class": smp_class, "kwargs": {k: v for k, v in kwargs.items()}}
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reference = getattr(smp, smp_class)(encoder_name=name, encoder_weights=None, **kwargs).eval()
        except Exception as exc:  # noqa: BLE001 - SMP refuses this combination: specseg must refuse it too
            from specseg.interop.smp_config import spec_from_smp_kwargs

            result["smp_refuses"] = f"{type(exc).__name__}: {exc}"[:300]
            if not isinstance(exc, (ValueError, TypeError)):
                result["verdict"] = "SMP's constructor crashes, not compared"  # e.g. instancenorm: README, choices where SMP fails
                return result
            try:
                spec = spec_from_smp_kwargs(smp_class, {"encoder_name": name, "encoder_weights": None, **kwargs})
                with torch.device("meta"):
                    specseg.build(spec)
                documented = name.startswith("efficientnet-b") and kwargs.get("encoder_depth") == 1
                result["verdict"] = "SMP refuses, specseg builds (documented)" if documented else "DIFFERENT (SMP refuses, specseg builds)"
            except specseg.SpecError as err:
                result["verdict"] = "both refuse"
                result["specseg_refuses"] = str(err)[:300]
            return result
    randomise_batchnorm(reference)
    if smp_class == "PAN":
        # PAN's pyramid attention pools its deepest map three more times: 4x4 at the least.
        size = max(size, 4 * 8 * kwargs.get("encoder_output_stride", 16))
    x = torch.randn(2, kwargs.get("in_channels", 3), size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        try:
            expected = _outputs(reference(x))
        except Exception as exc:  # noqa: BLE001 - SMP builds a network that cannot run (README: choices where SMP fails)
            result["verdict"] = "SMP's model fails to run, not compared"
            result["error"] = f"{type(exc).__name__}: {exc}"[:300]
            return result
    with tempfile.TemporaryDirectory() as tmp:
        reference.save_pretrained(Path(tmp) / "smp")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                spec_path = specseg.import_smp(Path(tmp) / "smp", Path(tmp) / "out")
                ours = specseg.build(spec_path).eval()
            except specseg.SpecError as err:
                result["verdict"] = "DIFFERENT (import refused)"
                result["error"] = str(err)[:500]
                return result
        result["warnings"] = sorted({str(w.message)[:200] for w in caught if issubclass(w.category, UserWarning)})
    result["params"] = sum(p.numel() for p in ours.parameters())
    result["smp_params"] = sum(p.numel() for p in reference.parameters())
    result["same_keys"] = set(ours.state_dict()) == set(reference.state_dict())
    with torch.no_grad():
        got = _outputs(ours(x))
    diff = _max_diff(got, expected)
    scale = max(float(t.abs().max()) for t in expected)
    result.update(diff=diff, scale=scale)
    counts_equal = result["params"] == result["smp_params"] and result["same_keys"]
    if diff <= atol and counts_equal:
        result["verdict"] = "equal"
        return result
    if counts_equal and diff != float("inf"):
        with torch.no_grad():
            diff64 = _max_diff(_outputs(ours.double()(x.double())), _outputs(reference.double()(x.double())))
        result["diff_float64"] = diff64
        if diff64 <= 1e-9 * max(scale, 1.0):
            result["verdict"] = "rounding"
            return result
    result["verdict"] = "DIFFERENT"
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; exit 1 when any model differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", default="*", help="fnmatch pattern(s) of encoder names, comma-separated")
    parser.add_argument("--combos", type=int, default=1, help="models per name (round-robin over the combinations)")
    parser.add_argument("--offset", type=int, default=0, help="shift the round-robin (another sweep, other combinations)")
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--max-params", type=float, default=float("inf"), help="skip names whose encoder has more parameters")
    parser.add_argument("--arch", help="only these SMP classes, comma-separated (e.g. PAN,UPerNet)")
    parser.add_argument("--jsonl", type=Path, help="append one JSON line per model")
    args = parser.parse_args(argv)

    from specseg.encoders._catalog_static import METADATA
    from specseg.encoders.smp_names import SMP_NAMES

    patterns = args.names.split(",")
    names = [r.name for r in SMP_NAMES if any(fnmatch.fnmatch(r.name, p) for p in patterns)]
    names.sort(key=lambda n: METADATA.get(n, {}).get("params", 0))  # small first: early results, big ones last
    combos = [c for c in COMBOS if args.arch is None or c[0] in args.arch.split(",")]
    tally: dict[str, int] = {}
    for index, name in enumerate(names):
        if METADATA.get(name, {}).get("params", 0) > args.max_params:
            tally["skipped (size)"] = tally.get("skipped (size)", 0) + 1
            continue
        done, attempt = 0, 0
        while done < args.combos and attempt < len(combos):
            smp_class, kwargs = combos[(index + args.offset + attempt) % len(combos)]
            attempt += 1
            kwargs = {"classes": 2, **kwargs}
            start = time.perf_counter()
            try:
                result = compare(smp_class, name, kwargs, args.atol, args.size)
            except Exception as exc:  # noqa: BLE001 - report and go on: one broken case must not hide the others
                result = {"name": name, "class": smp_class, "kwargs": kwargs, "verdict": "DIFFERENT (crash)", "error": f"{type(exc).__name__}: {exc}"[:500]}
            result["seconds"] = round(time.perf_counter() - start, 1)
            verdict = result["verdict"]
            tally[verdict] = tally.get(verdict, 0) + 1
            if not any(word in verdict for word in ("refuse", "fails to run", "crashes")):
                done += 1
            shown = {k: result.get(k) for k in ("diff", "diff_float64", "scale", "params", "smp_params", "error") if k in result}
            print(f"{verdict:>12}  {name} {smp_class} {kwargs} {shown} {result['seconds']}s", flush=True)
            if args.jsonl:
                with args.jsonl.open("a") as f:
                    f.write(json.dumps(result, default=str) + "\n")
    print("summary:", json.dumps(tally), flush=True)
    return 1 if any(v.startswith("DIFFERENT") for v in tally) else 0


if __name__ == "__main__":
    sys.exit(main())
