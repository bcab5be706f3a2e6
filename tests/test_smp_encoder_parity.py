"""Encoders built under SMP's names are SMP's networks: parameters, state-dict keys and features for the same weights.

Each case builds SMP's encoder (``encoder_weights=None``) and specseg's at
the same depth and output stride, compares parameter counts and key sets,
copies SMP's state dict into specseg's (strictly) and compares the features
(1e-4). Whole models also go through ``save_pretrained`` + ``import-smp``.
The default run uses the smallest member of each family; set
``SPECSEG_SMP_ALL=1`` for every name.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

import specseg
from specseg.encoders.factory import build_encoder
from specseg.spec.encoder import EncoderSpec
from specseg.testing import single_threaded
from specseg.weights import load_into
from tests import test_smp_parity as parity
from tests import test_smp_weights as smp_weights
from tests.smp_cases import randomise_batchnorm
from tests.hf_cache import HubCache, hub_cache  # noqa: F401 - fixture

smp = pytest.importorskip("segmentation_models_pytorch")

ALL = os.environ.get("SPECSEG_SMP_ALL") == "1"
every = pytest.mark.skipif(not ALL, reason="larger family member: set SPECSEG_SMP_ALL=1")

#: name -> (smallest of its family, output strides SMP can dilate it to, smallest depth SMP accepts)
FAMILIES: dict[str, tuple[list[str], tuple[int, ...], int]] = {
    "vgg": ([f"vgg{n}{bn}" for n in (11, 13, 16, 19) for bn in ("", "_bn")], (), 1),
    "mobilenet_v2": (["mobilenet_v2"], (16, 8), 1),
    "timm-efficientnet": ([f"timm-efficientnet-b{b}" for b in range(9)] + ["timm-efficientnet-l2"], (16, 8), 1),
    "timm-tf_efficientnet_lite": ([f"timm-tf_efficientnet_lite{i}" for i in range(5)], (16,), 1),
    "efficientnet": ([f"efficientnet-b{b}" for b in range(8)], (16, 8), 2),
    "mobileone": ([f"mobileone_s{i}" for i in range(5)], (16, 8), 1),
    "densenet": (["densenet121", "densenet169", "densenet201", "densenet161"], (), 1),
    "xception": (["xception"], (), 1),
    "inception": (["inceptionv4", "inceptionresnetv2"], (), 1),
    "dpn": (["dpn68", "dpn68b", "dpn92", "dpn98", "dpn131", "dpn107"], (16, 8), 1),
    "senet": (["se_resnet50", "se_resnext50_32x4d", "se_resnet101", "se_resnext101_32x4d", "se_resnet152", "senet154"], (16, 8), 1),
    "skresnet": (["timm-skresnet18", "timm-skresnet34", "timm-skresnext50_32x4d"], (16, 8), 1),
}


def _cases() -> list:
    cases = []
    for names, strides, min_depth in FAMILIES.values():
        for i, name in enumerate(names):
            marks = [every] if i else []
            settings = [(5, 32), (max(min_depth, 3), 32), (min_depth, 32)] + [(5, s) for s in strides]
            for depth, stride in dict.fromkeys(settings):
                cases.append(pytest.param(name, depth, stride, marks=marks, id=f"{name}-depth{depth}-os{stride}"))
    return cases


def smp_encoder(name: str, **kwargs) -> torch.nn.Module:
    """SMP's encoder with random weights (its deprecation warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smp.encoders.get_encoder(name, weights=None, **kwargs)


@pytest.mark.parametrize(("name", "depth", "output_stride"), _cases())
def test_encoder_is_smps(name: str, depth: int, output_stride: int) -> None:
    torch.manual_seed(0)
    reference = smp_encoder(name, depth=depth, output_stride=output_stride).eval()
    randomise_batchnorm(reference)
    ours = build_encoder(EncoderSpec(name=name, depth=depth, output_stride=output_stride), load_weights=False).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert list(ours.out_channels) == list(reference.out_channels)
    load_into(ours, reference.state_dict(), f"SMP's {name} encoder")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), single_threaded():
        expected, got = reference(x), ours(x)
    assert len(got) == len(expected) == depth + 1
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


#: Whole models through save_pretrained + import-smp: (SMP class, kwargs, input size), one per family by default.
MODELS = [
    ("Unet", {"encoder_name": "vgg11", "encoder_depth": 4, "decoder_channels": (64, 32, 16, 8), "classes": 2}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "mobilenet_v2", "encoder_output_stride": 8, "in_channels": 1}, (64, 64)),
    ("UnetPlusPlus", {"encoder_name": "timm-efficientnet-b0", "encoder_depth": 4, "decoder_channels": (64, 32, 16, 8), "in_channels": 4}, (64, 64)),
    ("FPN", {"encoder_name": "timm-tf_efficientnet_lite0", "classes": 3}, (64, 64)),
    ("UnetPlusPlus", {"encoder_name": "efficientnet-b0", "classes": 2}, (64, 64)),
    ("DeepLabV3", {"encoder_name": "efficientnet-b0", "encoder_output_stride": 16}, (64, 64)),
    ("Linknet", {"encoder_name": "mobileone_s0", "in_channels": 2, "classes": 2}, (64, 64)),
    ("Unet", {"encoder_name": "densenet121", "encoder_depth": 4, "decoder_channels": (64, 32, 16, 8), "classes": 2}, (64, 64)),
    ("FPN", {"encoder_name": "xception", "decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32}, (64, 64)),
    ("Unet", {"encoder_name": "inceptionv4", "encoder_depth": 3, "decoder_channels": (32, 16, 8)}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "dpn68", "encoder_output_stride": 16, "classes": 3}, (64, 64)),
    ("PSPNet", {"encoder_name": "se_resnet50", "encoder_depth": 3, "in_channels": 4}, (64, 64)),
    ("DeepLabV3", {"encoder_name": "timm-skresnet18", "encoder_output_stride": 8, "in_channels": 1}, (64, 64)),
    pytest.param(("Linknet", {"encoder_name": "inceptionresnetv2"}, (64, 64)), marks=every),
    pytest.param(("Unet", {"encoder_name": "densenet161", "encoder_depth": 5}, (64, 64)), marks=every),
    pytest.param(("FPN", {"encoder_name": "senet154"}, (64, 64)), marks=every),
    pytest.param(("DeepLabV3Plus", {"encoder_name": "dpn92", "encoder_output_stride": 8}, (64, 64)), marks=every),
    pytest.param(("UnetPlusPlus", {"encoder_name": "timm-skresnext50_32x4d", "encoder_depth": 4, "decoder_channels": (64, 32, 16, 8)}, (64, 64)), marks=every),
    pytest.param(("MAnet", {"encoder_name": "se_resnext50_32x4d", "classes": 2}, (64, 64)), marks=every),
]


@pytest.mark.parametrize("case", MODELS, ids=parity._case_id)
def test_smp_model_imports_with_equal_outputs(case: tuple, tmp_path: Path) -> None:
    parity.test_same_network_as_smp(case, tmp_path)


def test_vgg_refuses_dilation_with_a_located_error() -> None:
    with pytest.raises(specseg.SpecError) as info:
        specseg.build("specseg: 1\nencoder:\n  name: vgg11\n  output_stride: 16\ndecoder: {architecture: deeplabv3}\n")
    (issue,) = info.value.issues
    assert issue.path == ("encoder", "output_stride") and issue.location.line == 4 and "max-pooling" in issue.message


#: ``weights: <name>`` fetches SMP's file for these names and gives SMP's outputs (a local offline cache).
WEIGHTS = [
    ("vgg11", "imagenet", 3),
    ("mobilenet_v2", "imagenet", 1),
    ("timm-efficientnet-b0", "noisy-student", 3),
    ("timm-tf_efficientnet_lite0", "imagenet", 3),
    ("mobileone_s0", "imagenet", 4),
    ("densenet121", "imagenet", 3),
    pytest.param("xception", "imagenet", 1, marks=every),
    pytest.param("inceptionv4", "imagenet+background", 3, marks=every),
    ("dpn68b", "imagenet+5k", 3),
    pytest.param("se_resnet50", "imagenet", 4, marks=every),
    ("timm-skresnet18", "imagenet", 3),
    ("efficientnet-b0", "advprop", 3),
]


@pytest.mark.parametrize("name,weights,in_channels", WEIGHTS, ids=lambda v: str(v))
def test_smp_pretrained_weights_load_as_in_smp(
    name: str, weights: str, in_channels: int, hub_cache: HubCache, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    smp_weights.test_pretrained_weights_as_smp_loads_them(name, weights, in_channels, hub_cache, monkeypatch)


#: Names whose encoders are SMP's networks under SMP's keys (the README's encoder table says "same").
SAME_AS_SMP = [name for names, _, _ in FAMILIES.values() for name in names]


def test_readme_table_claims_smps_network_and_layout() -> None:
    from specseg.encoders.catalog import smp_comparison_rows

    rows = {r["name"]: r for r in smp_comparison_rows()}
    for name in SAME_AS_SMP:
        assert rows[name]["same_as_smp"] and rows[name]["same_state_dict"] and rows[name]["note"] == "", name


@pytest.mark.parametrize(("name", "classifier"), [("densenet121", "classifier"), ("dpn68", "last_linear")])
def test_smp_encoder_file_loads_as_weights(name: str, classifier: str, tmp_path: Path) -> None:
    """A state dict in SMP's layout (as SMP's Hub files hold it, classifier included) loads as ``encoder.weights``."""
    from safetensors.torch import save_file

    reference = smp_encoder(name).eval()
    randomise_batchnorm(reference)
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    width = [v for k, v in state.items() if v.ndim == 1][-1].shape[0]
    state[f"{classifier}.weight"] = torch.zeros(10, width, *((1, 1) if classifier == "last_linear" else ()))
    state[f"{classifier}.bias"] = torch.zeros(10)
    save_file(state, str(tmp_path / "encoder.safetensors"))
    spec = {"specseg": 1, "encoder": {"name": name, "weights": {"path": str(tmp_path / "encoder.safetensors")}}, "decoder": {"architecture": "fpn"}}
    ours = specseg.build(spec).encoder.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), single_threaded():
        for a, b in zip(ours(x), reference(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["densenet121", "xception", "inceptionv4", "inceptionresnetv2"])
def test_pooling_networks_refuse_dilation_with_the_reason(name: str) -> None:
    """SMP cannot dilate these (they downsample by pooling): specseg says so at the spec's line, never builds another network."""
    spec = "specseg: 1\nencoder:\n  name: " + name + "\n  output_stride: 8\ndecoder: {architecture: deeplabv3}\n"
    with pytest.raises(specseg.SpecError) as info, torch.device("meta"):
        specseg.build(spec)
    (issue,) = info.value.issues
    assert issue.path == ("encoder", "output_stride") and issue.location.line == 4
    assert "pooling" in issue.message and "cannot be dilated" in issue.message
