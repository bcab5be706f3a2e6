"""``benchmarks/compare_smp.py`` keeps working: a tiny run of every part, for the U-Net only.

It measures nothing worth reading (one 32x32 run, one build, one load); it
checks that the script runs end to end and writes its report. About 20-30 s
on an idle 2-core machine, mostly interpreter starts that import torch.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "compare_smp.py"

# Looked up, not imported: importing SMP here would only add seconds to this process.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("segmentation_models_pytorch") is None, reason="needs SMP (the test extra)"
)


def test_compare_smp_quick_unet(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    tiny = ["--sizes", "32", "--runs", "1", "--warmup", "1", "--build-runs", "1", "--load-runs", "1", "--cli-runs", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--arch", "unet", *tiny, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=600,  # generous: the machine may be shared; the run itself takes well under a minute
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    for row in ("| build | unet |", "| forward 32x32 contiguous | unet |", "| forward 32x32 channels_last | unet |", "| load wall time (", "specseg validate"):
        assert row in report, row
    assert "## Machine" in report and "load average at start" in report and "## Targets" in report
    assert "python benchmarks/compare_smp.py --quick --arch unet" in report
    assert "DIFFER" not in report  # same parameters, same outputs, same loaded weights on both sides
    assert "validate does not import torch" in report
