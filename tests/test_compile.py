"""Every architecture compiles whole with ``torch.compile(fullgraph=True)`` and runs channels_last.

Each architecture is built small (a ``resnet18`` encoder; DPT with timm's
6-block ``test_vit``), with a classification head so that path is covered
too, at 64x64 (PAN at 128x128: its pyramid attention needs an 8x8 deepest
map at output stride 16).

Backend: ``aot_eager``. ``fullgraph=True`` makes dynamo fail on any graph
break, whatever the backend, and ``aot_eager`` also traces the captured
graph through AOTAutograd (functionalization, decompositions) before running
it eagerly, so every specseg-side capture problem shows up here. Inductor
adds C++ code generation and compilation on top: on the 2-core CPU this was
measured on, one U-Net took 25 s with inductor (cold cache, idle machine;
55 s with the machine shared) against 2.2 s with ``aot_eager``, so twelve
architectures would take 5 to 10 minutes instead of about 30 s for this
whole file (under 2 minutes on a busy machine). The compiled output must
equal eager within 1e-4.

The channels_last test converts the model and the input with
``memory_format=torch.channels_last`` (eager) and compares with the
contiguous run, within 1e-4: the kernels differ between the two layouts,
and the ResNet stem's pooling shortcut runs for contiguous tensors only.
FPN's ``add`` merge must equal SMP's stack-and-sum bit for bit and keep
the input's layout.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import specseg
from tests.small_models import ARCHITECTURES, small_input, small_spec


def _assert_close(actual: Any, expected: Any) -> None:
    assert isinstance(actual, tuple) and isinstance(expected, tuple) and len(actual) == len(expected) == 2
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, atol=1e-4, rtol=0)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each architecture compiles from a clean cache (no recompile limits shared between tests)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_compiles_fullgraph_and_matches_eager(arch: str) -> None:
    model = specseg.build(small_spec(arch)).eval()
    x = small_input(arch)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        _assert_close(compiled(x), eager)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_channels_last_matches_contiguous(arch: str) -> None:
    model = specseg.build(small_spec(arch)).eval()
    x = small_input(arch)
    with torch.no_grad():
        contiguous = model(x)
        model.to(memory_format=torch.channels_last)
        channels_last = model(x.to(memory_format=torch.channels_last))
    _assert_close(channels_last, contiguous)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "channels_last"])
def test_fpn_add_merge_is_smps_stack_sum_bit_for_bit_in_the_input_layout(memory_format: torch.memory_format) -> None:
    from specseg.decoders.fpn import FPNMerge

    gen = torch.Generator().manual_seed(0)
    maps = [(torch.randn(1, 8, 9, 11, generator=gen) * 10**i).contiguous(memory_format=memory_format) for i in range(4)]
    originals = [m.clone() for m in maps]
    merged = FPNMerge("add")(maps)
    assert torch.equal(merged, torch.stack(originals).sum(dim=0))
    assert merged.is_contiguous(memory_format=memory_format)
    assert all(torch.equal(m, o) for m, o in zip(maps, originals))  # the inputs are not overwritten
    assert torch.equal(FPNMerge("add")(maps[:1]), originals[0])
