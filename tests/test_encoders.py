"""The encoder catalogue: SMP's names on timm and specseg's own modules, the encoder contract, SMP layouts.

Each SMP encoder family is checked through its smallest member; members of
more than ~20M parameters are marked heavy and run only with
``SPECSEG_TEST_HEAVY=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings

import pytest
import torch

import specseg
from specseg.encoders.catalog import compute_metadata, encoder_rows, smp_comparison_rows
from specseg.encoders.registry import registry
from specseg.encoders.smp_names import SMP_NAMES
from specseg.testing import check_encoder, single_threaded
from specseg.weights import load_into

heavy = pytest.mark.skipif(os.environ.get("SPECSEG_TEST_HEAVY") != "1", reason="heavy encoder: set SPECSEG_TEST_HEAVY=1")


def _unet(name: str, **encoder) -> dict:
    return {"specseg": 1, "encoder": {"name": name, **encoder}, "decoder": {"architecture": "unet"}, "head": {"classes": 2}}


# --- the contract, per family ------------------------------------------------------------

FAMILIES = [
    # SMP names (smallest member of each family)
    "resnet18",
    "resnext50_32x4d",
    "mit_b0",
    "dpn68",
    "vgg11",
    "densenet121",
    "efficientnet-b0",
    "mobilenet_v2",
    "timm-efficientnet-b0",
    "timm-tf_efficientnet_lite0",
    "timm-skresnet18",
    "mobileone_s0",
    "timm-resnest14d",
    "timm-regnetx_002",
    "timm-gernet_s",
    "timm-mobilenetv3_small_075",
    pytest.param("se_resnet50", marks=heavy),
    pytest.param("inceptionv4", marks=heavy),
    pytest.param("inceptionresnetv2", marks=heavy),
    pytest.param("xception", marks=heavy),
    pytest.param("timm-res2net50_26w_4s", marks=heavy),
    # tu- models: CNN (dilatable by timm), stride-4 transformer, NHWC output, VGG layout (not dilatable)
    "tu-test_resnet",
    "tu-test_efficientnet",
    "tu-test_convnext",
    "tu-test_mambaout",
    pytest.param("tu-vgg11_bn", marks=heavy),
]


@pytest.mark.parametrize("name", FAMILIES)
def test_family_keeps_the_contract_and_builds_in_unet(name: str) -> None:
    assert check_encoder(name, check_depths=[3, 4, 5]) == []
    with single_threaded():
        model = specseg.build(_unet(name)).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)


@pytest.mark.parametrize(
    ("name", "dilatable"),
    [("dpn68", True), ("se_resnet50", True), ("vgg11", False), ("densenet121", False), ("xception", False), ("tu-test_resnet", True)],
)
def test_output_stride_where_the_network_allows_it(name: str, dilatable: bool) -> None:
    spec = "specseg: 1\nencoder:\n  name: " + name + "\n  output_stride: 16\ndecoder: {architecture: deeplabv3}\n"
    if dilatable:
        with torch.device("meta"):
            encoder = specseg.build(spec).encoder
        assert encoder.output_stride == 16
        return
    with pytest.raises(specseg.SpecError) as info:
        with torch.device("meta"):
            specseg.build(spec)
    (issue,) = info.value.issues
    assert issue.path == ("encoder", "output_stride") and issue.location is not None and issue.location.line == 4
    assert "cannot be dilated" in issue.message


def test_every_depth_of_a_tu_cnn() -> None:
    assert check_encoder("tu-test_resnet", check_in_channels=(), check_output_strides=(), check_trace=False) == []


def test_stride4_models_refuse_depth_1_clearly() -> None:
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(_unet("tu-test_convnext", depth=1))
    assert info.value.issues[0].path == ("encoder", "depth")


def test_unknown_timm_model_suggests_names() -> None:
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(_unet("tu-resnet181"))
    assert "did you mean" in info.value.issues[0].message and "tu-resnet18" in info.value.issues[0].message


# --- SMP's state-dict layout, where specseg claims it ---------------------------------------------

IDENTICAL = [
    "resnet18",
    "resnext50_32x4d",
    "mit_b0",
    "timm-regnetx_002",
    "timm-resnest14d",
    "timm-gernet_s",
    "timm-mobilenetv3_small_075",
    "tu-test_convnext",
    pytest.param("timm-res2next50", marks=heavy),
]


@pytest.mark.parametrize("name", IDENTICAL)
def test_smp_encoder_state_dict_loads_strictly(name: str) -> None:
    smp = pytest.importorskip("segmentation_models_pytorch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        reference = smp.encoders.get_encoder(name, weights=None).eval()
    ours = specseg.build(_unet(name)).encoder.eval()
    load_into(ours, reference.state_dict(), f"SMP's {name} encoder")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), single_threaded():
        for a, b in zip(ours(x), reference(x)):
            torch.testing.assert_close(a, b)


def test_identical_claims_cover_the_tested_families() -> None:
    rows = {r["name"]: r for r in smp_comparison_rows()}
    for name in ("resnet18", "resnext50_32x4d", "mit_b0", "timm-regnetx_002", "timm-resnest14d", "timm-gernet_s", "timm-mobilenetv3_small_075"):
        assert rows[name]["same_as_smp"] and rows[name]["same_state_dict"], name
    for name in ("efficientnet-b0", "timm-efficientnet-b0", "timm-tf_efficientnet_lite0", "mobilenet_v2", "mobileone_s0", "vgg11"):
        assert rows[name]["same_as_smp"] and rows[name]["same_state_dict"] and not rows[name]["note"], name


# --- the catalogue -------------------------------------------------------------------------


def test_every_smp_encoder_name_is_registered() -> None:
    smp = pytest.importorskip("segmentation_models_pytorch")
    missing = sorted(set(smp.encoders.get_encoder_names()) - set(registry.names()))
    assert missing == []
    for prefix in ("timm-resnest", "timm-res2net", "timm-regnetx", "timm-regnety", "timm-gernet", "timm-mobilenetv3"):
        assert any(n.startswith(prefix) for n in registry.names()), prefix


def test_smp_names_resolve_to_timm_models_and_weights() -> None:
    import timm

    from specseg.encoders.pretrained import timm_normalisation

    pretrained = set(timm.list_pretrained())
    for row in SMP_NAMES:
        if row.timm_model is not None:
            assert timm.is_model(row.timm_model), row.name
        for weights, settings in row.pretrained_settings.items():
            tag = settings.get("timm")
            if tag is None:
                assert settings["repo_id"].startswith("smp-hub/") and len(settings["revision"]) == 40
                continue
            assert tag in pretrained or timm.models.get_pretrained_cfg(tag) is not None, (row.name, weights, tag)
            expected = timm_normalisation(tag)
            assert settings["mean"] == pytest.approx(expected["mean"], abs=1e-4), (row.name, weights)
            assert settings["std"] == pytest.approx(expected["std"], abs=1e-4), (row.name, weights)


@pytest.mark.parametrize("name", ["resnet18", "mit_b0", "dpn68", "efficientnet-b0", "timm-regnetx_002", "mobilenet_v2"])
def test_static_table_is_current(name: str) -> None:
    pytest.importorskip("segmentation_models_pytorch")
    from specseg.encoders._catalog_static import METADATA

    assert set(METADATA) == set(registry.names(include_plugins=False))
    assert compute_metadata(name) == METADATA[name]


def test_encoder_rows_are_fast_and_filtered() -> None:
    import timm  # noqa: F401 - import time is not the listing's

    start = time.perf_counter()
    rows = encoder_rows()
    assert time.perf_counter() - start < 2.0
    names = {r["name"] for r in rows}
    assert {"resnet34", "mit_b0", "timm-regnetx_002", "tu-resnet50", "tu-convnext_atto"} <= names
    resnet34 = next(r for r in rows if r["name"] == "resnet34")
    assert resnet34["source"] == "builtin" and resnet34["out_channels"] == [3, 64, 64, 128, 256, 512]
    assert resnet34["params"] == 21284672 and resnet34["weights"] == ["imagenet"]
    tu = next(r for r in rows if r["name"] == "tu-resnet50")
    assert tu["source"] == "timm" and tu["params"] is None and "a1_in1k" in tu["weights"]
    only = encoder_rows("resnext*")
    assert only and all(r["name"].startswith("resnext") for r in only)
    convnexts = [r["name"] for r in encoder_rows("tu-convnext_at*")]
    assert "tu-convnext_atto" in convnexts and all(n.startswith("tu-convnext_at") for n in convnexts)


def test_validation_and_listing_names_stay_torch_free() -> None:
    code = (
        "import sys, json, specseg\n"
        "from specseg.encoders.catalog import encoder_rows\n"
        "specseg.load_spec({'specseg': 1, 'encoder': {'name': 'efficientnet-b0', 'weights': 'advprop'}, 'decoder': {'architecture': 'unet'}})\n"
        "rows = encoder_rows('dpn*', include_timm=False)\n"
        "print(json.dumps([len(rows), 'torch' in sys.modules, 'timm' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [6, False, False]


def test_weights_names_from_smp_are_valid_in_specs() -> None:
    spec = specseg.load_spec(_unet("dpn92", weights="imagenet+5k"))
    assert spec.encoder.weights == "imagenet+5k"
    with pytest.raises(specseg.SpecError) as info:
        specseg.load_spec(_unet("dpn92", weights="image net"))
    assert info.value.issues[0].path == ("encoder", "weights")
