"""Tensor-level loss formulas shared by the loss modules.

These are plain functions on already-prepared tensors (activated,
flattened, ignored pixels removed); the modules own the mode handling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Dims = int | Sequence[int] | None


def soft_tversky_score(
    output: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    beta: float,
    smooth: float = 0.0,
    eps: float = 1e-7,
    dims: Dims = None,
) -> torch.Tensor:
    """Tversky index ``(TP + s) / (TP + alpha*FP + beta*FN + s)`` of soft masks.

    TP is the soft intersection ``sum(min(p, t))``, written as
    ``(sum p + sum t - |p - t|_1) / 2`` so soft targets are handled (for hard
    0/1 targets it equals ``sum(p * t)``).  The denominator is clamped to
    ``eps``.  Sums run over ``dims`` (all elements when ``None``).
    """
    if output.shape != target.shape:
        raise ValueError(f"output shape {tuple(output.shape)} != target shape {tuple(target.shape)}")
    if dims is None:
        output_sum, target_sum = output.sum(), target.sum()
        l1 = (output - target).abs().sum()
    else:
        output_sum, target_sum = output.sum(dim=dims), target.sum(dim=dims)
        l1 = (output - target).abs().sum(dim=dims)
    tp = (output_sum + target_sum - l1) / 2
    fp = output_sum - tp
    fn = target_sum - tp
    return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(eps)


def soft_dice_score(
    output: torch.Tensor, target: torch.Tensor, smooth: float = 0.0, eps: float = 1e-7, dims: Dims = None
) -> torch.Tensor:
    """Dice coefficient as the Tversky index with ``alpha = beta = 0.5``.

    Note the consequence: ``smooth`` enters as ``(2TP + 2s) / (|P| + |T| + 2s)``.
    """
    return soft_tversky_score(output, target, 0.5, 0.5, smooth, eps, dims)


def soft_jaccard_score(
    output: torch.Tensor, target: torch.Tensor, smooth: float = 0.0, eps: float = 1e-7, dims: Dims = None
) -> torch.Tensor:
    """Jaccard index (IoU) as the Tversky index with ``alpha = beta = 1``."""
    return soft_tversky_score(output, target, 1.0, 1.0, smooth, eps, dims)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a focal-style reduction; ``batchwise_mean`` sums over dim 0 only."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "batchwise_mean":
        return loss.sum(0)
    return loss


def focal_loss_with_logits(
    output: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    reduction: str = "mean",
    normalized: bool = False,
    reduced_threshold: float | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Sigmoid focal loss ``(1 - p_t)^gamma * BCE`` of logits against 0/1 (or soft) targets.

    ``alpha`` weights positives by ``alpha`` and negatives by ``1 - alpha``;
    ``reduced_threshold`` switches to the reduced focal loss, whose focal term
    is 1 where ``p_t < threshold``; ``normalized`` divides by the sum of focal
    terms (clamped to ``eps``).  ``reduction`` is ``mean``, ``sum``,
    ``batchwise_mean`` (sum over dim 0) or anything else for no reduction.
    """
    target = target.to(dtype=output.dtype, device=output.device)
    logpt = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    pt = torch.exp(-logpt)
    if reduced_threshold is None:
        focal_term = (1.0 - pt).pow(gamma)
    else:
        focal_term = ((1.0 - pt) / reduced_threshold).pow(gamma)
        focal_term = torch.where(pt < reduced_threshold, torch.ones_like(focal_term), focal_term)
    loss = focal_term * logpt
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    if normalized:
        loss = loss / focal_term.sum().clamp_min(eps)
    return _reduce(loss, reduction)


def label_smoothed_nll_loss(
    lprobs: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    ignore_index: int | None = None,
    reduction: str = "mean",
    dim: int = -1,
) -> torch.Tensor:
    """Negative log-likelihood with label smoothing on log-probabilities ``lprobs``.

    The loss is ``(1 - epsilon) * NLL + epsilon / C * sum_c(-log p_c)``.
    Pixels whose target is ``ignore_index`` contribute zero but still count
    in the ``mean`` denominator.  With ``ignore_index`` set, an unreduced
    loss keeps the class dimension as size 1.
    """
    if target.dim() == lprobs.dim() - 1:
        target = target.unsqueeze(dim)
    target = target.long()
    if ignore_index is not None:
        pad_mask = target.eq(ignore_index)
        safe_target = target.masked_fill(pad_mask, 0)  # gather needs a valid index
        nll = (-lprobs.gather(dim=dim, index=safe_target)).masked_fill(pad_mask, 0.0)
        smooth = (-lprobs.sum(dim=dim, keepdim=True)).masked_fill(pad_mask, 0.0)
    else:
        nll = (-lprobs.gather(dim=dim, index=target)).squeeze(dim)
        smooth = (-lprobs.sum(dim=dim, keepdim=True)).squeeze(dim)
    if reduction == "mean":
        nll, smooth = nll.mean(), smooth.mean()
    elif reduction == "sum":
        nll, smooth = nll.sum(), smooth.sum()
    eps_i = epsilon / lprobs.size(dim)
    return (1.0 - epsilon) * nll + eps_i * smooth
