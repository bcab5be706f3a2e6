"""A timm classification network re-homed as an encoder with SMP's state-dict layout.

For DenseNet, Xception, the Inception networks, DPN, SE-Net and SK-ResNet(X)t,
timm's full model has exactly the parameter names of SMP's encoder plus a
classifier: SMP keeps the Cadene/torchvision layout and timm kept it for
weight compatibility. :class:`TimmBodyEncoder` builds the full timm model
(``features_only`` would drop or re-tap layers SMP uses), registers its
children under their own names except the classifier and pooling, and leaves
to each family's ``forward`` which modules' outputs are the features.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.errors import EncoderBuildError


class NotDilatable(ValueError):
    """The network downsamples by pooling, so no output stride below 32 can be produced (SMP refuses it too)."""


class TimmBodyEncoder(nn.Module, EncoderMixin):
    """Base of the encoders whose modules are a timm model's, under SMP's key names.

    Subclasses call :meth:`_adopt` with the timm model and the names of the
    children to leave out, set ``_out_channels`` and implement ``forward``;
    ``dilation_refused`` (a reason) marks networks SMP cannot dilate.
    """

    #: Why the network cannot be dilated; None where :meth:`get_stages` says which modules to dilate.
    dilation_refused: str | None = None

    def __init__(self, depth: int = 5) -> None:
        super().__init__()
        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"{type(self).__name__} depth must be 1..5, got {depth}", "depth")
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32

    def _adopt(self, model: nn.Module, drop: Iterable[str]) -> None:
        """Register ``model``'s children on this module under the same names, except ``drop``."""
        dropped = set(drop)
        unknown = dropped - {name for name, _ in model.named_children()}
        if unknown:
            raise ValueError(f"timm model {type(model).__name__} has no children {sorted(unknown)}")
        for name, child in model.named_children():
            if name not in dropped:
                self.add_module(name, child)

    def make_dilated(self, output_stride: int) -> None:
        """Dilate the stages deeper than ``output_stride``, or raise :class:`NotDilatable` with the reason."""
        if self.dilation_refused is not None:
            raise NotDilatable(self.dilation_refused)
        super().make_dilated(output_stride)

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:  # pragma: no cover - overridden where dilatable
        """Modules that run at strides 16 and 32, for dilation."""
        raise NotImplementedError(self.dilation_refused or f"{type(self).__name__} does not support output_stride < 32")


def create_timm_model(name: str, **kwargs: Any) -> nn.Module:
    """timm's full model ``name``, randomly initialised (weights are loaded into the encoder afterwards)."""
    import timm

    return timm.create_model(name, pretrained=False, **kwargs)


def pad_for_exact_halving(model: nn.Module) -> None:
    """SMP's fix for the Inception networks: pad 3x3 convolutions and max-pools by 1, so each stride-2 step halves exactly."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            m.padding = (1, 1)
        if isinstance(m, nn.MaxPool2d):
            m.padding = (1, 1)
