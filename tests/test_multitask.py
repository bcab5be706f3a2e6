"""Spec format 2: named decoders and heads on one encoder (issue 16).

Every architecture as a decoder of a two-decoder model with each head kind,
the encoder and each decoder run once per forward, the version 1 -> 2
migration (same parameters, version-1 weights load, same outputs), per-head
losses, fmt/hash/diff/--set/extends, the CLI summaries, exports and artifacts.
Small encoders at 64x64 keep it cheap.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import specseg
from specseg import SpecError
from specseg.errors import format_path
from specseg.multitask import MultiTaskModel
from specseg.multitask.state_dict import v1_to_v2_state_dict
from specseg.spec.canonical import canonical_json, diff, spec_hash
from specseg.spec.migrations import migrate
from tests.conftest import CORPUS, ROOT
from tests.small_models import ARCHITECTURES, small_input, small_spec

EXAMPLE = ROOT / "specs" / "multitask-building-footprints.yaml"
#: A tiny multi-task model for the exports: two decoders of different architectures, both head kinds.
TINY = {
    "specseg": 2,
    "encoder": {"name": "tu-test_resnet"},
    "decoders": {
        "main": {"architecture": "unet", "channels": [32, 16, 16, 8, 8]},
        "context": {"architecture": "fpn", "pyramid_channels": 32, "segmentation_channels": 32},
    },
    "heads": {
        "mask": {"type": "segmentation", "from": "main", "classes": 3},
        "depth": {"type": "segmentation", "from": "context", "classes": 1},
        "scene": {"type": "classification", "from": "encoder", "classes": 4},
        "context_label": {"type": "classification", "from": "context", "classes": 2},
    },
    "seed": 0,
}


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "specseg", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def two_decoder_spec(arch: str, second_head: str) -> dict[str, Any]:
    """Two decoders of ``arch`` (different options where it has any), a head on each, and a label head on the encoder.

    ``second_head`` is the kind of head reading decoder ``b``: segmentation or classification.
    """
    v1 = small_spec(arch)
    first = dict(v1["decoder"])
    second = dict(v1["decoder"])
    if arch == "fpn":
        second.update(merge_policy="cat", segmentation_channels=32)
    if arch == "unet":
        second.update(channels=[64, 32, 16, 16, 16], attention="scse")
    heads: dict[str, Any] = {
        "mask": {"type": "segmentation", "from": "a", "classes": 2},
        "other": {"type": "segmentation", "from": "b", "classes": 1, "activation": "sigmoid"}
        if second_head == "segmentation"
        else {"type": "classification", "from": "b", "classes": 4},
        "scene": {"type": "classification", "from": "encoder", "classes": 3},
    }
    return {"specseg": 2, "encoder": v1["encoder"], "decoders": {"a": first, "b": second}, "heads": heads, "seed": 0}


class CallCounter:
    """Counts the forward calls of modules through hooks."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.calls = dict.fromkeys(modules, 0)
        for name, module in modules.items():
            module.register_forward_hook(lambda *_, name=name: self.calls.__setitem__(name, self.calls[name] + 1))


@pytest.mark.parametrize("second_head", ["segmentation", "classification"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_as_a_decoder_with_each_head_kind(arch: str, second_head: str) -> None:
    spec = two_decoder_spec(arch, second_head)
    model = specseg.build(spec).eval()
    assert isinstance(model, MultiTaskModel)
    counter = CallCounter({"encoder": model.encoder, **{f"decoders.{n}": m for n, m in model.decoders.items()}})
    x = small_input(arch)
    with torch.no_grad():
        out = model(x)
    # One output per head, keyed by head name, in spec order.
    assert list(out) == ["mask", "other", "scene"]
    n, _, h, w = x.shape
    assert out["mask"].shape == (n, 2, h, w)
    assert out["other"].shape == ((n, 1, h, w) if second_head == "segmentation" else (n, 4))
    assert out["scene"].shape == (n, 3)
    if second_head == "segmentation":
        assert float(out["other"].min()) >= 0 and float(out["other"].max()) <= 1  # its sigmoid
    # The encoder runs once per forward whatever the number of decoders; each decoder once whatever its heads.
    assert counter.calls == {"encoder": 1, "decoders.a": 1, "decoders.b": 1}


def test_a_decoder_read_by_several_heads_runs_once() -> None:
    spec = {
        "specseg": 2,
        "encoder": {"name": "resnet18"},
        "decoders": {"main": {"architecture": "unet", "channels": [32, 16, 16, 8, 8]}},
        "heads": {name: {"type": "segmentation", "from": "main", "classes": 1} for name in ("a", "b", "c")}
        | {"d": {"type": "classification", "from": "main", "classes": 2, "pooling": "max"}},
    }
    model = specseg.build(spec).eval()
    counter = CallCounter({"encoder": model.encoder, "main": model.decoders["main"]})
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert counter.calls == {"encoder": 1, "main": 1}
    assert [tuple(v.shape) for v in out.values()] == [(1, 1, 64, 64)] * 3 + [(1, 2)]
    # A classification head on a decoder pools that decoder's output (its channels).
    assert model.heads["d"][3].in_features == model.decoders["main"].out_channels


def test_mixed_architectures_and_head_defaults_follow_the_decoder() -> None:
    spec = specseg.load_spec(EXAMPLE)
    # upsampling and kernel size default per the decoder's architecture (U-Net 1 and 3, FPN 4 and 1).
    assert (spec.heads["footprint"].upsampling, spec.heads["footprint"].kernel_size) == (1, 3)
    assert (spec.heads["distance"].upsampling, spec.heads["distance"].kernel_size) == (4, 1)
    model = specseg.build(EXAMPLE).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "footprint": (2, 1, 64, 96),
        "boundary": (2, 1, 64, 96),
        "distance": (2, 1, 64, 96),
        "has_buildings": (2, 1),
    }


def test_encoder_defaults_that_decoders_disagree_on_must_be_written() -> None:
    spec = {
        "specseg": 2,
        "encoder": {"name": "resnet18"},
        "decoders": {"a": {"architecture": "unet"}, "b": {"architecture": "deeplabv3plus"}},
        "heads": {"x": {"type": "segmentation", "from": "a"}, "y": {"type": "segmentation", "from": "b"}},
    }
    with pytest.raises(SpecError) as info:
        specseg.load_spec(spec)
    (issue,) = info.value.issues
    assert issue.path == ("encoder",) and "encoder.output_stride" in issue.message and "a (unet) 32, b (deeplabv3plus) 16" in issue.message
    spec["encoder"]["output_stride"] = 16
    assert specseg.load_spec(spec).encoder.output_stride == 16


def test_dpt_and_a_pyramid_decoder_cannot_share_an_encoder() -> None:
    spec = {
        "specseg": 2,
        "encoder": {"name": "tu-test_vit"},
        "decoders": {"vit": {"architecture": "dpt"}, "cnn": {"architecture": "segformer"}},
        "heads": {"x": {"type": "segmentation", "from": "vit"}, "y": {"type": "segmentation", "from": "cnn"}},
    }
    with pytest.raises(SpecError) as info:
        specseg.load_spec(spec)
    assert any(i.path == ("decoders",) and "share one encoder" in i.message for i in info.value.issues)


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (lambda s: s["decoders"]["a"].update(channels=[256, 128, 64]), "decoders.a.channels", "encoder.depth is 5"),
        (lambda s: s["heads"]["mask"].update({"from": "aa"}), "heads.mask.from", "did you mean 'a'?"),
        (lambda s: s["heads"]["scene"].update({"from": "nothing"}), "heads.scene.from", "must be one of: a, b, encoder"),
        (lambda s: s["decoders"].update(encoder={"architecture": "linknet"}), "decoders.encoder", "cannot name a decoder"),
        (lambda s: s.update(loss={"mask": {"name": "dice", "mode": "binary"}}), "loss.mask.mode", "needs a head with 1 class"),
        (lambda s: s.update(aux_params={"classes": 2}), "aux_params", "version-1 key"),
        (lambda s: s["heads"]["mask"].update(pooling="avg"), "heads.mask.pooling", "belongs to classification heads"),
        (lambda s: s["decoders"]["b"].update(pyramid_channels=8), "decoders.b.pyramid_channels", "belongs to: fpn"),
    ],
)
def test_mistakes_are_located_with_the_v2_path(change: Any, path: str, fragment: str) -> None:
    spec = two_decoder_spec("unet", "segmentation")
    change(spec)
    with pytest.raises(SpecError) as info:
        specseg.load_spec(spec)
    assert any(format_path(i.path) == path and fragment in i.message for i in info.value.issues), [
        (format_path(i.path), i.message) for i in info.value.issues
    ]


# ---------------------------------------------------------------------------------------- version 1 -> 2


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_migrated_v1_spec_takes_the_v1_weights_and_gives_the_same_outputs(arch: str) -> None:
    v1_data = small_spec(arch)
    v2_data = migrate(copy.deepcopy(v1_data), 2)
    assert v2_data["decoders"] == {"main": v1_data["decoder"]}
    assert list(v2_data["heads"]) == ["mask", "labels"]
    v1 = specseg.build(v1_data).eval()
    v2 = specseg.build(v2_data).eval()
    # The same network: the same parameters under the documented key mapping, bitwise (same seed).
    mapped = v1_to_v2_state_dict(v1.state_dict(), v2.spec)
    assert list(mapped) == list(v2.state_dict())
    assert all(torch.equal(mapped[k], v) for k, v in v2.state_dict().items())
    # And a v1 model's weights (other values) load into the v2 model and give the v1 outputs.
    with torch.no_grad():
        for p in v1.parameters():
            p.add_(0.01 * torch.randn_like(p))
    v2.load_state_dict(v1.state_dict())
    x = small_input(arch)
    with torch.no_grad():
        mask, labels = v1(x)
        out = v2(x)
    assert torch.equal(out["mask"], mask) and torch.equal(out["labels"], labels)


def test_v1_checkpoint_file_loads_through_the_weights_key(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    v1 = specseg.build(small_spec("fpn")).eval()
    save_file({k: v.contiguous() for k, v in v1.state_dict().items()}, str(tmp_path / "v1.safetensors"))
    v2_data = migrate(small_spec("fpn"), 2) | {"weights": "v1.safetensors"}
    (tmp_path / "spec.yaml").write_text(json.dumps(v2_data), encoding="utf-8")
    v2 = specseg.build(tmp_path / "spec.yaml").eval()
    x = small_input("fpn")
    with torch.no_grad():
        assert torch.equal(v2(x)["mask"], v1(x)[0])


def test_v1_files_keep_loading_as_version_1() -> None:
    spec = specseg.load_spec(ROOT / "specs" / "unet-convnext-atto-aux.yaml")
    assert isinstance(spec, specseg.ModelSpec) and spec.specseg == 1


def test_fmt_to_2_writes_the_migrated_file_which_builds_the_same_network(tmp_path: Path) -> None:
    source = ROOT / "specs" / "unet-convnext-atto-aux.yaml"
    result = cli("fmt", str(source), "--to", "2")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("# yaml-language-server")  # header comments kept
    assert "specseg: 2\n" in text and "decoders:\n  main:\n" in text
    assert "  mask: {type: segmentation, from: main, classes: 5, activation: softmax2d}\n" in text
    assert "  labels: {type: classification, from: encoder, classes: 3" in text
    migrated = tmp_path / "v2.yaml"
    migrated.write_text(text, encoding="utf-8")
    assert cli("fmt", str(migrated), "--check").returncode == 0
    v1 = specseg.build(source)
    v2 = specseg.build(migrated)
    assert sum(p.numel() for p in v1.parameters()) == sum(p.numel() for p in v2.parameters())
    # Same seed in the spec: bitwise the same initial weights.
    mapped = v1_to_v2_state_dict(v1.state_dict(), v2.spec)
    assert all(torch.equal(mapped[k], v) for k, v in v2.state_dict().items())


def test_fmt_to_refuses_a_file_with_extends_unless_resolved(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("specseg: 1\nencoder: {name: resnet18}\ndecoder: {architecture: unet}\n")
    (tmp_path / "top.yaml").write_text("extends: base.yaml\nspecseg: 1\nhead: {classes: 2}\n")
    refused = cli("fmt", str(tmp_path / "top.yaml"), "--to", "2")
    assert refused.returncode == 2 and "--resolved" in refused.stderr
    resolved = cli("fmt", str(tmp_path / "top.yaml"), "--to", "2", "--resolved")
    assert resolved.returncode == 0 and "classes: 2" in resolved.stdout and "decoders:" in resolved.stdout


# ---------------------------------------------------------------------------------------- losses


def test_build_loss_weights_each_head_and_returns_the_terms() -> None:
    model = specseg.build(EXAMPLE)
    loss = specseg.build_loss(EXAMPLE)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    g = torch.Generator().manual_seed(0)
    targets = {
        "footprint": torch.randint(0, 2, (2, 1, 64, 64), generator=g).float(),
        "boundary": torch.randint(0, 2, (2, 1, 64, 64), generator=g).float(),
        "has_buildings": torch.randint(0, 2, (2, 1), generator=g).float(),
    }
    total, terms = loss(out, targets)
    assert list(terms) == ["footprint", "boundary", "has_buildings"]
    from specseg.losses import DiceLoss, SoftBCEWithLogitsLoss

    expected = {
        "footprint": DiceLoss("binary")(out["footprint"], targets["footprint"])
        + 0.5 * SoftBCEWithLogitsLoss()(out["footprint"], targets["footprint"]),
        "boundary": SoftBCEWithLogitsLoss(pos_weight=torch.tensor([5.0]).reshape(-1, 1, 1))(out["boundary"], targets["boundary"]),
        "has_buildings": 0.1 * SoftBCEWithLogitsLoss()(out["has_buildings"], targets["has_buildings"]),
    }
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value)
    torch.testing.assert_close(total, sum(expected.values()))
    total.backward()
    assert model.heads["distance"][0].weight.grad is None  # no loss on the distance head
    assert model.heads["footprint"][0].weight.grad is not None
    with pytest.raises(KeyError, match="no target for head 'boundary'"):
        loss(out, {"footprint": targets["footprint"], "has_buildings": targets["has_buildings"]})


def test_class_weights_of_a_classification_head_are_per_class() -> None:
    spec = two_decoder_spec("unet", "classification") | {"loss": {"other": {"name": "soft_bce", "bce_weight": [1.0, 2.0, 0.0, 1.0]}}}
    model = specseg.build(spec)
    out = model(torch.randn(2, 3, 64, 64))
    target = torch.randint(0, 2, (2, 4)).float()
    total, terms = specseg.build_loss(spec)(out, {"other": target})
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out["other"], target, weight=torch.tensor([1.0, 2.0, 0.0, 1.0]))
    torch.testing.assert_close(total, expected)


# ---------------------------------------------------------------------------------------- versioned files


def test_set_extends_hash_and_diff(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        "specseg: 2\nencoder: {name: resnet18}\ndecoders:\n  main: {architecture: unet}\n"
        "heads:\n  scene: {type: classification, classes: 4}\n",
        encoding="utf-8",
    )
    top = tmp_path / "top.yaml"
    top.write_text("extends: base.yaml\nheads:\n  mask: {type: segmentation, from: main, classes: 3}\n", encoding="utf-8")
    spec = specseg.load_spec(top)
    # The base file adds a head; the top file's head comes after it.
    assert list(spec.heads) == ["scene", "mask"]
    assert specseg.load_spec(top, ["heads.mask.classes=5"]).heads["mask"].classes == 5
    assert cli("validate", str(top), "--set", "heads.mask.classes=5").returncode == 0
    # Renaming a head is a removal plus an addition.
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(top.read_text().replace("mask:", "segments:"), encoding="utf-8")
    changes = diff(spec, specseg.load_spec(renamed))
    assert [(c["path"], c["change"]) for c in changes] == [("heads.mask", "removed"), ("heads.segments", "added")]
    result = cli("diff", str(top), str(renamed))
    assert result.returncode == 0 and "- heads.mask:" in result.stdout and "+ heads.segments:" in result.stdout
    # Head order is the outputs' order: it is part of the hash, and diff names it.
    swapped = specseg.load_spec({**spec.model_dump(mode="json"), "heads": dict(reversed(spec.model_dump(mode="json")["heads"].items()))})
    assert spec_hash(swapped) != spec_hash(spec)
    assert diff(spec, swapped) == [{"path": "heads", "change": "reordered", "a": ["scene", "mask"], "b": ["mask", "scene"]}]
    # Formatting and defaults do not change the hash.
    explicit = specseg.load_spec(canonical_json(spec))
    assert spec_hash(explicit) == spec_hash(spec)
    assert cli("hash", str(top)).stdout.strip() == spec_hash(spec)


# ---------------------------------------------------------------------------------------- command line


V2_MISTAKES = sorted((CORPUS / "invalid").glob("v2-*.yaml"))


@pytest.mark.parametrize("path", V2_MISTAKES, ids=lambda p: p.name)
def test_validate_exits_1_with_location_and_v2_path(path: Path) -> None:
    position, spec_path = path.read_text().splitlines()[0].removeprefix("# expect: ").split(" ")[:2]
    result = cli("validate", str(path))
    assert result.returncode == 1
    assert f"{path}:{position}: {spec_path}: " in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_build_and_dry_run_summaries_per_decoder_and_head() -> None:
    dry = cli("build", str(EXAMPLE), "--dry-run", "--input-shape", "1,3,64,64", "--json")
    assert dry.returncode == 0, dry.stderr
    summary = json.loads(dry.stdout)
    assert summary["architecture"] == "unet+fpn"
    assert summary["decoder_outputs"] == {"main": [1, 16, 64, 64], "context": [1, 64, 16, 16]}
    assert summary["outputs"] == {
        "footprint": [1, 1, 64, 64],
        "boundary": [1, 1, 64, 64],
        "distance": [1, 1, 64, 64],
        "has_buildings": [1, 1],
    }
    params, flops = summary["parameters"], summary["flops"]
    assert list(params["decoders"]) == ["main", "context"] and list(params["heads"]) == list(summary["outputs"])
    assert params["total"] == params["encoder"] + sum(params["decoders"].values()) + sum(params["heads"].values())
    assert all(v > 0 for v in flops["decoders"].values()) and all(v > 0 for v in flops["heads"].values())
    model = specseg.build(EXAMPLE)
    assert params["total"] == sum(p.numel() for p in model.parameters())
    assert params["decoders"]["context"] == sum(p.numel() for p in model.decoders["context"].parameters())
    text = cli("build", str(EXAMPLE), "--input-shape", "1,3,64,64")
    assert text.returncode == 0, text.stderr
    assert "heads.has_buildings: (1, 1)" in text.stdout and "0.5 * soft_bce[footprint]" in text.stdout


# ---------------------------------------------------------------------------------------- exports and artifacts


def test_artifact_rebuilds_the_multi_head_model_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = specseg.build(EXAMPLE).eval()
    path = specseg.save_artifact(model, tmp_path / "model.safetensors")
    loaded = specseg.load(path).eval()
    assert list(loaded.spec.heads) == list(model.spec.heads)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    info = cli("inspect", str(path), "--json")
    assert json.loads(info.stdout)["architecture"] == "unet+fpn"


def test_onnx_has_one_named_output_per_head_and_agrees_in_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from specseg.export import export_models

    model = specseg.build(TINY).eval()
    onnx_path, ts_path = tmp_path / "m.onnx", tmp_path / "m.pt"
    export_models(model, [onnx_path, ts_path], input_shape=(2, 3, 64, 64))
    session = ort.InferenceSession(str(onnx_path))
    names = [o.name for o in session.get_outputs()]
    assert names == list(model.spec.heads)
    x = torch.randn(2, 3, 96, 64)  # another size than the example: dynamic height and width
    with torch.no_grad():
        expected = model(x)
    for name, value in zip(names, session.run(None, {"input": x.numpy()})):
        torch.testing.assert_close(torch.from_numpy(value), expected[name], rtol=1e-4, atol=1e-4)
    traced = torch.jit.load(str(ts_path))
    with torch.no_grad():
        got = traced(x)
    assert list(got) == names and all(torch.allclose(got[k], expected[k], atol=1e-5) for k in names)


def test_torch_export_compile_and_optimize_for_inference() -> None:
    model = specseg.build(TINY).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        program = torch.export.export(model, (x,))
        exported = program.module()(x)
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")(x)
    for got in (exported, compiled):
        assert list(got) == list(expected)
        for k in expected:
            torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-5)
    model.optimize_for_inference()
    with torch.no_grad():
        fast = model(x)
    for k in expected:
        torch.testing.assert_close(fast[k], expected[k], rtol=1e-4, atol=1e-4)
        assert fast[k].is_contiguous()
