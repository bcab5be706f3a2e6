"""Turn a validated ``loss:`` spec section into a loss module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from specseg.spec.loss import LossSpec, LossTerm, iter_terms

from specseg.spec.heads import SegmentationHeadSpec
from specseg.spec.multitask import MultiTaskSpec

from .dice import DiceLoss
from .focal import FocalLoss
from .jaccard import JaccardLoss
from .lovasz import LovaszLoss
from .mcc import MCCLoss
from .multitask import MultiTaskLoss
from .soft_bce import SoftBCEWithLogitsLoss
from .soft_ce import SoftCrossEntropyLoss
from .tversky import TverskyLoss
from .weighted_sum import WeightedSumLoss

# Spec fields that are not constructor options of the loss module.
_TERM_ONLY_FIELDS = {"name", "weight"}


def _channel_weight(values: list[float] | None, spatial: bool = True) -> torch.Tensor | None:
    """Per-channel list -> ``(C, 1, 1)`` tensor, so it broadcasts over ``(N, C, H, W)`` channels.

    For a classification head's ``(N, C)`` output (``spatial=False``) it is ``(C,)``.
    """
    if values is None:
        return None
    weight = torch.tensor(values, dtype=torch.float)
    return weight.reshape(-1, 1, 1) if spatial else weight


def _soft_bce(bce_weight: list[float] | None, pos_weight: list[float] | None, spatial: bool = True, **options: Any) -> nn.Module:
    """SoftBCE with the spec's renamed, per-channel weight lists mapped to SMP's tensor arguments."""
    return SoftBCEWithLogitsLoss(weight=_channel_weight(bce_weight, spatial), pos_weight=_channel_weight(pos_weight, spatial), **options)


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


def build_term(term: LossTerm, spatial: bool = True) -> nn.Module:
    """Build the (unweighted) loss module of one spec term.

    ``spatial=False`` is for a classification head's ``(N, C)`` output: per-class weight lists become ``(C,)``.
    """
    options = term.model_dump(exclude=_TERM_ONLY_FIELDS)
    if term.name == "soft_bce":
        options["spatial"] = spatial
    return _FACTORIES[term.name](**options)


def build_loss(loss_spec: LossSpec, spatial: bool = True) -> nn.Module:
    """Build the loss module for a ``loss:`` section.

    A single term with weight 1 gives its loss module directly; a list of
    terms, or a single term with another weight, gives a
    :class:`WeightedSumLoss` returning ``sum(weight_i * loss_i(pred, target))``.
    """
    terms = [term for _, term in iter_terms(loss_spec)]
    if not isinstance(loss_spec, list) and loss_spec.weight == 1.0:
        return build_term(loss_spec, spatial)
    return WeightedSumLoss([(term.weight, build_term(term, spatial)) for term in terms])


def build_multitask_loss(spec: MultiTaskSpec) -> MultiTaskLoss:
    """The loss of a version-2 spec: each head's loss section, summed over heads (see :class:`MultiTaskLoss`)."""
    assert spec.loss is not None
    return MultiTaskLoss(
        {
            name: build_loss(section, spatial=isinstance(spec.heads[name], SegmentationHeadSpec))
            for name, section in spec.loss.items()
        }
    )
