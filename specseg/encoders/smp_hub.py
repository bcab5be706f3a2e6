"""Where SMP 0.6 keeps its pretrained encoder weights (torch-free data).

SMP 0.6 downloads the weights of its own encoders from Hugging Face: one
repository per encoder and weights name, ``smp-hub/<encoder>.<weights>``
(``+`` written ``-``), pinned to a commit, holding ``model.safetensors`` in
the layout of SMP's encoder module (and ``config.json`` with the
normalisation). :data:`REVISIONS` lists every such repository's pinned
commit, as SMP 0.6's encoder table does; :func:`hub_settings` turns a row
into the pretrained settings specseg resolves and downloads.

The 48 names SMP 0.6 rebuilds as timm models (``timm-regnet*``, ``timm-res2*``,
``timm-resnest*``, ``timm-gernet*``, ``timm-mobilenetv3*``) are not here: for
them SMP loads timm's default pretrained weights, and so does specseg.
"""

from __future__ import annotations

from typing import Any, Mapping

#: The Hugging Face owner of SMP's encoder weights repositories.
HUB_OWNER = "smp-hub"
#: The weights file SMP loads from each repository.
WEIGHTS_FILENAME = "model.safetensors"

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

#: SMP 0.6's pinned revision of each (encoder name, weights name) repository.
REVISIONS: Mapping[str, Mapping[str, str]] = {
    "resnet18": {"imagenet": "3f2325ff978283d47aa6a1d6878ca20565622683", "ssl": "d600d5116aac2e6e595f99f40612074c723c00b2", "swsl": "0e3a35d4d8e344088c14a96eee502a88ac70eae1"},
    "resnet34": {"imagenet": "7a57b34f723329ff020b3f8bc41771163c519d0c"},
    "resnet50": {"imagenet": "00cb74e366966d59cd9a35af57e618af9f88efe9", "ssl": "d07daf5b4377f3700c6ac61906b0aafbc4eca46b", "swsl": "b9520cce124f91c6fe7eee45721a2c7954f0d8c0"},
    "resnet101": {"imagenet": "cd7c15e8c51da86ae6a084515fdb962d0c94e7d1"},
    "resnet152": {"imagenet": "951dd835e9d086628e447b484584c8983f9e1dd0"},
    "resnext50_32x4d": {"imagenet": "329793c85d62fd340ae42ae39fb905a63df872e7", "ssl": "9b67cff77d060c7044493a58c24d1007c1eb06c3", "swsl": "52e6e49da61b8e26ca691e1aef2cbb952884057d"},
    "resnext101_32x4d": {"ssl": "b39796c8459084d13523b7016c3ef13a2e9e472b", "swsl": "3f8355b4892a31f001a832b49b2b01484d48516a"},
    "resnext101_32x8d": {"imagenet": "221af6198d03a4ee88992f78a1ee81b46a52d339", "instagram": "44cd927aa6e64673ffe9d31230bad44abc18b823", "ssl": "723a95ddeed335c9488c37c6cbef13d779ac8f97", "swsl": "58cf0bb65f91365470398080d9588b187d1777c4"},
    "resnext101_32x16d": {"instagram": "64e8e320eeae6501185b0627b2429a68e52d050c", "ssl": "1283fe03fbb6aa2599b2df24095255acb93c3d5c", "swsl": "30ba61bbd4d6af0d955c513dbb4f557b84eb094f"},
    "resnext101_32x32d": {"instagram": "c9405de121fdaa275a89de470fb19409e3eeaa86"},
    "resnext101_32x48d": {"instagram": "53e61a962b824ad7027409821f9ac3e3336dd024"},
    "dpn68": {"imagenet": "c209aefdeae6bc93937556629e974b44d4e58535"},
    "dpn68b": {"imagenet+5k": "6c6615e77688e390ae0eaa81e26821fbd83cee4b"},
    "dpn92": {"imagenet+5k": "d231f51ce4ad2c84ed5fcaf4ef0cfece6814a526"},
    "dpn98": {"imagenet": "b2836c86216c1ddce980d832f7deaa4ca22babd3"},
    "dpn107": {"imagenet+5k": "dab4cd6b8b79de3db970f2dbff85359a8847db05"},
    "dpn131": {"imagenet": "04bbb9f415ca2bb59f3d8227857967b74698515e"},
    "vgg11": {"imagenet": "ad8b90e1051c38fdbf399cf5016886a1be357390"},
    "vgg11_bn": {"imagenet": "59757f9215032c9f092977092d57d26a9df7fd9c"},
    "vgg13": {"imagenet": "1b70ff2580f101a8007a48b51e2b5d1e5925dc42"},
    "vgg13_bn": {"imagenet": "9be454515193af6612261b7614fe90607e27b143"},
    "vgg16": {"imagenet": "49d74b799006ee252b86e25acd6f1fd8ac9a99c1"},
    "vgg16_bn": {"imagenet": "2c186d02fb519e93219a99a1c2af6295aef0bf0d"},
    "vgg19": {"imagenet": "2853d00d7bca364dbb98be4d6afa347e5aeec1f6"},
    "vgg19_bn": {"imagenet": "f09a924cb0d201ea6f61601df9559141382271d7"},
    "senet154": {"imagenet": "249f45efc9881ba560a0c480128edbc34ab87e40"},
    "se_resnet50": {"imagenet": "e6b4bc2dc85226c3d3474544410724a485455459"},
    "se_resnet101": {"imagenet": "71fe95cc0a27f444cf83671f354de02dc741b18b"},
    "se_resnet152": {"imagenet": "e79fc3d9d76f197bd76a2593c2054edf1083fe32"},
    "se_resnext50_32x4d": {"imagenet": "73246406d879a2b0e3fdfe6fddd56347d38f38ae"},
    "se_resnext101_32x4d": {"imagenet": "18808a4276f46421d358a9de554e0b93c2795df4"},
    "densenet121": {"imagenet": "a17c96896a265b61338f66f61d3887b24f61995a"},
    "densenet169": {"imagenet": "8facfba9fc72f7750879dac9ac6ceb3ab990de8d"},
    "densenet201": {"imagenet": "ed5deb355d71659391d46fae5e7587460fbb5f84"},
    "densenet161": {"imagenet": "9afe0fec51ab2a627141769d97d6f83756d78446"},
    "inceptionresnetv2": {"imagenet": "120c5afdbb80a1c989db0a7423ebb7a9db9b1e6c", "imagenet+background": "3ecf3491658dc0f6a76d69c9d1cb36511b1ee56c"},
    "inceptionv4": {"imagenet": "918fb54f07811d82a4ecde3a51156041d0facba9", "imagenet+background": "8c2a48e20d2709ee64f8421c61be309f05bfa536"},
    "efficientnet-b0": {"imagenet": "1bbe7ecc1d5ea1d2058de1a2db063b8701aff314", "advprop": "29043c08140d9c6ee7de1468d55923f2b06bcec2"},
    "efficientnet-b1": {"imagenet": "5d637466a5215de300a8ccb13a39357df2df2bf4", "advprop": "2e518b8b0955bbab467f50525578dab6b6086afc"},
    "efficientnet-b2": {"imagenet": "a96d4f0295ffbae18ebba173bf7f3c0c8f21990e", "advprop": "be788c20dfb0bbe83b4c439f9cfe0dd937c0783e"},
    "efficientnet-b3": {"imagenet": "074c54a6c473e0d294690d49cedb6cf463e7127d", "advprop": "9ccc166d87bd9c08d6bed4477638c7f4bb3eec78"},
    "efficientnet-b4": {"imagenet": "05cd5dde5dab658f00c463f9b9aa0ced76784f40", "advprop": "f04caa809ea4eb08ee9e7fd555f5514ebe2a9ef5"},
    "efficientnet-b5": {"imagenet": "69f4d28460a4e421b7860bc26ee7d832e03e01ca", "advprop": "dabe78fc8ab7ce93ddc2bb156b01db227caede88"},
    "efficientnet-b6": {"imagenet": "8570752016f7c62ae149cffa058550fe44e21c8b", "advprop": "c2dbb4d1359151165ec7b96cfe54a9cac2142a31"},
    "efficientnet-b7": {"imagenet": "5a5dbe687d612ebc3dca248274fd1191111deda6", "advprop": "ce33edb4e80c0cde268f098ae2299e23f615577d"},
    "mobilenet_v2": {"imagenet": "e67aa804e17f7b404b629127eabbd224c4e0690b"},
    "xception": {"imagenet": "01cfaf27c11353b1f0c578e7e26d2c000ea91049"},
    "timm-efficientnet-b0": {"imagenet": "8419e9cc19da0b68dcd7bb12f19b7c92407ad7c4", "advprop": "a5870af2d24ce79e0cc7fae2bbd8e0a21fcfa6d8", "noisy-student": "bea8b0ff726a50e48774d2d360c5fb1ac4815836"},
    "timm-efficientnet-b1": {"imagenet": "63bdd65ef6596ef24f1cadc7dd4f46b624442349", "advprop": "79b3d102080ef679b16c2748e608a871112233d0", "noisy-student": "36856124a699f6032574ceeefab02040daa90a9a"},
    "timm-efficientnet-b2": {"imagenet": "e693adb39d3cb3847e71e3700a0c2aa58072cff1", "advprop": "b58479bf78007cfbb365091d64eeee369bddfa21", "noisy-student": "67c558827c6d3e0975ff9b4bce8557bc2ca80931"},
    "timm-efficientnet-b3": {"imagenet": "1666b835b5151d6bb2067c7cd67e67ada6c39edf", "advprop": "70474cdb9f1ff4fcbd7434e66560ead1ab8e506b", "noisy-student": "2367bc9f61e79ee97684169a71a87db280bcf4db"},
    "timm-efficientnet-b4": {"imagenet": "07868c28ab308f4de4cf1e7ec54b33b8b002ccdb", "advprop": "8ea1772ee9a2a0d18c1b56dce0dfac8dd33d537d", "noisy-student": "faeb77b6e8292a700380c840d39442d7ce4d6443"},
    "timm-efficientnet-b5": {"imagenet": "004153b4ddd93d30afd9bbf34329d7f57396d413", "advprop": "1d1c5f05aab5ed9a1d5052847ddd4024c06a464d", "noisy-student": "9bc3a1e5490de92b1af061d5c2c474ab3129e38c"},
    "timm-efficientnet-b6": {"imagenet": "dbbf28a5c33f021486db4070de693caad6b56c3d", "advprop": "3b5d3412047f7711c56ffde997911cfefe79f835", "noisy-student": "9b899ea9e8e0ce2ccada0f34a8cb8b5028e9bb36"},
    "timm-efficientnet-b7": {"imagenet": "8ef7ffccf54dad9baceb21d05b7ef86b6b70f4cc", "advprop": "fcbc576ffb939c12d5cd8dad523fdae6eb0177ca", "noisy-student": "6b1dd73e61bf934d485d7bd4381dc3e2ab374664"},
    "timm-efficientnet-b8": {"imagenet": "b5e9dde35605a3a6d17ea2a727382625f9066a37", "advprop": "e43f381de72e7467383c2c80bacbb7fcb9572866"},
    "timm-efficientnet-l2": {"noisy-student": "cdc711e76d1becdd9197169f1a8bb1b2094e980c", "noisy-student-475": "35f5ba667a64bf4f3f0689daf84fc6d0f8e1311b"},
    "timm-tf_efficientnet_lite0": {"imagenet": "f5729249af07e5d923fb8b16922256ce2865d108"},
    "timm-tf_efficientnet_lite1": {"imagenet": "7b5e3f8dbb0c13b74101773584bba7523721be72"},
    "timm-tf_efficientnet_lite2": {"imagenet": "cc5f6cd4c7409ebacc13292f09d369ae88547f6a"},
    "timm-tf_efficientnet_lite3": {"imagenet": "ab29c8402991591d66f813bbb1f061565d9b0cd0"},
    "timm-tf_efficientnet_lite4": {"imagenet": "91a822e0f03c255b34dfb7846d3858397e50ba39"},
    "timm-skresnet18": {"imagenet": "6c97652bb744d89177b68274d2fda3923a7d1f95"},
    "timm-skresnet34": {"imagenet": "2367796924a8182cc835ef6b5dc303917f923f99"},
    "timm-skresnext50_32x4d": {"imagenet": "50207e407cc4c6ea9e6872963db6844ca7b7b9de"},
    "mit_b0": {"imagenet": "9ce53d104d92d75aabb00aae70677aaab67e7c84"},
    "mit_b1": {"imagenet": "a04bf4f13a549bce677cf79b04852e7510782817"},
    "mit_b2": {"imagenet": "868ab6f13871dcf8c3d9f90ee4519403475b65ef"},
    "mit_b3": {"imagenet": "32558d12a65f1daa0ebcf4f4053c4285e2c1cbda"},
    "mit_b4": {"imagenet": "3a3454e900a4b4f11dd60eeb59101a9a1a36b017"},
    "mit_b5": {"imagenet": "ced04d96c586b6297fd59a7a1e244fc78fdb6531"},
    "mobileone_s0": {"imagenet": "f52815cf0ad29278a9860c9cd5fabf19f904bedf"},
    "mobileone_s1": {"imagenet": "5707a98852b762cd8e0c43b5c8c729cd28496677"},
    "mobileone_s2": {"imagenet": "ddc3db8fa40d271902c7a8c95cee6691f617d551"},
    "mobileone_s3": {"imagenet": "da89b84a91b7400c366c358bfbf8dd0b2fa4dde2"},
    "mobileone_s4": {"imagenet": "16197c55d599076b6aae67a83d3b3f70c31b097c"},
}


def repo_id(encoder_name: str, weights: str) -> str:
    """The Hugging Face repository SMP 0.6 downloads ``weights`` of ``encoder_name`` from."""
    return f"{HUB_OWNER}/{encoder_name}.{weights.replace('+', '-')}"


def normalisation(encoder_name: str, weights: str) -> dict[str, Any]:
    """The input normalisation the weights were trained with (the statistics SMP's repositories record)."""
    if encoder_name.startswith("dpn"):
        return dict(DPN)
    if weights == "advprop" or encoder_name.startswith(("inception", "xception", "timm-tf_efficientnet_lite")):
        return dict(INCEPTION)
    return dict(IMAGENET)


def hub_settings(encoder_name: str) -> dict[str, dict[str, Any]]:
    """Pretrained settings (``repo_id``, ``revision``, ``filename``, ``layout`` and normalisation) per weights name.

    ``layout: smp`` says the file holds SMP's encoder state dict. Empty for
    names SMP does not host (its timm-rebuilt names, ``tu-`` encoders, plugins).
    """
    return {
        weights: {
            "repo_id": repo_id(encoder_name, weights),
            "revision": revision,
            "filename": WEIGHTS_FILENAME,
            "layout": "smp",
            **normalisation(encoder_name, weights),
        }
        for weights, revision in REVISIONS.get(encoder_name, {}).items()
    }
