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
Xception, Inception, DPN, SE-Net, SK-ResNe(X)t; and timm's EfficientNet for
SMP's ``timm-efficientnet-*``/``-lite*``, :mod:`specseg.encoders.timm_efficientnet`).
VGG and MobileNetV2 are torchvision's bodies (:mod:`specseg.encoders.vgg`,
:mod:`specseg.encoders.mobilenet`); SMP's lukemelas EfficientNet and Apple's
MobileOne layout are specseg's own modules (:mod:`specseg.encoders.efficientnet`,
:mod:`specseg.encoders.mobileone`).

Every row records whether the network and state dict are SMP's (``note``
empty) or how they differ; :func:`specseg.encoders.catalog.smp_comparison_rows`
turns this into the README's encoder table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from specseg.encoders.smp_hub import IMAGENET, INCEPTION, hub_settings


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
            )
        )

    # --- DPN: timm's network under Cadene's (SMP's) keys, SMP's feature taps.
    for name in ("dpn68", "dpn68b", "dpn92", "dpn98", "dpn107", "dpn131"):
        rows.append(SmpName(name, "DPN", encoder="specseg.encoders.dpn:DPNEncoder", params={"model": name}, timm_weights_model=name))

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

    # --- SE-Net: Cadene's networks (in timm as legacy_*), under Cadene's (SMP's) keys.
    senets = {
        "senet154": "legacy_senet154",
        "se_resnet50": "legacy_seresnet50",
        "se_resnet101": "legacy_seresnet101",
        "se_resnet152": "legacy_seresnet152",
        "se_resnext50_32x4d": "legacy_seresnext50_32x4d",
        "se_resnext101_32x4d": "legacy_seresnext101_32x4d",
    }
    for name, model in senets.items():
        rows.append(SmpName(name, "SE-Net", encoder="specseg.encoders.senet:SENetEncoder", params={"model": model}, timm_weights_model=model))

    # --- DenseNet: timm's network under torchvision's (SMP's) keys, SMP's feature taps.
    for name in ("densenet121", "densenet169", "densenet201", "densenet161"):
        rows.append(SmpName(name, "DenseNet", encoder="specseg.encoders.densenet:DenseNetEncoder", params={"model": name}, timm_weights_model=name))

    # --- Inception: timm's networks under Cadene's (SMP's) keys, SMP's padding and feature taps.
    for name, encoder, model in (
        ("inceptionresnetv2", "specseg.encoders.inception:InceptionResNetV2Encoder", "inception_resnet_v2"),
        ("inceptionv4", "specseg.encoders.inception:InceptionV4Encoder", "inception_v4"),
    ):
        rows.append(SmpName(name, "Inception", encoder=encoder, params={"model": model}, timm_weights_model=model))

    # --- EfficientNet: lukemelas's network (SMP's), specseg's own module with its layout and static padding.
    for b in range(8):
        rows.append(SmpName(f"efficientnet-b{b}", "EfficientNet", encoder="specseg.encoders.efficientnet:EfficientNetEncoder", params={"variant": f"b{b}"}))

    rows.append(
        SmpName(
            "mobilenet_v2", "MobileNet",
            encoder="specseg.encoders.mobilenet:MobileNetV2Encoder",
        )
    )
    rows.append(
        SmpName(
            "xception", "Xception", encoder="specseg.encoders.xception:XceptionEncoder", params={"model": "legacy_xception"},
            timm_weights_model="legacy_xception",
        )
    )

    # --- timm-efficientnet / -lite: timm's EfficientNet class in specseg's module, SMP's taps and layout.
    timm_effnets = {f"timm-efficientnet-b{b}": (f"efficientnet_b{b}", f"tf_efficientnet_b{b}") for b in range(9)}
    timm_effnets["timm-efficientnet-l2"] = ("efficientnet_l2", "tf_efficientnet_l2")
    timm_effnets.update({f"timm-tf_efficientnet_lite{i}": (f"efficientnet_lite{i}", f"tf_efficientnet_lite{i}") for i in range(5)})
    for name, (model, tf) in timm_effnets.items():
        rows.append(
            SmpName(
                name, "EfficientNet-Lite" if "lite" in name else "EfficientNet (timm)",
                encoder="specseg.encoders.timm_efficientnet:TimmEfficientNetEncoder",
                params={"model": model},
                timm_weights_model=tf,
            )
        )

    # --- SK-ResNe(X)t: timm's ResNet class with SMP's own selective-kernel settings (timm's skresnet* tags do not fit).
    sk_basic = {"block": "basic", "sk_kwargs": {"rd_ratio": 0.125, "split_input": True}}
    sknets = {
        "timm-skresnet18": {**sk_basic, "layers": [2, 2, 2, 2]},
        "timm-skresnet34": {**sk_basic, "layers": [3, 4, 6, 3]},
        "timm-skresnext50_32x4d": {"block": "bottleneck", "layers": [3, 4, 6, 3], "cardinality": 32, "base_width": 4},
    }
    for name, params in sknets.items():
        rows.append(SmpName(name, "SK-ResNe(X)t", encoder="specseg.encoders.skresnet:SKResNetEncoder", params=params))

    # --- MobileOne: specseg's own module with SMP's (Apple's) layout; timm's names its modules differently.
    mobileones = {
        "mobileone_s0": {"widths": [0.75, 1.0, 1.0, 2.0], "branches": 4},
        "mobileone_s1": {"widths": [1.5, 1.5, 2.0, 2.5]},
        "mobileone_s2": {"widths": [1.5, 2.0, 2.5, 4.0]},
        "mobileone_s3": {"widths": [2.0, 2.5, 3.0, 4.0]},
        "mobileone_s4": {"widths": [3.0, 3.5, 3.5, 4.0], "use_se": True},
    }
    for name, params in mobileones.items():
        rows.append(SmpName(name, "MobileOne", encoder="specseg.encoders.mobileone:MobileOneEncoder", params=params))

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
