"""What a forward pass allocates, measured on the meta device before anything real is allocated.

The parameters are only part of what a build costs: ``specseg build`` runs
a test forward pass, and its activations can dwarf the weights (a
``head.upsampling: 64`` mask at 256x256 input is a 16384x16384 map per
class; an 8192x8192 input gives gigabytes of encoder features).
:func:`peak_activation_bytes` runs the model's forward on meta tensors (no
data, no memory) under a dispatch mode that follows every tensor the
forward creates: the bytes of the storages alive at the same time, at
their peak, are what the real forward needs at least. The memory guard
adds :data:`WORKSPACE_FACTOR` on top for what kernels allocate outside
tensors (convolution workspaces, reordered weights).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from torch import nn

#: The guard's margin over the measured peak, for kernels' workspaces and temporaries inside composite functions.
WORKSPACE_FACTOR = 1.5


def activation_upper_bound(model: "nn.Module", shape: Sequence[int], upsampling: int) -> int | None:
    """A quick, generous bound on the forward's activations, or None when there is none this simple.

    As if every convolution's output had the input's resolution times the
    head's ``upsampling`` (no map is larger in a convolutional network whose
    only upsampling beyond the input is the head's) and all were alive at once.
    None for models with attention (their maps grow with the square of the
    pixels) or without convolutions: those are measured
    (:func:`peak_activation_bytes`). The guard measures only when this bound
    does not fit the limit, because the first meta-device forward in a
    process costs seconds (torch imports its compiler stack for meta kernels).
    """
    from torch import nn

    channels = 0
    for module in model.modules():
        name = type(module).__name__.lower()
        if "attention" in name or isinstance(module, nn.MultiheadAttention):
            return None
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            channels += module.out_channels
    if channels == 0:
        return None
    n, c, h, w = (int(v) for v in shape)
    return 4 * n * h * w * (c + channels * max(1, upsampling) ** 2)


def peak_activation_bytes(model: "nn.Module", shape: Sequence[int]) -> int:
    """The peak bytes of tensors alive at once during ``model``'s inference forward on an input of ``shape``.

    ``model`` must be on the meta device. The input counts; parameters and
    buffers do not (the guard counts them separately). The forward runs in
    eval mode under ``torch.no_grad`` (as ``specseg build``'s test pass) and
    the model's mode is restored. Raises whatever the forward raises (e.g.
    ``ValueError`` for an input size the model cannot take).
    """
    import torch
    import torch.nn.functional as F
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten

    live: dict[int, tuple[Any, int]] = {}
    peak = [0]

    def track(tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        ref = StorageWeakRef(storage)
        if ref.cdata not in live:
            live[ref.cdata] = (ref, storage.nbytes())

    def measure() -> None:
        for key in [k for k, (ref, _) in live.items() if ref.expired()]:
            del live[key]
        peak[0] = max(peak[0], sum(size for _, size in live.values()))

    # The meta kernels of the normalisations are Python decompositions whose first use imports
    # torch._dynamo (seconds); their output has the input's shape, made here. (A dispatch-level
    # mode would import it too, which is why this follows torch functions, not aten operators.)
    same_shape = {F.batch_norm, torch.batch_norm, F.instance_norm, torch.instance_norm, F.group_norm, torch.group_norm, F.layer_norm, torch.layer_norm}

    class Follow(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            if func in same_shape:
                x = args[0] if args else kwargs["input"]
                out = torch.empty_like(x)
            else:
                out = func(*args, **kwargs)
            for value in tree_flatten(out)[0]:
                if isinstance(value, torch.Tensor):
                    track(value)
            measure()
            return out

    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(tuple(int(v) for v in shape), device="meta")
        track(x)
        with torch.no_grad(), Follow():
            out = model(x)
        del out
    finally:
        model.train(was_training)
    return peak[0]
