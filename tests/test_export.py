"""Exports match the eager model: ONNX (in onnxruntime), torch.export (.pt2) and TorchScript (.pt).

Every architecture is built from a small spec (resnet18, or timm's tiny test
ViT for DPT; an auxiliary classification head so both outputs are checked),
exported with a 2x3x64x64 example, reloaded from the file and run on an input
with a different batch, height and width than the export saw.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

import specseg
from specseg.cli.main import main
from specseg.errors import NotScriptableError
from specseg.export import adaptive_avg_pool2d_by_matmul, export_model, export_models
from specseg.spec.decoders import SECTIONS

EXAMPLE_SHAPE = (2, 3, 64, 64)
#: Another batch, height and width than the export's example (multiples of 32, as every architecture needs).
OTHER_SHAPE = (3, 3, 96, 128)

#: Architectures an export cannot keep dynamic in height and width, and why. strict=True: when one is
#: fixed, its test passes and fails the run, so the mark is removed.
FIXED_SIZE: dict[str, str] = {}
#: Only torch.export: PAN's FPA block halves the deepest map three times down to 1x1, and with
#: the 64x64 example (deepest map 8x8) the exporter turns that into a guard fixing the size;
#: an example whose deepest map is at least 16x16 keeps it dynamic.
EXPORT_FIXED_SIZE = {**FIXED_SIZE, "pan": "the 64x64 example gives PAN an 8x8 deepest map, which torch.export specialises"}


def small_spec(arch: str) -> dict[str, Any]:
    """The small test spec of an architecture: the example its section carries (a second or two to export)."""
    section = SECTIONS[arch]
    return {
        "specseg": 1,
        "encoder": dict(section.small_encoder),
        "decoder": {"architecture": arch, **section.small_example},
        "aux_params": {"classes": 2},
        "seed": 0,
    }


def _cases(fixed: dict[str, str] = FIXED_SIZE) -> list[Any]:
    cases = []
    for arch in SECTIONS:
        marks = [pytest.mark.xfail(strict=True, reason=fixed[arch])] if arch in fixed else []
        cases.append(pytest.param(arch, marks=marks, id=arch))
    return cases


_MODELS: dict[str, tuple[torch.nn.Module, torch.Tensor, tuple[torch.Tensor, ...]]] = {}


def _have(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


#: ONNX export needs onnx and onnxscript (the test extra); without them the other formats are still tested.
HAVE_ONNX_EXPORT = _have("onnx", "onnxscript")
SUFFIXES = ("onnx", "pt2", "pt") if HAVE_ONNX_EXPORT else ("pt2", "pt")


def model_and_reference(arch: str) -> tuple[torch.nn.Module, torch.Tensor, tuple[torch.Tensor, ...]]:
    """The eval-mode model of ``arch``, an input of OTHER_SHAPE and the eager outputs for it (cached)."""
    if arch not in _MODELS:
        model = specseg.build(small_spec(arch)).eval()
        x = torch.randn(OTHER_SHAPE, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            out = model(x)
        _MODELS[arch] = (model, x, tuple(out) if isinstance(out, tuple) else (out,))
    return _MODELS[arch]


def export_architecture(arch: str, folder: str) -> dict[str, Any]:
    """Build ``arch``'s small spec and write its three exports with one call (runs in a worker process).

    Returns ``{suffix: ExportResult.to_dict()}``, or ``{"error": message}``.
    The spec's seed makes the worker's weights equal the test process's.
    """
    torch.set_num_threads(1)  # one worker per core
    model = specseg.build(small_spec(arch))
    paths = [Path(folder) / f"{arch}.{suffix}" for suffix in SUFFIXES]
    try:
        results = export_models(model, paths, input_shape=EXAMPLE_SHAPE)
    except Exception as exc:  # noqa: BLE001 - reported by the architecture's own tests
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {suffix: r.to_dict() for suffix, r in zip(SUFFIXES, results)}


@pytest.fixture(scope="module")
def exports(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The exports of every architecture the selected tests need, made in parallel worker processes.

    Capturing and translating a model is single-threaded Python, seconds per
    architecture; spreading the architectures over the CPU cores keeps the
    module's wall time down.
    """
    folder = tmp_path_factory.mktemp("exports")
    wanted = sorted(
        {
            item.callspec.params["arch"]
            for item in request.session.items
            if item.module is request.module and hasattr(item, "callspec") and "arch" in item.callspec.params
        }
    )
    workers = min(len(wanted), os.cpu_count() or 1, 4)
    if workers <= 1:
        return {arch: export_architecture(arch, str(folder)) for arch in wanted}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {arch: pool.submit(export_architecture, arch, str(folder)) for arch in wanted}
        return {arch: future.result() for arch, future in futures.items()}


def exported(exports: dict[str, dict[str, Any]], arch: str, suffix: str) -> dict[str, Any]:
    """One export's result (the JSON form of :class:`ExportResult`); fails the test if the export failed."""
    result = exports[arch]
    if "error" in result:
        pytest.fail(f"exporting {arch} failed: {result['error']}")
    return result[suffix]


def assert_outputs_equal(got: Any, expected: tuple[torch.Tensor, ...], atol: float) -> None:
    got = tuple(got) if isinstance(got, (tuple, list)) else (got,)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        a = torch.as_tensor(a)
        assert tuple(a.shape) == tuple(b.shape)
        torch.testing.assert_close(a, b, atol=atol, rtol=0)


@pytest.mark.parametrize("arch", _cases())
def test_onnx_matches_eager_at_other_sizes(arch: str, exports: dict[str, dict[str, Any]]) -> None:
    if not HAVE_ONNX_EXPORT:
        pytest.skip("onnx and onnxscript are not installed")
    ort = pytest.importorskip("onnxruntime")
    _, x, expected = model_and_reference(arch)
    result = exported(exports, arch, "onnx")
    assert result["files"] == [result["path"]]
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["mask", "labels"]
    # Readable dimension names, not torch.export's symbols or size formulas.
    assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    for output in session.get_outputs():
        assert all(isinstance(d, int) or d in ("batch", "height", "width") or d.startswith(f"{output.name}_") for d in output.shape), output.shape
    got = session.run(None, {"input": x.numpy()})
    assert_outputs_equal([torch.from_numpy(a) for a in got], expected, atol=1e-4)
    assert result["dynamic"] == {"batch": True, "height": True, "width": True}


@pytest.mark.parametrize("arch", _cases(EXPORT_FIXED_SIZE))
def test_torch_export_round_trip(arch: str, exports: dict[str, dict[str, Any]]) -> None:
    _, x, expected = model_and_reference(arch)
    result = exported(exports, arch, "pt2")
    program = torch.export.load(result["path"])
    with torch.no_grad():
        got = program.module()(x)
    assert_outputs_equal(got, expected, atol=1e-5)
    assert result["dynamic"] == {"batch": True, "height": True, "width": True}


JIT_LOAD_DEPRECATED = "ignore:`torch.jit.load` is deprecated:FutureWarning"


@pytest.mark.filterwarnings(JIT_LOAD_DEPRECATED)
@pytest.mark.parametrize("arch", _cases())
def test_torchscript_round_trip(arch: str, exports: dict[str, dict[str, Any]]) -> None:
    _, x, expected = model_and_reference(arch)
    result = exported(exports, arch, "pt")
    loaded = torch.jit.load(result["path"])
    with torch.no_grad():
        got = loaded(x)
    assert_outputs_equal(got, expected, atol=1e-5)
    assert result["dynamic"] == {"batch": True, "height": True, "width": True} and not result["notes"]


def test_fixed_size_encoder_is_reported(tmp_path: Path) -> None:
    spec = small_spec("dpt")
    spec["encoder"]["params"] = {"img_size": 64, "dynamic_img_size": False}
    model = specseg.build(spec)
    # Default example: the encoder's one size.
    for result in export_models(model, [tmp_path / "vit.pt2", tmp_path / "vit.pt"]):
        assert result.input_shape == (2, 3, 64, 64)
        assert result.dynamic == {"batch": True, "height": False, "width": False}, result.format
        assert any("dynamic_img_size" in note for note in result.notes)


@pytest.mark.skipif(not HAVE_ONNX_EXPORT, reason="onnx and onnxscript are not installed")
def test_onnx_external_data_is_written_beside_the_model(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model, x, expected = model_and_reference("unet")
    path = tmp_path / "big.onnx"
    model.train()
    try:
        result = export_model(model, path, input_shape=EXAMPLE_SHAPE, external_data=True)
        assert model.training  # exported in eval mode, then given back in the caller's mode
    finally:
        model.eval()
    assert result.files == [path, tmp_path / "big.onnx.data"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]  # no staging folder left
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_outputs_equal([torch.from_numpy(a) for a in session.run(None, {"input": x.numpy()})], expected, atol=1e-4)


@pytest.mark.parametrize("size", [(7, 5), (13, 9), (2, 2), (12, 12), (64, 3)])
@pytest.mark.parametrize("output", [(1, 1), (2, 2), (3, 3), (6, 6), (2, 3)])
def test_adaptive_pool_decomposition_equals_torch(size: tuple[int, int], output: tuple[int, int]) -> None:
    x = torch.randn(2, 4, *size)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, output)
    torch.testing.assert_close(adaptive_avg_pool2d_by_matmul(x, output), expected, atol=1e-6, rtol=1e-6)


def test_export_refuses_existing_file_and_unknown_suffix(tmp_path: Path) -> None:
    model, _, _ = model_and_reference("unet")
    path = tmp_path / "model.pt"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="--force"):
        export_model(model, path, input_shape=EXAMPLE_SHAPE)
    assert path.read_bytes() == b"keep"
    with pytest.raises(ValueError, match=r"\.safetensors, \.onnx, \.pt2, \.pt"):
        export_model(model, tmp_path / "model.bin")


def test_cli_build_rejects_unknown_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("specseg: 1\nencoder: {name: resnet18, depth: 3}\ndecoder: {architecture: unet, channels: [16, 16, 16]}\n")
    assert main(["build", str(spec), "-o", str(tmp_path / "model.h5")]) == 2
    assert "cannot tell the output format" in capsys.readouterr().err
    assert not (tmp_path / "model.h5").exists()


@pytest.mark.filterwarnings(JIT_LOAD_DEPRECATED)
def test_cli_build_writes_torchscript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("specseg: 1\nencoder: {name: resnet18, depth: 3}\ndecoder: {architecture: unet, channels: [16, 16, 16]}\n")
    out = tmp_path / "model.pt"
    assert main(["build", str(spec), "--input-shape", "1,3,64,64", "-o", str(out), "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out)  # nothing but the JSON on stdout
    (written,) = summary["written"]
    assert written["format"] == "torchscript" and written["files"] == [str(out)]
    assert written["input_shape"] == [2, 3, 64, 64]  # batch raised to 2 for the trace
    assert written["dynamic"] == {"batch": True, "height": True, "width": True}
    assert torch.jit.load(str(out))(torch.zeros(1, 3, 96, 64)).shape == (1, 1, 96, 64)


# --- exports that must finish in minutes, and what is reported when one fails ------------------


@pytest.mark.parametrize("encoder", ["efficientnet-b0", "tu-tf_efficientnet_b0"])
def test_efficientnet_fpn_exports_finish(encoder: str, tmp_path: Path) -> None:
    """TF-style 'same' padding computed from the input size (timm's Conv2dSame, which efficientnet-b0
    was built from) made torch.export's shape solver run for an hour: such encoders are captured
    with a fixed height and width, and the result says so. efficientnet-b0 is now SMP's network,
    whose 'same' padding is fixed at construction, and stays dynamic."""
    import json
    import subprocess
    import sys

    if not HAVE_ONNX_EXPORT:
        pytest.skip("onnx and onnxscript are not installed")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"specseg: 1\nseed: 0\nencoder: {{name: {encoder}}}\ndecoder: {{architecture: fpn}}\naux_params: {{classes: 3}}\n")
    onnx_file, pt2_file = tmp_path / "m.onnx", tmp_path / "m.pt2"
    result = subprocess.run(
        [sys.executable, "-m", "specseg", "build", str(spec), "--input-shape", "1,3,64,64", "-o", str(onnx_file), "-o", str(pt2_file), "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = {w["format"]: w for w in json.loads(result.stdout)["written"]}
    assert set(written) == {"onnx", "pt2"}
    model = specseg.build(spec).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        expected = model(x)
    program = torch.export.load(str(pt2_file)).module()
    assert_outputs_equal(program(x), expected, atol=1e-4)
    if encoder == "tu-tf_efficientnet_b0":
        assert written["onnx"]["dynamic"] == {"batch": True, "height": False, "width": False}
        assert "pads 'same' from the input size (Conv2dSame" in written["onnx"]["notes"][0]
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    got = session.run(None, {"input": x.numpy()})
    assert_outputs_equal([torch.from_numpy(a) for a in got], expected, atol=1e-4)


def test_static_shape_fixes_every_dimension(tmp_path: Path) -> None:
    model = specseg.build(small_spec("unet")).eval()
    (result,) = export_models(model, [tmp_path / "m.pt2"], input_shape=(2, 3, 64, 64), static=True)
    assert result.dynamic == {"batch": False, "height": False, "width": False}
    assert "a static-shape export was asked for" in result.notes[0]


def test_missing_onnx_is_refused_before_building(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    blocker = tmp_path / "blocker"
    for name in ("onnx", "onnxscript"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("specseg: 1\nencoder: {name: resnet18, depth: 3}\ndecoder: {architecture: unet, channels: [16, 16, 16]}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(Path(__file__).resolve().parent.parent)])}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "specseg", "build", str(spec), "-o", str(tmp_path / "m.onnx")], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 1
    assert "pip install 'specseg[onnx]'" in result.stderr and "parameters:" not in result.stdout
    assert not (tmp_path / "m.onnx").exists()
    assert time.monotonic() - start < 120


def test_cli_reports_what_was_written_before_a_failed_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import specseg.export as export

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise export.ExportError("torch.export could not capture the model: a test's refusal")

    monkeypatch.setattr(export, "export_program", refuse)
    spec = tmp_path / "spec.yaml"
    spec.write_text("specseg: 1\nencoder: {name: resnet18, depth: 3}\ndecoder: {architecture: unet, channels: [16, 16, 16]}\n")
    artifact = tmp_path / "m.safetensors"
    assert main(["build", str(spec), "--input-shape", "1,3,64,64", "-o", str(artifact), "-o", str(tmp_path / "m.pt2")]) == 1
    out, err = capsys.readouterr()
    assert f"wrote:        {artifact} (safetensors)" in out
    assert "a test's refusal" in err and artifact.exists() and not (tmp_path / "m.pt2").exists()


#: torch.jit.script is deprecated in torch 2.14; these tests check that it still compiles every model it can.
JIT_SCRIPT_DEPRECATED = "ignore:`torch.jit.script` is deprecated:FutureWarning"
#: Encoders every scriptable architecture is scripted with: a native one and a tiny timm one.
SCRIPT_ENCODERS = ("resnet18", "tu-test_resnet")
#: Parts SMP 0.6 cannot script either (its ``_is_torch_scriptable = False``): refused with their name.
NOT_SCRIPTABLE = {"unetplusplus": "a U-Net++ decoder", "dpt": "a ViT encoder"}


def _script_cases() -> list[Any]:
    # DPT needs a ViT encoder: one case, with the section's own.
    return [
        pytest.param(arch, encoder, id=f"{arch}-{encoder}")
        for arch in SECTIONS
        for encoder in (SCRIPT_ENCODERS[:1] if arch == "dpt" else SCRIPT_ENCODERS)
    ]


@pytest.mark.filterwarnings(JIT_SCRIPT_DEPRECATED)
@pytest.mark.parametrize(("arch", "encoder"), _script_cases())
def test_torch_jit_script_matches_eager(arch: str, encoder: str) -> None:
    """torch.jit.script compiles every architecture SMP can script, with the eager outputs and state-dict keys."""
    spec = small_spec(arch)
    if arch != "dpt":
        spec["encoder"]["name"] = encoder
    model = specseg.build(spec).eval()
    if arch in NOT_SCRIPTABLE:
        with pytest.raises(NotScriptableError, match=f"cannot compile {re.escape(NOT_SCRIPTABLE[arch])} .*torch.jit.trace") as refused:
            torch.jit.script(model)
        assert isinstance(refused.value, RuntimeError)  # the type TorchScript's own errors have
        return
    scripted = torch.jit.script(model)
    assert list(scripted.state_dict()) == list(model.state_dict())
    x = torch.randn(EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(x)
        got = scripted(x)
    # 1e-5: AtrousConv2d's eager shortcut (DeepLab) skips zero taps that the scripted graph sums.
    assert_outputs_equal(got, tuple(expected), atol=1e-5)


@pytest.mark.filterwarnings(JIT_SCRIPT_DEPRECATED)
def test_torch_jit_script_refuses_dpn_encoder() -> None:
    """SMP's DPN encoders are not scriptable either: the refusal names the encoder."""
    model = specseg.build({"specseg": 1, "encoder": {"name": "dpn68", "depth": 3}, "decoder": {"architecture": "fpn"}})
    with pytest.raises(NotScriptableError, match="cannot compile a DPN encoder"):
        torch.jit.script(model)


#: SMP encoder families whose forward specseg writes itself (not timm's), one small name each; each compiles in SMP.
#: The heavier ones (seconds to build and script each) run with SPECSEG_TEST_HEAVY=1.
_HEAVY = pytest.mark.skipif(os.environ.get("SPECSEG_TEST_HEAVY") != "1", reason="heavy encoder: set SPECSEG_TEST_HEAVY=1")
SCRIPT_FAMILIES = [
    pytest.param("vgg11", id="vgg11"),
    pytest.param("xception", id="xception"),
    pytest.param("mobilenet_v2", id="mobilenet_v2"),
    pytest.param("mit_b0", marks=_HEAVY, id="mit_b0"),
    pytest.param("densenet121", marks=_HEAVY, id="densenet121"),
    pytest.param("inceptionv4", marks=_HEAVY, id="inceptionv4"),
    pytest.param("efficientnet-b0", marks=_HEAVY, id="efficientnet-b0"),
]


@pytest.mark.filterwarnings(JIT_SCRIPT_DEPRECATED)
@pytest.mark.parametrize("encoder", SCRIPT_FAMILIES)
def test_torch_jit_script_encoder_families(encoder: str) -> None:
    """Encoders with specseg's own forward (SMP's taps) compile at depth 5 and give the eager features."""
    model = specseg.build({"specseg": 1, "encoder": {"name": encoder}, "decoder": {"architecture": "fpn"}}).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert_outputs_equal(scripted.encoder(x), tuple(model.encoder(x)), atol=1e-5)
        assert_outputs_equal(scripted(x), (model(x),), atol=1e-5)


@pytest.mark.filterwarnings(JIT_SCRIPT_DEPRECATED)
def test_torch_jit_script_multitask_model() -> None:
    """A version-2 model (two decoders, a head on the encoder) scripts to the same dict of outputs."""
    spec = {
        "specseg": 2,
        "encoder": {"name": "resnet18", "depth": 3},
        "decoders": {"main": {"architecture": "unet", "channels": [16, 16, 16]}, "context": {"architecture": "fpn", "pyramid_channels": 32, "segmentation_channels": 32}},
        "heads": {
            "mask": {"type": "segmentation", "from": "main", "classes": 2},
            "edges": {"type": "segmentation", "from": "context", "classes": 1},
            "label": {"type": "classification", "from": "encoder", "classes": 3},
        },
    }
    model = specseg.build(spec).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected, got = model(x), scripted(x)
    assert list(got) == list(expected) == ["mask", "edges", "label"]
    assert_outputs_equal(tuple(got.values()), tuple(expected.values()), atol=1e-5)


@pytest.mark.filterwarnings(JIT_SCRIPT_DEPRECATED)
def test_torch_jit_script_after_optimize_for_inference() -> None:
    """A model prepared with optimize_for_inference (prepacked convolutions) still scripts, to the eager values."""
    model = specseg.build(small_spec("unet")).eval()
    x = torch.randn(EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(x)
        scripted = torch.jit.script(model.optimize_for_inference())
        got = scripted(x)
    # Channels-last kernels sum in another order: equal to float rounding.
    assert_outputs_equal(got, tuple(expected), atol=1e-4)
