"""SMP's pretrained encoder weights: the same Hugging Face file SMP 0.6 fetches, loaded to SMP's numbers.

No test downloads: a local Hugging Face cache (``HF_HUB_OFFLINE=1``) holds
files in SMP's layout (random tensors of the right shapes, taken from SMP's
own encoder), SMP and specseg both load from it, and the repositories,
revisions and file names each asks huggingface_hub for are recorded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save

import specseg
from specseg.encoders.pretrained import source_for
from specseg.encoders.registry import registry
from specseg.encoders.smp_hub import REVISIONS, normalisation
from specseg.encoders.smp_names import SMP_NAMES
from specseg.interop.smp_config import spec_from_smp_kwargs
from specseg.testing import single_threaded
from tests.hf_cache import HubCache, hub_cache  # noqa: F401 - fixture

smp = pytest.importorskip("segmentation_models_pytorch")
from segmentation_models_pytorch import encoders as smp_encoders  # noqa: E402

SMP_HOSTED = [(name, weights) for name, entry in smp_encoders.encoders.items() for weights in entry["pretrained_settings"]]


def _random_like(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Random values of the same shapes (positive variances, so batch norms stay finite)."""
    return {
        k: (torch.rand_like(v) + 0.5 if k.endswith("running_var") else torch.randn_like(v) * 0.1) if v.is_floating_point() else torch.zeros_like(v)
        for k, v in state.items()
    }


def _safetensors(state: dict[str, torch.Tensor]) -> bytes:
    return save({k: v.detach().contiguous().clone() for k, v in state.items()})


def test_table_is_smps() -> None:
    """Every encoder and weights name SMP 0.6 hosts is in specseg's table, pinned to SMP's revision."""
    assert len(SMP_HOSTED) == 116 and len(smp_encoders.encoders) == 76
    ours = {(name, weights): rev for name, by_weights in REVISIONS.items() for weights, rev in by_weights.items()}
    assert ours == {(n, w): smp_encoders.encoders[n]["pretrained_settings"][w]["revision"] for n, w in SMP_HOSTED}
    assert {row.name for row in SMP_NAMES} == set(smp_encoders.encoders) | {row.name for row in SMP_NAMES if row.name not in REVISIONS}
    assert len(SMP_NAMES) == 124


@pytest.mark.parametrize("name,weights", SMP_HOSTED, ids=[f"{n}.{w}" for n, w in SMP_HOSTED])
def test_smp_hosted_weights_resolve_to_smps_repository(name: str, weights: str) -> None:
    """Names whose module is SMP's resolve SMP's repository, revision and file; the others say they differ."""
    entry = registry.get(name)
    source = source_for(entry, name, weights)
    smp_settings = smp_encoders.encoders[name]["pretrained_settings"][weights]
    if source.layout == "smp":
        assert (source.repo_id, source.revision, source.filename) == (smp_settings["repo_id"], smp_settings["revision"], "model.safetensors")
        assert dict(source.settings) == normalisation(name, weights)
    else:
        # Not yet SMP's module: the README's table says how it differs (never silently).
        assert entry.smp_note, f"{name} resolves {source.describe()} but claims to be SMP's network"


def _smp_calls(monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple], list[tuple]]:
    """Record the (repo_id, filename, revision) SMP and timm, and specseg, ask huggingface_hub for."""
    import huggingface_hub
    import timm.models._hub as timm_hub

    theirs: list[tuple] = []
    ours: list[tuple] = []
    real = huggingface_hub.hf_hub_download

    def recorder(calls: list[tuple]):
        def download(repo_id: str, filename: str, revision: str | None = None, **kwargs: Any) -> str:
            calls.append((repo_id, filename, revision))
            return real(repo_id, filename=filename, revision=revision, **kwargs)

        return download

    monkeypatch.setattr(smp_encoders, "hf_hub_download", recorder(theirs))
    monkeypatch.setattr(timm_hub, "hf_hub_download", recorder(theirs))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", recorder(ours))
    return theirs, ours


def _fill_cache(cache: HubCache, name: str, weights: str) -> None:
    """Put SMP's file for (name, weights) in the cache: SMP's encoder state dict with random values."""
    torch.manual_seed(1)
    if name in REVISIONS:
        try:
            with torch.device("meta"):  # shapes only: the values are drawn below
                encoder = smp_encoders.get_encoder(name, weights=None)
        except RuntimeError:  # an encoder whose constructor reads tensor values (MiT's drop-path schedule)
            encoder = smp_encoders.get_encoder(name, weights=None)
        state = _random_like({k: torch.empty(v.shape, dtype=v.dtype) for k, v in encoder.state_dict().items()})
        settings = smp_encoders.encoders[name]["pretrained_settings"][weights]
        config = json.dumps(normalisation(name, weights)).encode()
        cache.add(settings["repo_id"], {"config.json": config, "model.safetensors": _safetensors(state)}, settings["revision"])
        return
    # Names SMP rebuilds as timm models: timm's default pretrained file for the model.
    import timm

    timm_name = registry.get(name).timm_model
    cfg = timm.models.get_pretrained_cfg(timm_name)
    with torch.device("meta"):
        model = timm.create_model(timm_name, pretrained=False)
    state = _random_like({k: torch.empty(v.shape, dtype=v.dtype) for k, v in model.state_dict().items()})
    repo, _, revision = cfg.hf_hub_id.partition("@")
    cache.add(repo, {"model.safetensors": _safetensors(state)}, revision or None)


LOAD_CASES = [
    ("resnet18", "imagenet", 3),
    ("resnet18", "ssl", 1),
    ("resnext50_32x4d", "swsl", 4),
    ("mit_b0", "imagenet", 3),
    ("dpn68b", "imagenet+5k", 3),
    ("vgg11_bn", "imagenet", 3),
    ("se_resnet50", "imagenet", 3),
    ("densenet121", "imagenet", 2),
    ("inceptionv4", "imagenet+background", 3),
    ("xception", "imagenet", 3),
    ("efficientnet-b0", "advprop", 3),
    ("timm-efficientnet-b0", "noisy-student", 1),
    ("timm-tf_efficientnet_lite0", "imagenet", 3),
    ("mobilenet_v2", "imagenet", 3),
    ("mobileone_s0", "imagenet", 3),
    ("timm-skresnet18", "imagenet", 3),
    ("timm-regnetx_002", "imagenet", 3),
    ("timm-mobilenetv3_small_minimal_100", "imagenet", 3),
]


@pytest.mark.parametrize("name,weights,in_channels", LOAD_CASES, ids=[f"{n}.{w}-in{c}" for n, w, c in LOAD_CASES])
def test_pretrained_weights_as_smp_loads_them(
    name: str, weights: str, in_channels: int, hub_cache: HubCache, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """``weights: <name>`` fetches the file SMP fetches and gives SMP's outputs with it."""
    _fill_cache(hub_cache, name, weights)
    theirs, ours = _smp_calls(monkeypatch)
    kwargs = {"encoder_name": name, "encoder_weights": weights, "in_channels": in_channels, "classes": 2}
    with pytest.warns() if name.startswith("timm-") else _nothing():
        reference = smp.FPN(**kwargs).eval()
    model = specseg.build(spec_from_smp_kwargs("FPN", kwargs)).eval()

    assert ours and set(ours) <= set(theirs), f"specseg fetched {ours}, SMP {theirs}"
    assert any(f == "model.safetensors" or f.endswith(".safetensors") for _, f, _ in ours)
    # The encoder holds the file's weights, as in SMP; the decoder is random: take SMP's.
    ours_state, theirs_state = model.state_dict(), reference.state_dict()
    encoder_keys = {k for k in theirs_state if k.startswith("encoder.")}
    for key in encoder_keys:
        torch.testing.assert_close(ours_state[key], theirs_state[key], atol=0, rtol=0)
    model.load_state_dict({k: v for k, v in theirs_state.items() if k not in encoder_keys}, strict=False)
    x = torch.randn(2, in_channels, 64, 64)
    with torch.no_grad(), single_threaded():
        torch.testing.assert_close(model(x), reference(x), atol=1e-4, rtol=0)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_weights_missing_from_the_offline_cache_say_what_to_do(hub_cache: HubCache) -> None:  # noqa: F811
    with pytest.raises(specseg.SpecError) as info:
        specseg.build({"specseg": 1, "encoder": {"name": "resnet34", "weights": "imagenet"}, "decoder": {"architecture": "fpn"}})
    message = info.value.issues[0].message
    assert "smp-hub/resnet34.imagenet@7a57b34f7233" in message and "{path:" in message
