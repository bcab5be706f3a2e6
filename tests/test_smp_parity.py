"""specseg builds the same networks as SMP 0.6: same parameters, same outputs for the same weights.

Each case builds an SMP model, maps its constructor arguments to a spec with
the documented rule (same parameter count and state-dict keys), saves the
SMP model with ``save_pretrained``, brings it over with ``import-smp``, and
compares eval-mode outputs of the two.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import specseg
from specseg.interop.smp_config import spec_from_smp_kwargs
from tests.smp_cases import all_cases

smp = pytest.importorskip("segmentation_models_pytorch")


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _case_id(case: tuple) -> str:
    cls, kwargs, _ = case
    return f"{cls}-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


def _assert_same_outputs(ours: object, theirs: object) -> None:
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == 2
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    else:
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", all_cases(), ids=_case_id)
def test_same_network_as_smp(case: tuple, tmp_path: Path) -> None:
    """The documented mapping rule gives SMP's network; import-smp gives SMP's numbers."""
    smp_class, kwargs, (h, w) = case
    torch.manual_seed(0)
    reference = getattr(smp, smp_class)(encoder_weights=None, **kwargs).eval()

    # The spec written by the mapping rule builds the same network...
    by_rule = specseg.build(spec_from_smp_kwargs(smp_class, kwargs))
    assert _params(by_rule) == _params(reference)
    assert by_rule.state_dict().keys() == reference.state_dict().keys()

    # ...and a saved SMP model imported with import-smp computes the same outputs.
    reference.save_pretrained(tmp_path / "smp")
    spec_path = specseg.import_smp(tmp_path / "smp", tmp_path / "specseg")
    model = specseg.build(spec_path).eval()
    assert _params(model) == _params(reference)

    x = torch.randn(2, kwargs.get("in_channels", 3), h, w)
    with torch.no_grad():
        _assert_same_outputs(model(x), reference(x))


def test_import_smp_cli_and_refusals(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    reference = smp.FPN("resnet18", encoder_weights=None, classes=2)
    reference.save_pretrained(tmp_path / "smp")
    run = lambda *a: subprocess.run([sys.executable, "-m", "specseg", "import-smp", *a], capture_output=True, text=True, timeout=120)  # noqa: E731
    out = tmp_path / "out"
    result = run(str(tmp_path / "smp"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert specseg.load_spec(out / "spec.yaml").weights.path == "model.safetensors"
    again = run(str(tmp_path / "smp"), "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert run(str(tmp_path / "smp"), "-o", str(out), "--force").returncode == 0

    config = json.loads((tmp_path / "smp" / "config.json").read_text())
    config["decoder_merge_policy"] = "mul"
    (tmp_path / "smp" / "config.json").write_text(json.dumps(config, indent=2))
    bad = run(str(tmp_path / "smp"), "-o", str(tmp_path / "bad"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "config.json:" in bad.stderr and "decoder_merge_policy" in bad.stderr and "'add' or 'cat'" in bad.stderr
    assert not (tmp_path / "bad" / "spec.yaml").exists()


def test_whole_model_weights_errors_are_located(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    spec = "specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: unet}\nweights: {path: w.safetensors, sha256: %s}\n"
    model = specseg.build("specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: unet}\n")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    (tmp_path / "s.yaml").write_text(spec % ("ab" * 32))
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(tmp_path / "s.yaml")
    assert "sha256" in info.value.issues[0].message and info.value.issues[0].location.line == 4
    del state["decoder.blocks.0.conv1.0.weight"]
    save_file(state, str(tmp_path / "w.safetensors"))
    (tmp_path / "s.yaml").write_text(spec.replace(", sha256: %s", ""))
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(tmp_path / "s.yaml")
    assert "missing key(s): decoder.blocks.0.conv1.0.weight" in info.value.issues[0].message
