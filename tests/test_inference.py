"""``optimize_for_inference``: the same values as a channels_last run, and never stale weights PyTorch can see.

Each architecture is built small (``tests/small_models.py``). The optimized model must compute what the plain
model computes channels_last, to float rounding (PyTorch runs some 1x1
convolutions without oneDNN; the rest is bit for bit), and hand back outputs
in the input's layout; its reordered weights must follow every weight change
PyTorch records.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
import torch
from torch import nn

import specseg
from specseg.inference import _PACKED, PackedConv2d, optimize_for_inference, packing_available
from tests.small_models import ARCHITECTURES, small_input, small_spec

pytestmark = pytest.mark.skipif(not packing_available(), reason="this PyTorch build has no oneDNN convolutions")


def _packed_copies(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if m in _PACKED)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_optimized_model_computes_the_channels_last_values(arch: str) -> None:
    model = specseg.build(small_spec(arch)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = small_input(arch)
    with torch.no_grad():
        expected = copy.deepcopy(model).to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        optimized = model.optimize_for_inference()
        assert optimized is model
        got = model(x)
    assert any(isinstance(m, PackedConv2d) for m in model.modules()) and _packed_copies(model) > 0
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.is_contiguous()  # a contiguous input gets contiguous outputs
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    # Parameters, buffers and state dict keys are untouched (only their memory layout).
    after = model.state_dict()
    assert after.keys() == state.keys() and all(torch.equal(after[k], v) for k, v in state.items())


def test_resnet_unet_is_bit_for_bit_channels_last() -> None:
    model = specseg.build(small_spec("unet")).eval()
    x = small_input("unet").contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = copy.deepcopy(model).to(memory_format=torch.channels_last)(x)
        got = model.optimize_for_inference()(x)
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))


def _fresh_reference(model: nn.Module, x: torch.Tensor) -> Any:
    """What an unoptimized model with ``model``'s current weights computes channels_last."""
    plain = specseg.build(small_spec("unet")).eval().to(memory_format=torch.channels_last)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        return plain(x.contiguous(memory_format=torch.channels_last))


def _assert_matches(model: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        got = model(x)
    for g, e in zip(got, _fresh_reference(model, x), strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_training_steps_and_loads_take_effect_at_once() -> None:
    model = specseg.build(small_spec("unet")).optimize_for_inference()
    x = small_input("unet")
    with torch.no_grad():
        before = model(x)[0]
    assert _packed_copies(model) > 0

    # Training: the plain convolution runs (gradients flow), and the reordered copies are dropped.
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    masks, labels = model(x)
    (masks.mean() + labels.mean()).backward()
    optimizer.step()
    assert _packed_copies(model) == 0
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(x)[0], before)
    _assert_matches(model, x)

    # Loading other weights (copy_ under no_grad: a recorded change), and assigning new tensors.
    other = specseg.build({**small_spec("unet"), "seed": 1}).state_dict()
    model.load_state_dict(other)
    _assert_matches(model, x)
    model.load_state_dict(specseg.build({**small_spec("unet"), "seed": 2}).state_dict(), assign=True)
    _assert_matches(model, x)
    with torch.no_grad():
        model.encoder.conv1.weight.mul_(0.5)  # in place, recorded by the version counter
    _assert_matches(model, x)


def test_changes_through_data_need_another_call() -> None:
    """``param.data`` writes are invisible to PyTorch's version counter: calling again picks them up."""
    model = specseg.build(small_spec("unet")).optimize_for_inference()
    x = small_input("unet")
    with torch.no_grad():
        model(x)
    model.encoder.conv1.weight.data.neg_()
    model.optimize_for_inference()
    _assert_matches(model, x)


def test_copies_pickles_and_inference_mode_weights() -> None:
    model = specseg.build(small_spec("unet")).optimize_for_inference()
    x = small_input("unet")
    with torch.no_grad():
        expected = model(x)
    clone = copy.deepcopy(model)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.inference_mode():
        built_here = specseg.build(small_spec("unet")).optimize_for_inference()  # inference tensors: no version counter
        for other in (clone, loaded, built_here):
            for g, e in zip(other(x), expected, strict=True):
                torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_compiles_and_exports_with_the_standard_convolution() -> None:
    model = specseg.build(small_spec("unet")).optimize_for_inference()
    x = small_input("unet")
    with torch.no_grad():
        expected = model(x)
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        for g, e in zip(compiled(x), expected, strict=True):
            torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
        exported = torch.export.export(model, (x,))
    ops = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert any("conv" in op for op in ops) and not any("mkldnn" in op for op in ops)


def test_works_on_any_module_and_leaves_other_convolutions_alone() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding="same"), nn.Conv2d(4, 2, 1, padding_mode="reflect"))
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        expected = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        optimize_for_inference(net)
        got = net(x.contiguous(memory_format=torch.channels_last))
    assert [type(m).__name__ for m in net] == ["PackedConv2d", "ReLU", "Conv2d", "Conv2d"]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
