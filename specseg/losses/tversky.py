"""Tversky loss: Dice with separate penalties for false positives and negatives."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import check_range
from ._overlap import OverlapLoss
from .functional import soft_tversky_score


class TverskyLoss(OverlapLoss):
    """Tversky loss ``(mean_c (1 - tversky_c)) ** gamma``.

    ``alpha`` weighs false positives and ``beta`` false negatives;
    ``alpha = beta = 0.5`` with ``gamma = 1`` is the Dice loss.  ``gamma``
    (the focal-Tversky exponent) is applied after the class average.  The
    other options are those of :class:`~specseg.losses.DiceLoss`.
    """

    def __init__(
        self,
        mode: str,
        classes: Sequence[int] | None = None,
        log_loss: bool = False,
        from_logits: bool = True,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        eps: float = 1e-7,
        alpha: float = 0.5,
        beta: float = 0.5,
        gamma: float = 1.0,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__(mode, classes, log_loss, from_logits, smooth, ignore_index, eps, class_weights)
        self.alpha = check_range("TverskyLoss", "alpha", alpha, low=0.0)
        self.beta = check_range("TverskyLoss", "beta", beta, low=0.0)
        self.gamma = check_range("TverskyLoss", "gamma", gamma, low=0.0, low_inclusive=False)

    def compute_score(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-class Tversky index over batch and pixels."""
        return soft_tversky_score(output, target, self.alpha, self.beta, self.smooth, self.eps, dims=(0, 2))

    def _reduce_classes(self, loss: torch.Tensor) -> torch.Tensor:
        """Class average raised to ``gamma``."""
        return super()._reduce_classes(loss) ** self.gamma
