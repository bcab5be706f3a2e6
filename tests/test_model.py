"""Built models: output shapes, the model's parts, seeding, input-size rules, example specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import specseg
from specseg import SpecError
from specseg.spec.decoders import SECTIONS
from tests.conftest import SPECS


def unet(depth: int = 5, in_channels: int = 3, aux: bool = False, **extra: object) -> dict:
    spec: dict = {
        "specseg": 1,
        "encoder": {"name": "resnet18", "depth": depth, "in_channels": in_channels},
        "decoder": {"architecture": "unet", "channels": [32, 16, 16, 8, 8][:depth]},
        "head": {"classes": 3},
    }
    if aux:
        spec["aux_params"] = {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}
    spec.update(extra)
    return spec


@pytest.mark.parametrize("aux", [False, True], ids=["mask", "mask+labels"])
@pytest.mark.parametrize("in_channels", [1, 4])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_unet_output_shapes(depth: int, in_channels: int, aux: bool) -> None:
    model = specseg.build(unet(depth, in_channels, aux)).eval()
    assert model.encoder.out_channels[0] == in_channels and len(model.encoder.out_channels) == depth + 1
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, 64, 64))
    if aux:
        mask, labels = out
        assert labels.shape == (2, 4)
        assert ((labels >= 0) & (labels <= 1)).all()  # sigmoid activation
    else:
        mask = out
    assert mask.shape == (2, 3, 64, 64)


def test_model_parts() -> None:
    model = specseg.build(unet(aux=True))
    assert isinstance(model, specseg.SegmentationModel) and isinstance(model, torch.nn.Module)
    assert model.spec == specseg.load_spec(unet(aux=True))
    assert model.classification_head is not None
    for part in (model.encoder, model.decoder, model.segmentation_head):
        assert isinstance(part, torch.nn.Module)
    assert specseg.build(unet()).classification_head is None


@pytest.mark.parametrize("size", [(64, 64), (65, 47), (33, 100)])
def test_unet_accepts_any_input_size(size: tuple[int, int]) -> None:
    model = specseg.build(unet()).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_wrong_input_channels_is_a_clear_error() -> None:
    model = specseg.build(unet(in_channels=4))
    with pytest.raises(ValueError, match="expected 4 input channels"):
        model(torch.randn(1, 3, 64, 64))


def test_same_seed_gives_identical_weights_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = specseg.build(unet(seed=7)).state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)
    b = specseg.build(unet(seed=7)).state_dict()
    c = specseg.build(unet(seed=8)).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("output_stride", [8, 16])
def test_output_stride_is_honoured(output_stride: int) -> None:
    model = specseg.build({**unet(), "encoder": {"name": "resnet18", "output_stride": output_stride}}).eval()
    features = model.encoder(torch.randn(1, 3, 64, 64))
    assert model.encoder.output_stride == output_stride
    assert features[-1].shape[-1] == 64 // output_stride


@pytest.mark.parametrize("name, depth", [("tu-resnet18", 5), ("tu-resnet18", 1), ("tu-convnext_atto", 4), ("tu-convnext_atto", 2)])
def test_timm_encoders_satisfy_the_contract(name: str, depth: int) -> None:
    model = specseg.build({"specseg": 1, "encoder": {"name": name, "depth": depth}, "decoder": {"architecture": "unet"}})
    x = torch.randn(1, 3, 64, 64)
    features = model.encoder(x)
    assert [f.shape[1] for f in features] == model.encoder.out_channels
    assert [f.shape[-1] for f in features] == [64 // 2**i for i in range(depth + 1)]
    assert model(x).shape == (1, 1, 64, 64)


def test_stride4_timm_model_at_depth_1_is_refused_clearly() -> None:
    spec = "specseg: 1\nencoder:\n  name: tu-convnext_atto\n  depth: 1\ndecoder: {architecture: unet}\n"
    with pytest.raises(SpecError) as info:
        specseg.build(spec)
    (issue,) = info.value.issues
    assert issue.path == ("encoder", "depth") and issue.location.line == 4
    assert "use encoder.depth 2..5" in issue.message


def test_timm_model_that_cannot_dilate_is_refused_clearly() -> None:
    spec = "specseg: 1\nencoder:\n  name: tu-convnext_atto\n  output_stride: 8\ndecoder: {architecture: unet}\n"
    try:
        model = specseg.build(spec)
    except SpecError as exc:
        (issue,) = exc.issues
        assert issue.path == ("encoder", "output_stride") and issue.location.line == 4
    else:  # timm may dilate the model; then the stride must be real
        assert model.encoder(torch.randn(1, 3, 64, 64))[-1].shape[-1] == 8


def test_divisible_input_rule_names_nearest_sizes() -> None:
    # PSPNet (default depth 3, stride 8) needs sizes divisible by 8; the check is the model's, shared by all.
    assert SECTIONS["pspnet"].defaults.requires_divisible_input
    model = specseg.build({"specseg": 1, "encoder": {"name": "resnet18"}, "decoder": {"architecture": "pspnet"}})
    with pytest.raises(ValueError) as info:
        model(torch.randn(1, 3, 70, 64))
    assert "multiples of 8" in str(info.value) and "got 70x64" in str(info.value)
    assert "64x64 or 72x64" in str(info.value)
    assert model.eval()(torch.randn(1, 3, 72, 64)).shape == (1, 1, 72, 64)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_example_spec_builds_and_runs(path: Path) -> None:
    model = specseg.build(path).eval()
    spec = model.spec
    # 128 fits every architecture's minimum (PAN needs an 8x8 deepest map at stride 16).
    size = 128
    x = torch.randn(1, spec.encoder.in_channels, size, size)
    with torch.no_grad():
        out = model(x)
    if spec.specseg == 2:
        # Version 2: one output per head, in spec order.
        assert list(out) == list(spec.heads)
        for name, head in spec.heads.items():
            expected = (1, head.classes, size, size) if head.type == "segmentation" else (1, head.classes)
            assert out[name].shape == expected, name
        return
    mask = out[0] if isinstance(out, tuple) else out
    assert mask.shape == (1, spec.head.classes, size, size)
    if spec.aux_params is not None:
        assert out[1].shape == (1, spec.aux_params.classes)
