"""The encoder catalogue: SMP's names on timm and specseg's own modules, the encoder contract, SMP layouts.

Each SMP encoder family is checked through its smallest member; members of
more than ~20M parameters are marked heavy and run only with
``SPECSEG_TEST_HEAVY=1``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings

import pytest
import torch

import specseg
from specseg import EncoderMixin
from specseg.encoders.catalog import compute_metadata, encoder_rows, smp_comparison_rows
from specseg.encoders.features import EncoderContractError, Feature, FeatureInfo
from specseg.encoders.registry import registry, unregister_encoder
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


# --- the declared feature record -------------------------------------------------------------------


class StridedEncoder(torch.nn.Module, EncoderMixin):
    """Five 3x3 stages with the given strides; declares the default record (SMP-style attributes only)."""

    def __init__(self, strides: tuple[int, ...] = (2, 2, 2, 2, 2), depth: int = 5) -> None:
        super().__init__()
        self._out_channels = [3, 8, 8, 8, 8, 8]
        self._depth = depth
        self._in_channels = 3
        self.stages = torch.nn.ModuleList(torch.nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=s, padding=1) for i, s in enumerate(strides))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        for stage in self.stages[: self._depth]:
            x = stage(x)
            features.append(x)
        return features


@pytest.mark.parametrize(
    ("features", "depth", "problem"),
    [
        ([Feature(3, 1, "input"), Feature(8, 2)], 2, "2 features declared for depth 2; expected depth + 1 = 3"),
        ([Feature(3, 1, "input"), Feature(8, 4), Feature(8, 2)], 2, "strides [1, 4, 2] decrease"),
        ([Feature(3, 1, "input"), Feature(0, 2)], 1, "a map needs at least 1"),
        ([Feature(3, 1, "input"), Feature(4, 2, "empty")], 1, "feature 1 is empty but declares 4 channels"),
        ([Feature(3, 2, "input"), Feature(8, 2)], 1, "feature 0 must be at stride 1"),
        ([Feature(3, 1, "input"), Feature(8, 0)], 1, "strides are positive"),
    ],
)
def test_feature_record_is_checked_where_it_is_made(features: list[Feature], depth: int, problem: str) -> None:
    with pytest.raises(EncoderContractError, match=re.escape(problem)):
        FeatureInfo(tuple(features), depth)


def test_seed_attributes_derive_the_record() -> None:
    info = StridedEncoder(depth=4).feature_info
    assert info.channels == [3, 8, 8, 8, 8] and info.strides == [1, 2, 4, 8, 16]
    assert [f.layout for f in info.features] == ["input", "map", "map", "map", "map"]
    assert FeatureInfo.pyramid([3, 0, 32, 64], 3).features[1] == Feature(0, 2, "empty")
    assert FeatureInfo.pyramid([3, 64, 64, 128, 256, 512], 5, output_stride=8).strides == [1, 2, 4, 8, 8, 8]


@pytest.mark.parametrize(
    ("name", "encoder", "channels", "strides", "prefix_tokens"),
    [
        ("resnet18", {"depth": 4, "output_stride": 16}, [3, 64, 64, 128, 256], [1, 2, 4, 8, 16], False),
        ("mit_b0", {}, [3, 0, 32, 64, 160, 256], [1, 2, 4, 8, 16, 32], False),
        ("tu-test_convnext", {"depth": 4}, [3, 0, 24, 32, 48], [1, 2, 4, 8, 16], False),
        ("tu-test_resnet", {"output_stride": 8}, [3, 32, 32, 48, 192, 96], [1, 2, 4, 8, 8, 8], False),
    ],
)
def test_built_encoders_declare_their_features(name: str, encoder: dict, channels: list, strides: list, prefix_tokens: bool) -> None:
    arch = "deeplabv3" if encoder.get("output_stride") else "unet"
    spec = {"specseg": 1, "encoder": {"name": name, **encoder}, "decoder": {"architecture": arch}}
    if arch == "unet":
        spec["decoder"]["channels"] = [16] * encoder.get("depth", 5)
    with torch.device("meta"):
        info = specseg.build(spec).encoder.feature_info
    assert (info.channels, info.strides, info.prefix_tokens) == (channels, strides, prefix_tokens)


def test_vit_encoders_declare_block_maps_at_the_patch_stride() -> None:
    spec = {"specseg": 1, "encoder": {"name": "tu-test_vit"}, "decoder": {"architecture": "dpt", "intermediate_channels": [8, 8, 8, 8], "fusion_channels": 8}}
    with single_threaded():
        model = specseg.build(spec).eval()
        info = model.encoder.feature_info
        assert info.strides == [1, 16, 16, 16, 16] and info.prefix_tokens and info.channels[0] == 3
        with torch.no_grad():
            features = model.encoder(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in features] == [(c, 64 // s, 64 // s) for c, s in zip(info.channels, info.strides)]


def test_check_encoder_catches_a_feature_at_another_stride_than_declared() -> None:
    """Stage 4 keeps the resolution, so the map declared at stride 16 is at stride 8 (8x8, not 4x4, for 64x64)."""

    class HalfStride(StridedEncoder):
        def __init__(self, **kwargs):
            super().__init__(strides=(2, 2, 2, 1, 2))

    problems = check_encoder(HalfStride, check_depths=[5], check_in_channels=(), check_output_strides=(), check_trace=False)
    assert any("feature 4 has shape (2, 8, 8, 8), expected (2, 8, 4, 4) (out_channels[4] channels at the declared stride 16)" in p for p in problems), problems
    assert check_encoder(StridedEncoder, check_depths=[5], check_in_channels=(), check_output_strides=(), check_trace=False) == []


def test_an_inconsistent_declaration_is_refused_when_built() -> None:
    class Short(StridedEncoder):
        def __init__(self, **kwargs):
            super().__init__()
            self._out_channels = [3, 8, 8]  # three entries for depth 5

    specseg.register_encoder("short_declaration", Short)
    try:
        with pytest.raises(specseg.SpecError) as info:
            specseg.build(_unet("short_declaration"))
    finally:
        unregister_encoder("short_declaration")
    (issue,) = info.value.issues
    assert issue.path == ("encoder", "name") and "breaks the encoder contract" in issue.message
    assert "3 features declared for depth 5" in issue.message


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


_STATIC_DEFAULT = ["resnet18", "mit_b0", "dpn68", "efficientnet-b0", "timm-regnetx_002", "mobilenet_v2"]
#: Every other SMP name with SPECSEG_SMP_ALL=1: the README's counts and its "same" column come from this table.
_STATIC_ALL = [
    pytest.param(row.name, marks=pytest.mark.skipif(os.environ.get("SPECSEG_SMP_ALL") != "1", reason="set SPECSEG_SMP_ALL=1"))
    for row in SMP_NAMES
    if row.name not in _STATIC_DEFAULT
]


@pytest.mark.parametrize("name", _STATIC_DEFAULT + _STATIC_ALL)
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


# --- encoder.params: what validate knows (torch-free), what the build checks -----------------

from specseg.encoders.encoder_params import BUILTIN_PARAMS, TIMM_RESERVED  # noqa: E402


def _params_issues(folder, name: str, params: dict) -> list[tuple[str, str, int]]:
    """``(spec path, message, line)`` of each issue ``load_spec`` reports for a spec file with ``params``."""
    import yaml

    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump({"specseg": 1, "encoder": {"name": name, "params": params}, "decoder": {"architecture": "unet"}}, sort_keys=False))
    with pytest.raises(specseg.SpecError) as info:
        specseg.load_spec(spec)
    from specseg.errors import format_path

    return [(format_path(i.path), i.message, i.location.line if i.location else 0) for i in info.value.issues]


@pytest.mark.parametrize(
    "name, params, path, fragment",
    [
        # SMP's own networks: fixed by the name (SMP ignores extra arguments for them).
        ("resnet18", {"foo": 1}, "encoder.params.foo", "encoder 'resnet18' takes no params"),
        ("vgg11", {"batch_norm": True}, "encoder.params.batch_norm", "takes no params"),
        ("mobileone_s0", {"branches": 0}, "encoder.params.branches", "takes no params"),
        ("resnext50_32x4d", {"groups": 2}, "encoder.params.groups", "takes no params"),
        # Declared params: unknown keys name the valid ones (with a suggestion), values are range-checked.
        ("mit_b0", {"foo": 1}, "encoder.params.foo", "its params are: drop_rate, drop_path_rate"),
        ("mit_b0", {"drop_path_rat": 0.1}, "encoder.params.drop_path_rat", "did you mean 'drop_path_rate'? Its params are"),
        ("mit_b0", {"drop_rate": 1.5}, "encoder.params.drop_rate", "[0, 1), got 1.5"),
        ("timm-efficientnet-b0", {"drop_path_rate": "x"}, "encoder.params.drop_path_rate", "got 'x'"),
        # timm-built encoders: the keywords specseg sets itself.
        ("tu-resnet18", {"in_chans": 1}, "encoder.params.in_chans", "set by encoder.in_channels"),
        ("tu-resnet18", {"output_stride": 16}, "encoder.params.output_stride", "set by encoder.output_stride"),
        ("tu-resnet18", {"dilation": "native"}, "encoder.params.dilation", "may not set 'dilation'"),
        ("tu-resnet18", {"depth": 3}, "encoder.params.depth", "set by encoder.depth"),
        ("timm-regnetx_002", {"pretrained": True}, "encoder.params.pretrained", "set by encoder.weights"),
    ],
)
def test_validate_refuses_params_the_encoder_does_not_take(name: str, params: dict, path: str, fragment: str, tmp_path) -> None:
    issues = _params_issues(tmp_path, name, params)
    assert [(p, line) for p, _, line in issues] == [(path, 5)], issues
    assert fragment in issues[0][1], issues[0][1]


def test_declared_params_are_taken_and_change_only_training_behaviour() -> None:
    """A declared param reaches the constructor; the network (parameter count) is still the named one."""
    plain = specseg.build(_unet("mit_b0"))
    tuned = specseg.build({**_unet("mit_b0"), "encoder": {"name": "mit_b0", "params": {"drop_path_rate": 0.3, "drop_rate": 0.1}}})
    assert sum(p.numel() for p in tuned.parameters()) == sum(p.numel() for p in plain.parameters())
    rates = sorted({round(m.p, 6) for m in tuned.encoder.modules() if type(m).__name__ == "StochasticDepth"})
    assert rates and rates[-1] == pytest.approx(0.3)
    # A ViT for DPT takes `depth` (its block count) through params: reserved for pyramid encoders only.
    specseg.load_spec({"specseg": 1, "encoder": {"name": "tu-vit_tiny_patch16_224", "params": {"depth": 4}}, "decoder": {"architecture": "dpt"}})


def test_declared_params_match_the_constructors() -> None:
    """The torch-free table names real constructor keywords that no catalogue name fixes (no drift)."""
    import inspect

    for encoder_class, params in BUILTIN_PARAMS.items():
        entries = [e for e in registry.entries() if e.is_builtin and e.encoder == encoder_class]
        assert entries, f"{encoder_class} builds no catalogue name"
        signature = inspect.signature(entries[0].resolve())
        for key in params:
            assert key in signature.parameters, (encoder_class, key)
            assert all(key not in e.params for e in entries), (encoder_class, key)
    from specseg.encoders.timm_universal import TimmUniversalEncoder

    own = set(inspect.signature(TimmUniversalEncoder).parameters) - {"self", "kwargs"}
    assert own - {"depth"} <= set(TIMM_RESERVED), own - set(TIMM_RESERVED)


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("tu-resnet18", {"foo": 1}, "unexpected keyword argument 'foo'"),
        ("tu-resnet18", {"block": "x"}, "AttributeError"),  # timm fails inside the model's own code
        ("tu-convnext_atto", {"dims": [8, 8, 8]}, "IndexError"),
        ("tu-resnet18", {"layers": [0, 0, 0, 0]}, "takes no input size"),
        ("timm-regnetx_002", {"foo": 1}, "unexpected keyword argument 'foo'"),
    ],
)
def test_timm_params_validate_cannot_judge_are_refused_by_the_build_located(name: str, params: dict, fragment: str, tmp_path) -> None:
    """What a timm model makes of encoder.params is known only once built: exit 1 at encoder.params, never 3."""
    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_unet(name, params=params), sort_keys=False))
    specseg.load_spec(spec)  # validate accepts: timm's keywords are not known without torch
    for dry in (True, False):
        from specseg.cli.main import main

        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["build", *(["--dry-run"] if dry else []), str(spec)])
        (line,) = err.getvalue().strip().splitlines()
        assert rc == 1 and line.startswith(f"{spec}:5:5: encoder.params: ") and fragment in line, (rc, line)


def test_params_validation_stays_torch_free() -> None:
    code = (
        "import sys, json, specseg\n"
        "problems = []\n"
        "for name in ('resnet18', 'mit_b0', 'tu-resnet18'):\n"
        "    try:\n"
        "        specseg.load_spec({'specseg': 1, 'encoder': {'name': name, 'params': {'in_chans': 1}}, 'decoder': {'architecture': 'unet'}})\n"
        "    except specseg.SpecError as exc:\n"
        "        problems.append(exc.issues[0].path[-1])\n"
        "print(json.dumps([problems, 'torch' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [["in_chans"] * 3, False]
