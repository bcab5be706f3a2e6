"""SMP 0.6's encoder names, and how specseg builds each (torch-free data).

Most SMP encoders are networks timm also has; specseg builds those names as
``tu-`` encoders of the matching timm model, so one code path (timm's
``features_only``) serves them all. Only where timm has no equivalent, or
where SMP's state-dict layout must be kept so SMP checkpoints load, does
specseg have its own module: the torchvision-layout ResNet/ResNeXt
(:mod:`specseg.encoders.resnet`) and SegFormer's Mix Transformer
(:mod:`specseg.encoders.mix_transformer`).

Every row records whether the network and state dict are SMP's (``note``
empty) or how they differ; :func:`specseg.encoders.catalog.smp_comparison_rows`
turns this into the README's encoder table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from specseg.encoders.smp_hub import DPN, IMAGENET, INCEPTION, hub_settings


@dataclass(frozen=True)
class SmpName:
    """One SMP encoder name: what specseg builds for it and how that compares with SMP.

    ``timm_model`` is the timm model built (as a ``tu-`` encoder) or None for
    a dedicated specseg module (``encoder``/``params``). ``weights`` maps each
    SMP weights name to its source and normalisation; left empty, the name
    takes SMP's own repositories (:func:`specseg.encoders.smp_hub.hub_settings`),
    which is right whenever specseg's module loads SMP's encoder state dict
    (after ``smp_key_map``, an import string of a function converting SMP's
    encoder state dict into specseg's module's keys, where they differ).
    A row whose layout is not SMP's gives ``{"timm": "<model>.<tag>"}`` sources
    instead. ``note`` is empty when specseg's network and state dict are SMP's.
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
    smp_key_map: str | None = None

    @property
    def pretrained_settings(self) -> dict[str, dict[str, Any]]:
        """Weights name -> source and normalisation: ``weights`` if given, else SMP's repositories."""
        if self.weights:
            return {w: dict(v) for w, v in self.weights.items()}
        settings = hub_settings(self.name)
        if self.smp_key_map:
            for value in settings.values():
                value["key_map"] = self.smp_key_map
        return settings


def _tags(stats: Mapping[str, Any], by_weights: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    return {w: {"timm": tag, **stats} for w, tag in by_weights.items()}


def _rows() -> list[SmpName]:
    rows: list[SmpName] = []

    # --- ResNet / ResNeXt: specseg's own module, torchvision's (and SMP's) layout.
    resnets: dict[str, tuple[str, list[int], int, int]] = {
        "resnet18": ("basic", [2, 2, 2, 2], 1, 64),
        "resnet34": ("basic", [3, 4, 6, 3], 1, 64),
        "resnet50": ("bottleneck", [3, 4, 6, 3], 1, 64),
        "resnet101": ("bottleneck", [3, 4, 23, 3], 1, 64),
        "resnet152": ("bottleneck", [3, 8, 36, 3], 1, 64),
        "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], 32, 4),
        "resnext101_32x4d": ("bottleneck", [3, 4, 23, 3], 32, 4),
        "resnext101_32x8d": ("bottleneck", [3, 4, 23, 3], 32, 8),
        "resnext101_32x16d": ("bottleneck", [3, 4, 23, 3], 32, 16),
        "resnext101_32x32d": ("bottleneck", [3, 4, 23, 3], 32, 32),
        "resnext101_32x48d": ("bottleneck", [3, 4, 23, 3], 32, 48),
    }
    for name, (block, layers, groups, width) in resnets.items():
        params: dict[str, Any] = {"block": block, "layers": layers}
        if groups != 1:
            params.update(groups=groups, width_per_group=width)
        rows.append(
            SmpName(
                name,
                "ResNeXt" if groups != 1 else "ResNet",
                encoder="specseg.encoders.resnet:ResNetEncoder",
                params=params,
                timm_weights_model=name if name != "resnext101_32x48d" else None,
            )
        )

    # --- Mix Transformer (SegFormer): specseg's own module, SMP's layout.
    mit = {
        "mit_b0": ([32, 64, 160, 256], [2, 2, 2, 2]),
        "mit_b1": ([64, 128, 320, 512], [2, 2, 2, 2]),
        "mit_b2": ([64, 128, 320, 512], [3, 4, 6, 3]),
        "mit_b3": ([64, 128, 320, 512], [3, 4, 18, 3]),
        "mit_b4": ([64, 128, 320, 512], [3, 8, 27, 3]),
        "mit_b5": ([64, 128, 320, 512], [3, 6, 40, 3]),
    }
    for name, (dims, depths) in mit.items():
        rows.append(
            SmpName(
                name,
                "Mix Transformer",
                encoder="specseg.encoders.mix_transformer:MixTransformerEncoder",
                params={"embed_dims": dims, "depths": depths},
                note="output_stride 16/8 dilates the patch embeddings only (SMP also dilates the attention's spatial-reduction convolutions)",
            )
        )

    layout = "state-dict keys are timm's (under `model.`), not SMP's"

    # --- DPN
    for name, w in {"dpn68": "imagenet", "dpn68b": "imagenet+5k", "dpn92": "imagenet+5k", "dpn98": "imagenet", "dpn107": "imagenet+5k", "dpn131": "imagenet"}.items():
        rows.append(
            SmpName(
                name, "DPN", name, {w: {"timm": f"{name}.mx_in1k", **DPN}},
                note=f"timm `{name}`, same network and weights; {layout}; the stride-4..16 features are the concatenated paths without SMP's extra ReLU",
            )
        )

    # --- VGG: torchvision's body in specseg's module, SMP's `features.N` layout and taps.
    for name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"):
        rows.append(
            SmpName(
                name, "VGG",
                encoder="specseg.encoders.vgg:VGGEncoder",
                params={"layers": int(name[3:5]), "batch_norm": name.endswith("_bn")},
                timm_weights_model=name,
            )
        )

    # --- SE-Net (Cadene's pretrainedmodels networks, in timm as legacy_*)
    for name, model in {
        "senet154": "legacy_senet154",
        "se_resnet50": "legacy_seresnet50",
        "se_resnet101": "legacy_seresnet101",
        "se_resnet152": "legacy_seresnet152",
        "se_resnext50_32x4d": "legacy_seresnext50_32x4d",
        "se_resnext101_32x4d": "legacy_seresnext101_32x4d",
    }.items():
        rows.append(SmpName(name, "SE-Net", model, {"imagenet": {"timm": f"{model}.in1k", **IMAGENET}}, note=f"timm `{model}`, same network and weights; {layout}"))

    # --- DenseNet
    for n in (121, 169, 201, 161):
        name = f"densenet{n}"
        rows.append(
            SmpName(
                name, "DenseNet", name, {"imagenet": {"timm": f"{name}.tv_in1k", **IMAGENET}},
                note=f"timm `{name}`, same network and torchvision weights; {layout}; the stride-4..16 features are the dense blocks' outputs (SMP applies the next transition's norm and ReLU first)",
            )
        )

    # --- Inception (SMP pads their 3x3 convolutions and max-pools so feature sizes halve exactly; so does specseg)
    rows.append(
        SmpName(
            "inceptionresnetv2", "Inception", "inception_resnet_v2",
            _tags(INCEPTION, {"imagenet": "inception_resnet_v2.tf_in1k", "imagenet+background": "inception_resnet_v2.tf_in1k"}),
            note=f"timm `inception_resnet_v2` with SMP's padding fix, same weights; {layout}",
            timm_options={"patch": "inception_padding"},
        )
    )
    rows.append(
        SmpName(
            "inceptionv4", "Inception", "inception_v4",
            _tags(INCEPTION, {"imagenet": "inception_v4.tf_in1k", "imagenet+background": "inception_v4.tf_in1k"}),
            note=f"timm `inception_v4` with SMP's padding fix, same weights; {layout}; the stride-4 feature has 160 channels (SMP: 192, one module later)",
            timm_options={"patch": "inception_padding"},
        )
    )

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
            "mobilenet_v2", "MobileNet",
            encoder="specseg.encoders.mobilenet:MobileNetV2Encoder",
        )
    )
    rows.append(
        SmpName(
            "xception", "Xception", "legacy_xception", {"imagenet": {"timm": "legacy_xception.tf_in1k", **INCEPTION}},
            note=f"timm `legacy_xception` with SMP's stem padding fix, same weights; {layout}; the stride-4..16 features are taken after the following ReLU",
            timm_options={"patch": "xception_padding"},
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

    for name, model in {"timm-skresnet18": "skresnet18", "timm-skresnet34": "skresnet34", "timm-skresnext50_32x4d": "skresnext50_32x4d"}.items():
        rows.append(
            SmpName(
                name, "SK-ResNe(X)t", model, {"imagenet": {"timm": f"{model}.ra_in1k", **IMAGENET}},
                note=f"timm `{model}` (the class SMP subclasses, as configured by timm: its selective-kernel attention width differs from SMP's, so parameter counts differ); {layout}",
            )
        )

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
