"""Turn a validated ``loss:`` spec section into a loss module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from specseg.spec.loss import LossSpec, LossTerm, iter_terms

from .dice import DiceLoss
from .focal import FocalLoss
from .jaccard import JaccardLoss
from .lovasz import LovaszLoss
from .mcc import MCCLoss
from .soft_bce import SoftBCEWithLogitsLoss
from .soft_ce import SoftCrossEntropyLoss
from .tversky import TverskyLoss
from .weighted_sum import WeightedSumLoss

# Spec fields that are not constructor options of the loss module.
_TERM_ONLY_FIELDS = {"name", "weight"}


def _channel_weight(values: list[float] | None) -> torch.Tensor | None:
    """Per-channel list -> ``(C, 1, 1)`` tensor, so it broadcasts over ``(N, C, H, W)`` channels."""
    return None if values is None else torch.tensor(values, dtype=torch.float).reshape(-1, 1, 1)


def _soft_bce(bce_weight: list[float] | None, pos_weight: list[float] | None, **options: Any) -> nn.Module:
    """SoftBCE with the spec's renamed, per-channel weight lists mapped to SMP's tensor arguments."""
    return SoftBCEWithLogitsLoss(weight=_channel_weight(bce_weight), pos_weight=_channel_weight(pos_weight), **options)


_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "jaccard": JaccardLoss,
    "dice": DiceLoss,
    "focal": FocalLoss,
    "lovasz": LovaszLoss,
    "soft_bce": _soft_bce,
    "soft_cross_entropy": SoftCrossEntropyLoss,
    "tversky": TverskyLoss,
    "mcc": MCCLoss,
}


def build_term(term: LossTerm) -> nn.Module:
    """Build the (unweighted) loss module of one spec term."""
    options = term.model_dump(exclude=_TERM_ONLY_FIELDS)
    return _FACTORIES[term.name](**options)


def build_loss(loss_spec: LossSpec) -> nn.Module:
    """Build the loss module for a ``loss:`` section.

    A single term with weight 1 gives its loss module directly; a list of
    terms, or a single term with another weight, gives a
    :class:`WeightedSumLoss` returning ``sum(weight_i * loss_i(pred, target))``.
    """
    terms = [term for _, term in iter_terms(loss_spec)]
    if not isinstance(loss_spec, list) and loss_spec.weight == 1.0:
        return build_term(loss_spec)
    return WeightedSumLoss([(term.weight, build_term(term)) for term in terms])
