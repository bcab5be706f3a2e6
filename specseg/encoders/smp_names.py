"""SMP 0.6's encoder names, and how specseg builds each (torch-free data).

Most SMP encoders are networks timm also has; specseg builds those names as
``tu-`` encoders of the matching timm model, so one code path (timm's
``features_only``) serves them all. Only where timm has no equivalent, or
where SMP's state-dict layout must be kept so SMP checkpoints load, does
specseg have its own module: the torchvision-layout ResNet/ResNeXt
(:mod:`specseg.encoders.resnet`) and SegFormer's Mix Transformer
(:mod:`specseg.encoders.mix_transformer`). Where SMP taps other modules
than timm's ``features_only`` (or configures timm's classes itself) but the
parameter names agree, specseg builds timm's full network under SMP's keys
and taps SMP's modules (:mod:`specseg.encoders.timm_body`: DenseNet,
Xception, Inception, DPN, SE-Net, SK-ResNe(X)t).

Every row records whether the network and state dict are SMP's (``note``
empty) or how they differ; :func:`specseg.encoders.catalog.smp_comparison_rows`
turns this into the README's encoder table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "input_space": "RGB", "input_range": [0, 1]}
#: Inception-style normalisation to [-1, 1] (Inception, Xception, AdvProp, EfficientNet-Lite, TF MobileNetV3).
INCEPTION = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_space": "RGB", "input_range": [0, 1]}
#: DPN's MXNet statistics.
DPN = {
    "mean": [124 / 255, 117 / 255, 104 / 255],
    "std": [1 / (0.0167 * 255)] * 3,
    "input_space": "RGB",
    "input_range": [0, 1],
}


@dataclass(frozen=True)
class SmpName:
    """One SMP encoder name: what specseg builds for it and how that compares with SMP.

    ``timm_model`` is the timm model built (as a ``tu-`` encoder) or None for
    a dedicated specseg module (``encoder``/``params``). ``weights`` maps each
    SMP weights name to its source: ``{"timm": "<model>.<tag>"}`` or
    ``{"repo_id": ..., "revision": ...}`` (a Hugging Face repository holding
    ``model.safetensors`` in this encoder's own layout), plus normalisation.
    ``note`` is empty when specseg's network and state dict are SMP's.
    """

    name: str
    family: str
    timm_model: str | None = None
    weights: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    note: str = ""
    encoder: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    timm_options: Mapping[str, Any] = field(default_factory=dict)
    #: A timm model with the same state-dict layout: any of its pretrained tags can be used as weights.
    timm_weights_model: str | None = None


def _tags(stats: Mapping[str, Any], by_weights: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    return {w: {"timm": tag, **stats} for w, tag in by_weights.items()}


def _hub(name: str, stats: Mapping[str, Any] = IMAGENET, **revisions: str) -> dict[str, dict[str, Any]]:
    return {w: {"repo_id": f"smp-hub/{name}.{w}", "revision": rev, **stats} for w, rev in revisions.items()}


def _rows() -> list[SmpName]:
    rows: list[SmpName] = []

    # --- ResNet / ResNeXt: specseg's own module, torchvision's (and SMP's) layout.
    resnets: dict[str, tuple[str, list[int], int, int, dict[str, str]]] = {
        "resnet18": ("basic", [2, 2, 2, 2], 1, 64, {"imagenet": "3f2325ff978283d47aa6a1d6878ca20565622683", "ssl": "d600d5116aac2e6e595f99f40612074c723c00b2", "swsl": "0e3a35d4d8e344088c14a96eee502a88ac70eae1"}),
        "resnet34": ("basic", [3, 4, 6, 3], 1, 64, {"imagenet": "7a57b34f723329ff020b3f8bc41771163c519d0c"}),
        "resnet50": ("bottleneck", [3, 4, 6, 3], 1, 64, {"imagenet": "00cb74e366966d59cd9a35af57e618af9f88efe9", "ssl": "d07daf5b4377f3700c6ac61906b0aafbc4eca46b", "swsl": "b9520cce124f91c6fe7eee45721a2c7954f0d8c0"}),
        "resnet101": ("bottleneck", [3, 4, 23, 3], 1, 64, {"imagenet": "cd7c15e8c51da86ae6a084515fdb962d0c94e7d1"}),
        "resnet152": ("bottleneck", [3, 8, 36, 3], 1, 64, {"imagenet": "951dd835e9d086628e447b484584c8983f9e1dd0"}),
        "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], 32, 4, {"imagenet": "329793c85d62fd340ae42ae39fb905a63df872e7", "ssl": "9b67cff77d060c7044493a58c24d1007c1eb06c3", "swsl": "52e6e49da61b8e26ca691e1aef2cbb952884057d"}),
        "resnext101_32x4d": ("bottleneck", [3, 4, 23, 3], 32, 4, {"ssl": "b39796c8459084d13523b7016c3ef13a2e9e472b", "swsl": "3f8355b4892a31f001a832b49b2b01484d48516a"}),
        "resnext101_32x8d": ("bottleneck", [3, 4, 23, 3], 32, 8, {"imagenet": "221af6198d03a4ee88992f78a1ee81b46a52d339", "instagram": "44cd927aa6e64673ffe9d31230bad44abc18b823", "ssl": "723a95ddeed335c9488c37c6cbef13d779ac8f97", "swsl": "58cf0bb65f91365470398080d9588b187d1777c4"}),
        "resnext101_32x16d": ("bottleneck", [3, 4, 23, 3], 32, 16, {"instagram": "64e8e320eeae6501185b0627b2429a68e52d050c", "ssl": "1283fe03fbb6aa2599b2df24095255acb93c3d5c", "swsl": "30ba61bbd4d6af0d955c513dbb4f557b84eb094f"}),
        "resnext101_32x32d": ("bottleneck", [3, 4, 23, 3], 32, 32, {"instagram": "c9405de121fdaa275a89de470fb19409e3eeaa86"}),
        "resnext101_32x48d": ("bottleneck", [3, 4, 23, 3], 32, 48, {"instagram": "53e61a962b824ad7027409821f9ac3e3336dd024"}),
    }
    for name, (block, layers, groups, width, revisions) in resnets.items():
        params: dict[str, Any] = {"block": block, "layers": layers}
        if groups != 1:
            params.update(groups=groups, width_per_group=width)
        rows.append(
            SmpName(
                name,
                "ResNeXt" if groups != 1 else "ResNet",
                encoder="specseg.encoders.resnet:ResNetEncoder",
                params=params,
                weights=_hub(name, **revisions),
                timm_weights_model=name if name != "resnext101_32x48d" else None,
            )
        )

    # --- Mix Transformer (SegFormer): specseg's own module, SMP's layout.
    mit = {
        "mit_b0": ([32, 64, 160, 256], [2, 2, 2, 2], "9ce53d104d92d75aabb00aae70677aaab67e7c84"),
        "mit_b1": ([64, 128, 320, 512], [2, 2, 2, 2], "a04bf4f13a549bce677cf79b04852e7510782817"),
        "mit_b2": ([64, 128, 320, 512], [3, 4, 6, 3], "868ab6f13871dcf8c3d9f90ee4519403475b65ef"),
        "mit_b3": ([64, 128, 320, 512], [3, 4, 18, 3], "32558d12a65f1daa0ebcf4f4053c4285e2c1cbda"),
        "mit_b4": ([64, 128, 320, 512], [3, 8, 27, 3], "3a3454e900a4b4f11dd60eeb59101a9a1a36b017"),
        "mit_b5": ([64, 128, 320, 512], [3, 6, 40, 3], "ced04d96c586b6297fd59a7a1e244fc78fdb6531"),
    }
    for name, (dims, depths, revision) in mit.items():
        rows.append(
            SmpName(
                name,
                "Mix Transformer",
                encoder="specseg.encoders.mix_transformer:MixTransformerEncoder",
                params={"embed_dims": dims, "depths": depths},
                weights=_hub(name, imagenet=revision),
                note="output_stride 16/8 dilates the patch embeddings only (SMP also dilates the attention's spatial-reduction convolutions)",
            )
        )

    layout = "state-dict keys are timm's (under `model.`), not SMP's"

    # --- DPN: timm's network under Cadene's (SMP's) keys, SMP's feature taps.
    dpns = {
        "dpn68": ("imagenet", "c209aefdeae6bc93937556629e974b44d4e58535"),
        "dpn68b": ("imagenet+5k", "6c6615e77688e390ae0eaa81e26821fbd83cee4b"),
        "dpn92": ("imagenet+5k", "d231f51ce4ad2c84ed5fcaf4ef0cfece6814a526"),
        "dpn98": ("imagenet", "b2836c86216c1ddce980d832f7deaa4ca22babd3"),
        "dpn107": ("imagenet+5k", "dab4cd6b8b79de3db970f2dbff85359a8847db05"),
        "dpn131": ("imagenet", "04bbb9f415ca2bb59f3d8227857967b74698515e"),
    }
    for name, (w, revision) in dpns.items():
        hub = {w: {"repo_id": f"smp-hub/{name}.{w.replace('+', '-')}", "revision": revision, **DPN}}
        rows.append(SmpName(name, "DPN", encoder="specseg.encoders.dpn:DPNEncoder", params={"model": name}, weights=hub, timm_weights_model=name))

    # --- VGG
    for depth in (11, 13, 16, 19):
        for bn in ("", "_bn"):
            name = f"vgg{depth}{bn}"
            rows.append(SmpName(name, "VGG", name, {"imagenet": {"timm": f"{name}.tv_in1k", **IMAGENET}}, note=f"timm `{name}`, same network and torchvision weights; {layout}"))

    # --- SE-Net: Cadene's networks (in timm as legacy_*), under Cadene's (SMP's) keys.
    senets = {
        "senet154": ("legacy_senet154", "249f45efc9881ba560a0c480128edbc34ab87e40"),
        "se_resnet50": ("legacy_seresnet50", "e6b4bc2dc85226c3d3474544410724a485455459"),
        "se_resnet101": ("legacy_seresnet101", "71fe95cc0a27f444cf83671f354de02dc741b18b"),
        "se_resnet152": ("legacy_seresnet152", "e79fc3d9d76f197bd76a2593c2054edf1083fe32"),
        "se_resnext50_32x4d": ("legacy_seresnext50_32x4d", "73246406d879a2b0e3fdfe6fddd56347d38f38ae"),
        "se_resnext101_32x4d": ("legacy_seresnext101_32x4d", "18808a4276f46421d358a9de554e0b93c2795df4"),
    }
    for name, (model, revision) in senets.items():
        rows.append(
            SmpName(
                name, "SE-Net", encoder="specseg.encoders.senet:SENetEncoder", params={"model": model},
                weights=_hub(name, imagenet=revision), timm_weights_model=model,
            )
        )

    # --- DenseNet: timm's network under torchvision's (SMP's) keys, SMP's feature taps.
    densenets = {
        "densenet121": "a17c96896a265b61338f66f61d3887b24f61995a",
        "densenet169": "8facfba9fc72f7750879dac9ac6ceb3ab990de8d",
        "densenet201": "ed5deb355d71659391d46fae5e7587460fbb5f84",
        "densenet161": "9afe0fec51ab2a627141769d97d6f83756d78446",
    }
    for name, revision in densenets.items():
        rows.append(
            SmpName(
                name, "DenseNet", encoder="specseg.encoders.densenet:DenseNetEncoder", params={"model": name},
                weights=_hub(name, imagenet=revision), timm_weights_model=name,
            )
        )

    # --- Inception: timm's networks under Cadene's (SMP's) keys, SMP's padding and feature taps.
    inception_hub = {
        "inceptionresnetv2": ("specseg.encoders.inception:InceptionResNetV2Encoder", "inception_resnet_v2", "120c5afdbb80a1c989db0a7423ebb7a9db9b1e6c", "3ecf3491658dc0f6a76d69c9d1cb36511b1ee56c"),
        "inceptionv4": ("specseg.encoders.inception:InceptionV4Encoder", "inception_v4", "918fb54f07811d82a4ecde3a51156041d0facba9", "8c2a48e20d2709ee64f8421c61be309f05bfa536"),
    }
    for name, (encoder, model, imagenet, background) in inception_hub.items():
        weights = {
            "imagenet": {"repo_id": f"smp-hub/{name}.imagenet", "revision": imagenet, **INCEPTION},
            "imagenet+background": {"repo_id": f"smp-hub/{name}.imagenet-background", "revision": background, **INCEPTION},
        }
        rows.append(SmpName(name, "Inception", encoder=encoder, params={"model": model}, weights=weights, timm_weights_model=model))

    # --- EfficientNet (the original TF networks, 'same' padding: timm's tf_efficientnet_b*)
    for b in range(8):
        name, model = f"efficientnet-b{b}", f"tf_efficientnet_b{b}"
        weights = {"imagenet": {"timm": f"{model}.aa_in1k", **IMAGENET}, "advprop": {"timm": f"{model}.ap_in1k", **INCEPTION}}
        rows.append(
            SmpName(
                name, "EfficientNet", model, weights,
                note=f"timm `{model}`, the same TF network and weights; {layout}; the stride-2 feature is the first block's output (SMP: the stem's), so out_channels[1] differs",
            )
        )

    rows.append(
        SmpName(
            "mobilenet_v2", "MobileNet", "mobilenetv2_100", {"imagenet": {"timm": "mobilenetv2_100.ra_in1k", **IMAGENET}},
            note=f"timm `mobilenetv2_100`, the same architecture; ImageNet weights are timm's (SMP: torchvision's); {layout}; the stride-32 feature is the last block (320 channels; SMP: the 1280-channel head convolution)",
        )
    )
    rows.append(
        SmpName(
            "xception", "Xception", encoder="specseg.encoders.xception:XceptionEncoder", params={"model": "legacy_xception"},
            weights=_hub("xception", INCEPTION, imagenet="01cfaf27c11353b1f0c578e7e26d2c000ea91049"), timm_weights_model="legacy_xception",
        )
    )

    # --- timm-efficientnet: SMP's timm EfficientNet (symmetric padding) carrying TF weights
    for b in list(range(9)) + ["l2"]:
        name, model, tf = f"timm-efficientnet-{'b' if b != 'l2' else ''}{b}", f"efficientnet_{'b' if b != 'l2' else ''}{b}", f"tf_efficientnet_{'b' if b != 'l2' else ''}{b}"
        if b == "l2":
            weights = _tags(IMAGENET, {"noisy-student": f"{tf}.ns_jft_in1k", "noisy-student-475": f"{tf}.ns_jft_in1k_475"})
        elif b == 8:
            weights = {"imagenet": {"timm": f"{tf}.ra_in1k", **IMAGENET}, "advprop": {"timm": f"{tf}.ap_in1k", **INCEPTION}}
        else:
            weights = {
                "imagenet": {"timm": f"{tf}.aa_in1k", **IMAGENET},
                "advprop": {"timm": f"{tf}.ap_in1k", **INCEPTION},
                "noisy-student": {"timm": f"{tf}.ns_jft_in1k", **IMAGENET},
            }
        rows.append(
            SmpName(
                name, "EfficientNet (timm)", model, weights,
                note=f"timm `{model}` (the class SMP subclasses) with `{tf}` weights, as in SMP; {layout}; the stride-2 feature is the first block's output (SMP: the stem's); the unused head convolution is not built",
            )
        )
    for i in range(5):
        name, model = f"timm-tf_efficientnet_lite{i}", f"efficientnet_lite{i}"
        rows.append(
            SmpName(
                name, "EfficientNet-Lite", model, {"imagenet": {"timm": f"tf_efficientnet_lite{i}.in1k", **INCEPTION}},
                note=f"timm `{model}` (the network SMP builds) with `tf_efficientnet_lite{i}` weights; {layout}; the stride-2 feature is the first block's output (SMP: the stem's); the unused head convolution is not built",
            )
        )

    # --- SK-ResNe(X)t: timm's ResNet class with SMP's own selective-kernel settings.
    sk_basic = {"block": "basic", "sk_kwargs": {"rd_ratio": 0.125, "split_input": True}}
    sknets = {
        "timm-skresnet18": ({**sk_basic, "layers": [2, 2, 2, 2]}, "6c97652bb744d89177b68274d2fda3923a7d1f95"),
        "timm-skresnet34": ({**sk_basic, "layers": [3, 4, 6, 3]}, "2367796924a8182cc835ef6b5dc303917f923f99"),
        "timm-skresnext50_32x4d": ({"block": "bottleneck", "layers": [3, 4, 6, 3], "cardinality": 32, "base_width": 4}, "50207e407cc4c6ea9e6872963db6844ca7b7b9de"),
    }
    for name, (params, revision) in sknets.items():
        rows.append(SmpName(name, "SK-ResNe(X)t", encoder="specseg.encoders.skresnet:SKResNetEncoder", params=params, weights=_hub(name, imagenet=revision)))

    for i in range(5):
        name = f"mobileone_s{i}"
        rows.append(
            SmpName(
                name, "MobileOne", name, {"imagenet": {"timm": f"{name}.apple_in1k", **IMAGENET}},
                note=f"timm `{name}`, the same network and Apple weights; state-dict keys are timm's, not SMP's",
            )
        )

    # --- Names SMP 0.6 itself maps onto timm (timm-<x> -> tu-<x>): identical to SMP.
    converted = {
        "ResNeSt": ["resnest14d", "resnest26d", "resnest50d", "resnest101e", "resnest200e", "resnest269e", "resnest50d_4s2x40d", "resnest50d_1s4x24d"],
        "Res2Ne(X)t": ["res2net50_26w_4s", "res2net101_26w_4s", "res2net50_26w_6s", "res2net50_26w_8s", "res2net50_48w_2s", "res2net50_14w_8s", "res2next50"],
        "RegNet": [f"regnet{k}_{n}" for k in "xy" for n in ("002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320")],
        "GERNet": ["gernet_s", "gernet_m", "gernet_l"],
        "MobileNetV3": ["mobilenetv3_large_075", "mobilenetv3_large_100", "mobilenetv3_large_minimal_100", "mobilenetv3_small_075", "mobilenetv3_small_100", "mobilenetv3_small_minimal_100"],
    }
    for family, models in converted.items():
        for model in models:
            timm_name = f"tf_{model}" if family == "MobileNetV3" else model
            stats = INCEPTION if family == "MobileNetV3" else IMAGENET
            rows.append(SmpName(f"timm-{model}", family, timm_name, {"imagenet": {"timm": timm_name, **stats}}))
    return rows


#: Every SMP 0.6 encoder name specseg accepts, in SMP's order.
SMP_NAMES: tuple[SmpName, ...] = tuple(_rows())
