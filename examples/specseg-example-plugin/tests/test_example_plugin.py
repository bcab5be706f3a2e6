"""The example plugin's own test: the encoder is found through its entry point and keeps the contract."""

import pytest

import specseg
from specseg.testing import check_encoder


def test_contract() -> None:
    assert check_encoder("example_tiny", check_depths=[3, 4, 5], width=8) == []


def test_params_are_validated_from_the_spec() -> None:
    with pytest.raises(specseg.SpecError) as info:
        specseg.load_spec({"specseg": 1, "encoder": {"name": "example_tiny", "params": {"width": "wide"}}, "decoder": {"architecture": "unet"}})
    assert "encoder.params.width" in str(info.value)


def test_builds_in_a_unet() -> None:
    import torch

    model = specseg.build({"specseg": 1, "encoder": {"name": "example_tiny", "params": {"width": 8}}, "decoder": {"architecture": "unet"}, "head": {"classes": 2}})
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 64, 64)
