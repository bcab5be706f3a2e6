"""The model a spec compiles to: encoder, decoder, segmentation head, optional classification head."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable

import torch
from torch import nn

from specseg.capture import is_capturing
from specseg.decoders.base import Decoder
from specseg.encoders.base import EncoderMixin
from specseg.errors import InputShapeError
from specseg.inference import is_optimized_for_inference
from specseg.input_shape import fixed_input_size

if TYPE_CHECKING:
    from specseg.spec.model import ModelSpec


def nearest_multiples(size: int, stride: int) -> tuple[int, int]:
    """The multiples of ``stride`` just below and above ``size`` (the lower at least ``stride``)."""
    lower = max(stride, size // stride * stride)
    upper = -(-size // stride) * stride
    return lower, upper


def deepest_minimum(decoders: Iterable[Decoder]) -> int:
    """The smallest deepest feature map (its side) every decoder can take.

    Some decoders need a minimum size of the deepest feature map (PAN's
    pyramid pooling: 8x8), and normalisation over one pixel is undefined
    (2x2 at least, see :func:`normalises_single_pixels`).
    """
    return max(
        (max(d.min_deepest_size, 2 if normalises_single_pixels(d) else 0) for d in decoders), default=0
    )


def input_multiple(encoder: nn.Module, decoders: Iterable[nn.Module]) -> int:
    """What input heights and widths must be multiples of, for architectures that need divisible inputs."""
    return math.lcm(int(encoder.output_stride), *(int(d.input_multiple) for d in decoders))


def check_input(
    x: torch.Tensor,
    encoder: EncoderMixin,
    decoders: Iterable[Decoder],
    min_deepest: int,
    requires_divisible_input: bool,
    architecture: str,
) -> None:
    """Raise :class:`~specseg.errors.InputShapeError` (a ``ValueError`` and, as in SMP, a ``RuntimeError``) naming valid sizes when ``x`` does not fit the encoder and every decoder."""
    if x.dim() != 4:
        raise InputShapeError(f"expected an (N, C, H, W) input, got shape {tuple(x.shape)}")
    channels = encoder.in_channels
    if x.shape[1] != channels:
        raise InputShapeError(f"expected {channels} input channels (encoder.in_channels), got {x.shape[1]}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if min_deepest:
        deepest_stride = int(encoder.output_stride)
        need = min_deepest * deepest_stride
        if h < need or w < need:
            raise InputShapeError(
                f"a {architecture} model needs inputs of at least {need}x{need} (its deepest feature "
                f"map, at stride {deepest_stride}, must be at least {min_deepest}x{min_deepest}); got {h}x{w}"
            )
    # Fixed-size and window encoders declare the sizes they take (specseg.encoders.sizes.SizeRule).
    rule = getattr(encoder, "input_size_rule", None)
    if rule is not None and not (rule.allows(h) and rule.allows(w)):
        nh, nw = rule.nearest(h), rule.nearest(w)
        nearest = f" Nearest valid size: {nh}x{nw} (pad or resize the input)" if nh and nw else ""
        raise InputShapeError(
            f"the encoder ({getattr(encoder, 'name', type(encoder).__name__)}) takes input heights and widths of "
            f"{rule.describe()}; got {h}x{w}.{nearest}"
        )
    # A ViT whose patch embedding was built for one size (DPT's encoders) says so itself, naming the fix.
    check_size = getattr(encoder, "check_input_size", None)
    if callable(check_size):
        check_size(x)
    if not requires_divisible_input:
        return
    # Some decoders need more than the encoder's stride (DPT: patch size and fusion depth).
    stride = input_multiple(encoder, decoders)
    if h % stride or w % stride:
        hl, hu = nearest_multiples(h, stride)
        wl, wu = nearest_multiples(w, stride)
        # Never suggest a size the minimum above refuses.
        floor = min_deepest * int(encoder.output_stride)
        hl, wl = (hu if hl < floor else hl), (wu if wl < floor else wl)
        suggestion = f"{hl}x{wl} or {hu}x{wu}" if (hl, wl) != (hu, wu) else f"{hu}x{wu}"
        raise InputShapeError(
            f"input height and width must be multiples of {stride} "
            f"for a {architecture} model; got {h}x{w}. Nearest valid sizes: "
            f"{suggestion} (pad or resize the input)"
        )


class SpecNetwork(nn.Module):
    """What every network built from a spec shares: input checks, inference helpers, ``.spec``."""

    # Declared for type checkers only: torch.jit.script reads class annotations and, with postponed
    # evaluation (the strings 'EncoderMixin', 'int'), cannot resolve them.
    if TYPE_CHECKING:
        encoder: EncoderMixin
        requires_divisible_input: bool
        #: The smallest deepest feature map every decoder takes (see :func:`deepest_minimum`).
        min_deepest_size: int

    def decoder_modules(self) -> list[Decoder]:
        """The decoders reading the encoder's features."""
        raise NotImplementedError

    def parts(self) -> list[tuple[str, nn.Module | None]]:
        """The network's parts by name, in summary order (None for an absent optional part)."""
        raise NotImplementedError

    def check_input_shape(self, x: torch.Tensor) -> None:
        """Raise :class:`~specseg.errors.InputShapeError` (a ``ValueError``) naming valid sizes when H or W does not fit the architecture."""
        check_input(
            x, self.encoder, self.decoder_modules(), self.min_deepest_size, self.requires_divisible_input, self.spec.architecture
        )

    def default_input_size(self, preferred: int = 256) -> int:
        """A square input size this network takes: ``preferred`` when valid, else the nearest valid one.

        ``specseg build``, ``--dry-run`` and exports test with it: fixed-size
        encoders (Swin built for 224x224, MaxViT's windows) declare which sizes
        they take, and a ViT's patch embedding may be built for one size.
        """
        rule = getattr(self.encoder, "input_size_rule", None)
        if rule is None:
            fixed = fixed_input_size(self)
            return fixed[0] if fixed is not None and fixed[0] == fixed[1] else preferred
        if self.requires_divisible_input:
            rule = rule.combined(input_multiple(self.encoder, self.decoder_modules()))
        return rule.nearest(preferred) or preferred

    def _relayout_input(self, x: torch.Tensor) -> bool:
        """After :meth:`optimize_for_inference`, outside tracing: whether to run a contiguous input channels_last (and convert back)."""
        return (
            is_optimized_for_inference(self)
            and not self.training
            and not torch.is_grad_enabled()
            and x.dim() == 4
            and not x.is_contiguous(memory_format=torch.channels_last)
        )

    def _prepared_input(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """What every ``forward`` runs first: the input checked, and run channels_last when optimised.

        Returns the input to run and whether it was relaid out (the outputs
        are then made contiguous again).
        """
        relayout = False
        # A static check TorchScript folds: scripted graphs hold no input check and no relayout.
        if not torch.jit.is_scripting():
            tracing = is_capturing()
            if not tracing:
                self.check_input_shape(x)
            relayout = not tracing and self._relayout_input(x)
        if relayout:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, relayout

    def optimize_for_inference(self) -> "SpecNetwork":
        """Prepare for fast CPU inference, in place: eval mode, channels_last, prepacked convolutions.

        The outputs are those of the model run channels_last, to float
        rounding (a contiguous input is converted, and the outputs converted back);
        the parameters and state dict do not change. The reordered weights
        are a cache: weights changed through ``param.data`` afterwards need
        another call. See :mod:`specseg.inference`. Returns ``self``.
        """
        from specseg.inference import optimize_for_inference

        return optimize_for_inference(self)

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> Any:
        """Switch to eval mode and run ``forward`` under ``torch.inference_mode``."""
        if self.training:
            self.eval()
        return self(x)


class SegmentationModel(SpecNetwork):
    """``forward(x)`` returns the mask ``(N, classes, H, W)``, or ``(mask, labels)`` with aux_params.

    ``requires_divisible_input`` is set by architectures whose decoders need
    the input height and width to be multiples of the encoder's output
    stride; other sizes are refused with the nearest valid sizes named.
    """

    def __init__(
        self,
        encoder: EncoderMixin,
        decoder: Decoder,
        segmentation_head: nn.Module,
        classification_head: nn.Module | None,
        spec: "ModelSpec",
        requires_divisible_input: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.segmentation_head = segmentation_head
        self.classification_head = classification_head
        self.spec = spec
        self.requires_divisible_input = requires_divisible_input
        self.min_deepest_size = deepest_minimum([decoder])

    def decoder_modules(self) -> list[Decoder]:
        """The one decoder."""
        return [self.decoder]

    def parts(self) -> list[tuple[str, nn.Module | None]]:
        """``encoder``, ``decoder``, ``segmentation_head``, ``classification_head`` (None without aux_params)."""
        return [(name, getattr(self, name)) for name in ("encoder", "decoder", "segmentation_head", "classification_head")]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run encoder, decoder and heads."""
        x, relayout = self._prepared_input(x)
        features = self.encoder(x)
        masks = self.segmentation_head(self.decoder(features))
        if self.classification_head is not None:
            labels = self.classification_head(features[-1])
            return (masks.contiguous(), labels.contiguous()) if relayout else (masks, labels)
        return masks.contiguous() if relayout else masks


def normalises_single_pixels(module: torch.nn.Module) -> bool:
    """Whether ``module`` holds a normalisation that takes its statistics from the map itself.

    Instance norm, batch norm without running statistics and group norm with
    one channel per group: over a 1x1 map of one image they have one value
    (torch refuses them, in eval mode too), so the deepest map must be 2x2 at least.
    """
    for m in module.modules():
        if isinstance(m, torch.nn.InstanceNorm2d) or (isinstance(m, torch.nn.BatchNorm2d) and not m.track_running_stats):
            return True
        if isinstance(m, torch.nn.GroupNorm) and m.num_groups == m.num_channels:
            return True
    return False
