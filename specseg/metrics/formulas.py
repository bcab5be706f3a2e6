"""Element-wise metric formulas of confusion counts (no reduction, no 0/0 handling).

Each takes ``tp, fp, fn, tn`` tensors of equal shape and returns a float
tensor of that shape; a 0/0 gives NaN, resolved later by the reduction.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def fbeta(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor, beta: float = 1.0) -> Tensor:
    """``(1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)``."""
    weighted_tp = (1 + beta**2) * tp
    return weighted_tp / (weighted_tp + beta**2 * fn + fp)


def iou(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``TP / (TP + FP + FN)``."""
    return tp / (tp + fp + fn)


def accuracy(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``(TP + TN) / all``."""
    return (tp + tn) / (tp + fp + fn + tn)


def sensitivity(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """True positive rate ``TP / (TP + FN)``."""
    return tp / (tp + fn)


def specificity(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """True negative rate ``TN / (TN + FP)``."""
    return tn / (tn + fp)


def balanced_accuracy(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """Mean of sensitivity and specificity."""
    return (sensitivity(tp, fp, fn, tn) + specificity(tp, fp, fn, tn)) / 2


def positive_predictive_value(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """Precision ``TP / (TP + FP)``."""
    return tp / (tp + fp)


def negative_predictive_value(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``TN / (TN + FN)``."""
    return tn / (tn + fn)


def false_negative_rate(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``1 - sensitivity``."""
    return 1 - sensitivity(tp, fp, fn, tn)


def false_positive_rate(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``1 - specificity``."""
    return 1 - specificity(tp, fp, fn, tn)


def false_discovery_rate(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``1 - precision``."""
    return 1 - positive_predictive_value(tp, fp, fn, tn)


def false_omission_rate(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``1 - negative predictive value``."""
    return 1 - negative_predictive_value(tp, fp, fn, tn)


def positive_likelihood_ratio(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``sensitivity / false positive rate`` (``inf`` when FPR is 0)."""
    return sensitivity(tp, fp, fn, tn) / false_positive_rate(tp, fp, fn, tn)


def negative_likelihood_ratio(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    """``false negative rate / specificity``."""
    return false_negative_rate(tp, fp, fn, tn) / specificity(tp, fp, fn, tn)
