"""CPU inference paths: 1x1 convolutions through oneDNN, and ``optimize_for_inference``.

Every built model runs its plain 1x1 convolutions as :class:`PointwiseConv2d`:
on a channels_last CPU input without gradients they take oneDNN at any
thread count (PyTorch's native kernel otherwise, with one thread), with the
values of ``nn.Conv2d`` to float rounding; every other call is
``nn.Conv2d``'s own, bit for bit.

Each architecture is built small (``tests/small_models.py``). The optimized model must compute what the plain
model computes channels_last, to float rounding (small maps take PyTorch's
native kernel in the plain model; the rest is bit for bit), and hand back outputs
in the input's layout; its reordered weights must follow every weight change
PyTorch records.
"""

from __future__ import annotations

import copy
import io
from typing import Any, Iterator

import pytest
import torch
from torch import nn

import specseg
from specseg.blocks.pointwise import ONEDNN_MIN_ELEMENTS, PointwiseConv2d, is_pointwise
from specseg.inference import _PACKED, PackedConv2d, optimize_for_inference, packing_available
from specseg.testing import single_threaded
from tests.small_models import ARCHITECTURES, small_input, small_spec

pytestmark = pytest.mark.skipif(not packing_available(), reason="this PyTorch build has no oneDNN convolutions")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run the test with one torch thread (where PyTorch itself avoids oneDNN for 1x1 convolutions)."""
    with single_threaded():
        yield


@pytest.fixture
def onednn_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The input shapes of every ``torch.mkldnn_convolution`` call made during the test."""
    calls: list[tuple[int, ...]] = []
    real = torch.mkldnn_convolution

    def counting(x: torch.Tensor, *args: Any) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(torch, "mkldnn_convolution", counting)
    return calls


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_built_models_hold_no_plain_1x1_convolution(arch: str) -> None:
    model = specseg.build(small_spec(arch))
    assert not [name for name, m in model.named_modules() if is_pointwise(m)]
    pointwise = [m for m in model.modules() if isinstance(m, PointwiseConv2d)]
    assert all(m.kernel_size == (1, 1) and m.stride == (1, 1) and m.dilation == (1, 1) for m in pointwise)


def test_timm_encoders_1x1_convolutions_are_pointwise_too() -> None:
    spec = {"specseg": 1, "encoder": {"name": "tu-test_efficientnet"}, "decoder": {"architecture": "fpn"}, "head": {"classes": 2}}
    encoder = specseg.build(spec).encoder
    assert any(isinstance(m, PointwiseConv2d) for m in encoder.modules())
    assert not any(is_pointwise(m) for m in encoder.modules())


@pytest.mark.parametrize("arch", ["deeplabv3plus", "fpn", "linknet", "segformer"])
def test_1x1_convolutions_take_onednn_channels_last_with_one_thread(
    arch: str, one_thread: None, onednn_calls: list[tuple[int, ...]]
) -> None:
    model = specseg.build(small_spec(arch)).eval()
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if type(m) is PointwiseConv2d:
            m.__class__ = nn.Conv2d
    x = small_input(arch).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = plain.to(memory_format=torch.channels_last)(x)
        assert not onednn_calls
        got = model.to(memory_format=torch.channels_last)(x)
    assert onednn_calls and all(torch.Size(s).numel() > ONEDNN_MIN_ELEMENTS for s in onednn_calls)
    for g, e in zip(got, expected, strict=True):
        assert g.is_contiguous(memory_format=torch.channels_last) == e.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


CALLS_LEFT_TO_PYTORCH = {
    "contiguous input": lambda: torch.randn(1, 32, 64, 64),
    "too small": lambda: torch.randn(1, 32, 16, 16).contiguous(memory_format=torch.channels_last),
    "1x1 map": lambda: torch.randn(1, 32, 1, 1).contiguous(memory_format=torch.channels_last),
    "float64": lambda: torch.randn(1, 32, 64, 64, dtype=torch.float64).contiguous(memory_format=torch.channels_last),
    "input needs gradients": lambda: torch.randn(1, 32, 64, 64).contiguous(memory_format=torch.channels_last).requires_grad_(),
}


@pytest.mark.parametrize("case", CALLS_LEFT_TO_PYTORCH)
def test_other_calls_are_nn_conv2d_bit_for_bit(case: str, one_thread: None, onednn_calls: list[tuple[int, ...]]) -> None:
    x = CALLS_LEFT_TO_PYTORCH[case]()
    conv = nn.Conv2d(32, 8, 1).to(x.dtype)
    pointwise = copy.deepcopy(conv)
    pointwise.__class__ = PointwiseConv2d
    assert torch.equal(pointwise(x), conv(x)) and not onednn_calls


def test_training_forward_keeps_pytorchs_kernel_and_gradients(one_thread: None, onednn_calls: list[tuple[int, ...]]) -> None:
    model = specseg.build(small_spec("segformer")).train().to(memory_format=torch.channels_last)
    x = small_input("segformer").contiguous(memory_format=torch.channels_last)
    model(x)[0].sum().backward()
    assert not onednn_calls
    assert all(p.grad is not None for p in model.decoder.parameters())


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
