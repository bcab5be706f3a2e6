"""specseg builds the same networks as SMP 0.6: same parameters, same outputs for the same weights.

Each case builds an SMP model, maps its constructor arguments to a spec
with the documented rule, builds that spec, loads SMP's state dict into it
with strict key matching, and compares eval-mode outputs.
"""

from __future__ import annotations

import pytest
import torch

import specseg
from specseg.interop.smp_config import spec_from_smp_kwargs
from tests.smp_cases import all_cases

smp = pytest.importorskip("segmentation_models_pytorch")


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _case_id(case: tuple) -> str:
    cls, kwargs, _ = case
    return f"{cls}-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("case", all_cases(), ids=_case_id)
def test_same_network_as_smp(case: tuple) -> None:
    smp_class, kwargs, (h, w) = case
    torch.manual_seed(0)
    reference = getattr(smp, smp_class)(encoder_weights=None, **kwargs).eval()
    model = specseg.build(spec_from_smp_kwargs(smp_class, kwargs)).eval()

    assert _params(model) == _params(reference)
    model.load_state_dict(reference.state_dict(), strict=True)

    in_channels = kwargs.get("in_channels", 3)
    x = torch.randn(2, in_channels, h, w)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == 2
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    else:
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
