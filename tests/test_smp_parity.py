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
from tests.hf_cache import hub_cache  # noqa: F401 - fixture
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


def test_large_outputs_differ_from_smp_by_float32_rounding_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """DeepLabV3 + random MobileOne: features reach 6e5, outputs 4e3 (SMP's initialisation).

    specseg's ASPP leaves out taps that read only zero padding, so its sums run
    in another order: float32 outputs differ by ~1e-3 (a few ulps at that
    size; in float64 the two agree within 1e-11). With the full kernels the outputs
    are SMP's bit for bit, so the skipped zero terms are the only difference.
    """
    from specseg.decoders.deeplabv3 import AtrousConv2d
    from specseg.weights import load_into

    torch.manual_seed(0)
    kwargs = {"encoder_name": "mobileone_s0", "classes": 2, "encoder_output_stride": 8}
    reference = smp.DeepLabV3(encoder_weights=None, **kwargs).eval()
    model = specseg.build(spec_from_smp_kwargs("DeepLabV3", kwargs)).eval()
    load_into(model, reference.state_dict(), "SMP's DeepLabV3")
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = reference(x), model(x)
        scale = expected.abs().max().item()
        assert scale > 1e3  # the case this test is about: outputs far above 1
        torch.testing.assert_close(got, expected, atol=2e-6 * scale, rtol=0)
        monkeypatch.setattr(AtrousConv2d, "forward", torch.nn.Conv2d.forward)
        assert torch.equal(model(x), expected)


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


# --- behaviour SMP's own test suite relies on ------------------------------------------


def test_wrong_input_size_is_also_smps_runtime_error() -> None:
    model = specseg.build(spec_from_smp_kwargs("FPN", {"encoder_name": "resnet18", "classes": 2})).eval()
    reference = smp.FPN("resnet18", encoder_weights=None, classes=2).eval()
    x = torch.randn(1, 3, 63, 64)
    with pytest.raises(RuntimeError):
        reference(x)
    with pytest.raises(RuntimeError) as info:
        model(x)
    assert isinstance(info.value, specseg.InputShapeError) and isinstance(info.value, ValueError)
    assert "multiples of 32" in str(info.value) and "64x64" in str(info.value)


@pytest.mark.parametrize("name", ["vgg11", "densenet121"])
def test_encoder_that_cannot_be_dilated_is_a_value_error(name: str, tmp_spec) -> None:
    """SMP raises ValueError; specseg's Python API too, still located (the CLI prints the location)."""
    import subprocess
    import sys

    with pytest.raises(ValueError):
        smp.DeepLabV3Plus(name, encoder_weights=None)
    path = tmp_spec(f"specseg: 1\nencoder:\n  name: {name}\n  output_stride: 16\ndecoder: {{architecture: deeplabv3plus}}\n")
    with pytest.raises(ValueError) as info:
        specseg.build(path)
    assert isinstance(info.value, specseg.SpecError)
    issue = info.value.issues[0]
    assert issue.path == ("encoder", "output_stride") and issue.location.line == 4
    with pytest.raises(ValueError):  # validation alone, and SMP's arguments through the mapping rule
        specseg.load_spec(path)
    with pytest.raises(ValueError):
        specseg.build(spec_from_smp_kwargs("DeepLabV3Plus", {"encoder_name": name, "encoder_weights": None}))
    result = subprocess.run([sys.executable, "-m", "specseg", "build", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and f"{path}:4:" in result.stderr and "Traceback" not in result.stderr


def test_only_output_stride_refusals_are_value_errors() -> None:
    """The ValueError is SMP's type for a stride it cannot reach; other spec errors stay plain SpecErrors."""
    base = {"specseg": 1, "decoder": {"architecture": "deeplabv3plus"}}
    with pytest.raises(specseg.SpecError) as info:
        specseg.load_spec({**base, "encoder": {"name": "resnet18", "depth": 7}})
    assert not isinstance(info.value, ValueError)
    with pytest.raises(specseg.SpecValueError):  # found by the build (encoder params skip the timm index)
        specseg.build({**base, "encoder": {"name": "tu-vgg11", "params": {"drop_rate": 0.0}, "output_stride": 16}})


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_bgr_preprocessing_reverses_the_channel_axis_as_smp(channels: int) -> None:
    import numpy as np
    from segmentation_models_pytorch.encoders._preprocessing import preprocess_input

    from specseg.preprocessing import Preprocessing

    mean, std = [0.1, 0.2, 0.3, 0.4][:channels], [0.5, 0.6, 0.7, 0.8][:channels]
    image = np.random.default_rng(0).uniform(0, 255, size=(5, 6, channels))
    ours = Preprocessing(tuple(mean), tuple(std), input_space="BGR")(image)
    theirs = preprocess_input(image, mean=mean, std=std, input_space="BGR", input_range=[0, 1])
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    as_tensor = Preprocessing(tuple(mean), tuple(std), input_space="BGR")(tensor)
    np.testing.assert_allclose(as_tensor[0].permute(1, 2, 0).numpy(), theirs, rtol=1e-6)


@pytest.mark.parametrize(
    "smp_class,deprecated,current",
    [
        ("Unet", {"decoder_use_batchnorm": False}, {"decoder_use_norm": False}),
        ("PSPNet", {"psp_use_batchnorm": False}, {"decoder_use_norm": False}),
        ("PAN", {"upscale_mode": "nearest"}, {"decoder_interpolation": "nearest"}),
    ],
)
def test_smps_deprecated_argument_names(smp_class: str, deprecated: dict, current: dict, tmp_path: Path) -> None:
    """Read as SMP reads them, with a DeprecationWarning, by spec_from_smp_kwargs and import-smp."""
    base = {"encoder_name": "resnet18", "classes": 2}
    with pytest.warns(DeprecationWarning, match=next(iter(deprecated))):
        spec = spec_from_smp_kwargs(smp_class, {**base, **deprecated})
    assert spec == spec_from_smp_kwargs(smp_class, {**base, **current})
    with pytest.warns(DeprecationWarning):
        reference = getattr(smp, smp_class)(encoder_weights=None, **base, **deprecated).eval()
    reference.save_pretrained(tmp_path / "smp")
    with pytest.warns(DeprecationWarning, match=next(iter(deprecated))):
        model = specseg.build(specseg.import_smp(tmp_path / "smp", tmp_path / "out")).eval()
    x = torch.randn(1, 3, 128, 128)  # PAN's pyramid needs 8x8 at stride 16
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-4, rtol=0)


# --- import-smp: Hugging Face repositories, ignored arguments, refusals ----------------------


def test_import_from_a_hugging_face_repository_id(hub_cache, tmp_path: Path) -> None:  # noqa: F811
    """An SMP model published with save_pretrained imports by repository id, through the offline cache."""
    import subprocess
    import sys

    torch.manual_seed(0)
    reference = smp.Segformer("mit_b0", encoder_weights=None, classes=3).eval()
    reference.save_pretrained(tmp_path / "smp")
    files = {name: tmp_path / "smp" / name for name in ("config.json", "model.safetensors")}
    commit = hub_cache.add("smp-hub/segformer-b0-512x512-ade-160k", files)
    spec_path = specseg.import_smp("smp-hub/segformer-b0-512x512-ade-160k", tmp_path / "out")
    spec = specseg.load_spec(spec_path)
    assert spec.metadata["imported_from"]["huggingface_repo"] == "smp-hub/segformer-b0-512x512-ade-160k"
    assert spec.metadata["imported_from"]["revision"] == commit
    model = specseg.build(spec_path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _assert_same_outputs(model(x), reference(x))

    run = lambda *a: subprocess.run([sys.executable, "-m", "specseg", "import-smp", *a], capture_output=True, text=True, timeout=120)  # noqa: E731
    pinned = run(f"smp-hub/segformer-b0-512x512-ade-160k@{commit}", "-o", str(tmp_path / "cli"))
    assert pinned.returncode == 0, pinned.stderr
    missing = run("smp-hub/not-cached", "-o", str(tmp_path / "missing"))
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "could not fetch config.json of the SMP model smp-hub/not-cached" in missing.stderr


@pytest.mark.parametrize(
    "smp_class,kwargs,ignored",
    [
        ("Unet", {"encoder_name": "resnet18", "encoder_output_stride": 16}, {"encoder_output_stride": 16}),
        ("FPN", {"encoder_name": "mit_b0", "encoder_output_stride": 8}, {"encoder_output_stride": 8}),
        ("Linknet", {"encoder_name": "resnet18", "upsampling": 2}, {"upsampling": 2}),
        ("UnetPlusPlus", {"encoder_name": "resnet18", "upsampling": 4, "encoder_output_stride": 16}, {"encoder_output_stride": 16, "upsampling": 4}),
        ("DeepLabV3Plus", {"encoder_name": "mit_b0", "encoder_output_stride": 16}, None),
        # MiT's attention reductions have even kernels: dilated with SMP's padding (k // 2) * rate, not a size-keeping one.
        ("DeepLabV3", {"encoder_name": "mit_b0", "encoder_output_stride": 8}, None),
        ("DeepLabV3Plus", {"encoder_name": "mit_b0", "encoder_output_stride": 8}, None),
    ],
)
def test_arguments_smp_ignores_or_honours_import_to_smps_network(smp_class: str, kwargs: dict, ignored: dict | None, tmp_path: Path) -> None:
    """What SMP records but ignores is left out (warned, kept in metadata); what it honours, specseg reproduces."""
    torch.manual_seed(0)
    reference = getattr(smp, smp_class)(encoder_weights=None, classes=2, **kwargs).eval()
    reference.save_pretrained(tmp_path / "smp")
    if ignored:
        with pytest.warns(UserWarning, match=f"ignores {', '.join(ignored)}"):
            spec_path = specseg.import_smp(tmp_path / "smp", tmp_path / "out")
    else:
        spec_path = specseg.import_smp(tmp_path / "smp", tmp_path / "out")
    spec = specseg.load_spec(spec_path)
    assert spec.metadata["imported_from"].get("ignored_by_smp") == ignored
    honoured = {k: v for k, v in kwargs.items() if k not in (ignored or {})}
    assert spec.encoder.output_stride == honoured.get("encoder_output_stride", 32)
    model = specseg.build(spec_path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _assert_same_outputs(model(x), reference(x))


@pytest.mark.parametrize("change", ["layout", "network"])
def test_refused_checkpoint_says_what_differs_at_the_argument(change: str, tmp_path: Path) -> None:
    import json

    from safetensors.torch import load_file, save_file

    smp.Unet("resnet18", encoder_weights=None, classes=2).save_pretrained(tmp_path / "smp")
    weights = tmp_path / "smp" / "model.safetensors"
    if change == "layout":
        state = load_file(weights)
        save_file({k.replace("encoder.layer1.", "encoder.stage1."): v for k, v in state.items()}, weights)
    else:
        config = json.loads((tmp_path / "smp" / "config.json").read_text())
        config["encoder_name"] = "resnet34"
        (tmp_path / "smp" / "config.json").write_text(json.dumps(config, indent=2))
    with pytest.raises(specseg.SpecError) as info:
        specseg.import_smp(tmp_path / "smp", tmp_path / "out")
    issue = info.value.issues[0]
    lines = (tmp_path / "smp" / "config.json").read_text().splitlines()
    assert '"encoder_name"' in lines[issue.location.line - 1] and issue.location.column > 1
    assert f"the {change} differs" in issue.message
