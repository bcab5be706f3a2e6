"""1x1 convolutions that run through oneDNN on channels_last CPU inputs, whatever the thread count.

PyTorch picks a float32 CPU convolution's kernel by a rule that sends 1x1,
stride-1 convolutions of fewer than 16 images to its native kernel (a
matrix product) when it runs on one thread, and to oneDNN otherwise. On a
channels_last input oneDNN is 2-3x faster at one thread too (measured on
this project's benchmark machine: 1.35 ms vs 2.51 ms for 64 -> 16 channels
on a 256x256 map, 42 ms vs 87 ms for SegFormer's 1024 -> 256 fusion at
128x128), and one thread per process is how CPU inference is usually
served. :class:`PointwiseConv2d` makes the multi-threaded choice at every
thread count for gradient-free calls on channels_last maps of more than
20480 values (PyTorch's own bound, below which its native kernel is
faster); contiguous inputs, where oneDNN would first convert the layout
(and is slower), and every other call keep PyTorch's own choice.

The values are those oneDNN computes, as with several threads: equal to the
native kernel's to float rounding. Parameters, state dict and everything
but the class name are those of ``nn.Conv2d``.
"""

from __future__ import annotations

import torch
from torch import nn

from specseg.capture import is_capturing

#: PyTorch's own threshold: below this many input elements its native kernel beats oneDNN.
ONEDNN_MIN_ELEMENTS = 20480


def eager_cpu_float32_call(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """An eager call (no graph capture, no autocast) on a plain 4-D CPU float32 tensor with float32 weights.

    What every oneDNN shortcut of specseg's convolutions requires before its own conditions.
    """
    return not (
        type(x) is not torch.Tensor  # fx proxies, fake and other tensor subclasses
        or is_capturing()
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or x.dim() != 4
        or torch.is_autocast_enabled("cpu")
    )


def _onednn_call(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether this call should run through oneDNN (see the module docstring)."""
    return eager_cpu_float32_call(x, weight) and not (
        x.numel() <= ONEDNN_MIN_ELEMENTS
        # Only true channels_last maps: a (N, C, 1, 1) tensor is both layouts at once.
        or x.is_contiguous()
        or not x.is_contiguous(memory_format=torch.channels_last)
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)))
        or not torch.backends.mkldnn.is_available()
        or not torch.backends.mkldnn.enabled
    )


class PointwiseConv2d(nn.Conv2d):
    """A 1x1, stride-1, undilated ``nn.Conv2d`` that runs through oneDNN on channels_last CPU inputs.

    Built models hold this class in place of such convolutions
    (:func:`use_pointwise_convolutions`); see the module docstring for when
    the oneDNN kernel is used and why.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        # A static check TorchScript folds: scripted graphs compile only the plain convolution.
        if not torch.jit.is_scripting():
            if _onednn_call(x, weight, bias):
                return torch.mkldnn_convolution(x, weight, bias, self.padding, self.stride, self.dilation, self.groups)
        # nn.Conv2d._conv_forward for zero padding (the only mode a PointwiseConv2d has); super() cannot be scripted.
        return nn.functional.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def is_pointwise(module: nn.Module) -> bool:
    """A plain ``nn.Conv2d`` with a 1x1 kernel, stride 1, no dilation and zero padding given as numbers."""
    return (
        type(module) is nn.Conv2d
        and module.kernel_size == (1, 1)
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def use_pointwise_convolutions(model: nn.Module) -> int:
    """Turn every plain 1x1 ``nn.Conv2d`` of ``model`` into a :class:`PointwiseConv2d`, in place.

    Returns how many were turned. Subclasses of ``nn.Conv2d`` (which may
    compute differently, e.g. timm's "same"-padding convolutions) are left alone.
    """
    count = 0
    for module in model.modules():
        if is_pointwise(module):
            module.__class__ = PointwiseConv2d
            count += 1
    return count
