"""Fast CPU inference, opt-in: convolution weights kept prepacked for oneDNN between calls.

On the CPU, PyTorch runs a float32 convolution through oneDNN, which wants
its weights in a blocked layout: every call reorders the weights first. For
the deep layers of a ResNet at 256x256 that reorder costs more than the
convolution (512x512x3x3 weights on an 8x8 map: 3.3 ms per call, 1.3 ms with
the weights already reordered). :func:`optimize_for_inference` keeps each
convolution's reordered weights between calls, and runs the model in
channels_last, the layout oneDNN computes in without converting activations.

The values are those of the same model run channels_last (an input in
another layout is converted first, and the outputs converted back to the
input's layout): bit for bit where PyTorch computes with oneDNN too, to
float rounding where it does not (a single image's maps of at most 20480
values, which it computes with its native kernel); against a contiguous run
they differ by float rounding, as PyTorch's two memory layouts always do.

It is opt-in because the reordered copy is a cache: it is rebuilt whenever a
weight is replaced or changed in place the way PyTorch records (optimizer
steps, ``load_state_dict``, ``torch.no_grad()`` updates all bump a tensor's
version counter), but a change written through ``param.data`` is invisible
to PyTorch and so to the cache. After such a change, call
:func:`optimize_for_inference` again. The cache also holds a second copy of
the convolution weights. In training mode, with gradients recorded, under
``torch.jit``/``torch.compile``/``torch.export``, in float64 or off the CPU,
the convolutions run as usual (captured graphs keep the standard operator).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple, TypeVar

import torch
from torch import nn

from specseg.blocks.pointwise import PointwiseConv2d, eager_cpu_float32_call

ModuleT = TypeVar("ModuleT", bound=nn.Module)

#: Set on a model by :func:`optimize_for_inference` (a plain attribute: not in the state dict).
_OPTIMIZED_FLAG = "_specseg_channels_last_inference"


class _Packed(NamedTuple):
    """A convolution's reordered weights, and what they were made from."""

    weight: weakref.ref
    weight_version: int
    bias: weakref.ref | None
    bias_version: int
    tensor: torch.Tensor


#: module -> its reordered weights. A side table, not a module attribute: the reordered tensor
#: is opaque (no storage), so it could not be deep-copied or pickled with the module.
_PACKED: "weakref.WeakKeyDictionary[nn.Module, _Packed]" = weakref.WeakKeyDictionary()


def packing_available() -> bool:
    """Whether this PyTorch build has the oneDNN operators that prepacked convolutions need."""
    mkldnn = getattr(torch.ops, "mkldnn", None)
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_convolution_pointwise")
        and hasattr(mkldnn, "_reorder_convolution_weight")
    )


def _fast_path(module: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether this call may use reordered weights (see the module docstring)."""
    return (
        not (module.training or torch.is_grad_enabled())
        and eager_cpu_float32_call(x, weight)
        and not (
            weight is not module.weight  # a caller passing other weights (e.g. a parametrization)
            or weight.is_inference()  # made under inference_mode: no version counter to watch
            or (module.bias is not None and module.bias.is_inference())
        )
    )


class PackedConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose inference calls reuse reordered weights; parameters and state dict unchanged.

    :func:`optimize_for_inference` turns a model's ``nn.Conv2d`` modules into
    this class in place; everything but eval-mode, gradient-free CPU float32
    calls runs ``nn.Conv2d``'s own code.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        # A static check TorchScript folds: a scripted graph holds the plain convolution only.
        if not torch.jit.is_scripting():
            if _fast_path(self, x, weight):
                return self._packed_forward(x, weight, bias)
            _PACKED.pop(self, None)  # training or capturing: the copy would only hold memory
        # nn.Conv2d._conv_forward for zero padding (the only mode packed convolutions have); super() cannot be scripted.
        return nn.functional.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _packed_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The convolution with the cached reordered weights, reordering them first when the parameters changed."""
        packed = _PACKED.get(self)
        if (
            packed is None
            or packed.weight() is not weight
            or packed.weight_version != weight._version
            or (packed.bias() if packed.bias is not None else None) is not bias
            or (bias is not None and packed.bias_version != bias._version)
        ):
            tensor = torch.ops.mkldnn._reorder_convolution_weight(
                weight, list(self.padding), list(self.stride), list(self.dilation), self.groups, list(x.shape)
            )
            packed = _Packed(
                weakref.ref(weight),
                weight._version,
                weakref.ref(bias) if bias is not None else None,
                bias._version if bias is not None else 0,
                tensor,
            )
            _PACKED[self] = packed
        return torch.ops.mkldnn._convolution_pointwise(
            x, packed.tensor, bias, list(self.padding), list(self.stride), list(self.dilation), self.groups, "none", [], ""
        )


def _packable(module: nn.Module) -> bool:
    """A plain ``nn.Conv2d`` with zero padding given as numbers (subclasses may compute differently)."""
    return (
        type(module) in (nn.Conv2d, PointwiseConv2d, PackedConv2d)
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def optimize_for_inference(model: ModuleT) -> ModuleT:
    """Prepare ``model`` for fast CPU inference, in place: eval mode, channels_last, prepacked convolutions.

    Returns ``model``. Its values are those of the model run channels_last,
    to float rounding; its parameters, state dict and module tree (apart from the
    class of its ``nn.Conv2d`` modules, now :class:`PackedConv2d`) do not
    change. Weights changed through ``param.data`` afterwards need another
    call (see the module docstring). Without oneDNN in this PyTorch build,
    only eval mode and channels_last apply.
    """
    model.eval()
    model.to(memory_format=torch.channels_last)
    pack = packing_available()
    for module in model.modules():
        _PACKED.pop(module, None)  # a new call forgets every reordered copy
        if pack and _packable(module):
            module.__class__ = PackedConv2d
    setattr(model, _OPTIMIZED_FLAG, True)
    return model


def is_optimized_for_inference(model: nn.Module) -> bool:
    """Whether :func:`optimize_for_inference` was applied to ``model``."""
    return bool(getattr(model, _OPTIMIZED_FLAG, False))
