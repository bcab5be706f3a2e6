"""Public metric functions of confusion counts from :func:`~specseg.metrics.get_stats`.

Every function takes ``tp, fp, fn, tn`` tensors of shape ``(N, C)`` and:

* ``reduction``: how to aggregate over images and classes --
  ``"micro"`` (sum all counts, then score), ``"macro"`` (sum over images,
  score per class, average classes), ``"weighted"`` (as macro, weighted by
  ``class_weights``), ``"micro-imagewise"`` (sum over classes, score per
  image, average images), ``"macro-imagewise"`` (score per image and
  class, average classes then images), ``"weighted-imagewise"`` (as
  macro-imagewise with ``class_weights``), ``"none"``/``None`` (the
  ``(N, C)`` scores).
* ``class_weights``: per-class weights, required for ``weighted*``.
* ``zero_division``: value for a 0/0 score; ``"warn"`` uses 0 and warns.
  ``micro`` never replaces a 0/0 (it stays NaN), as in SMP 0.6.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import formulas
from .reduction import ZeroDivision, compute_metric

Tensor = torch.Tensor


def fbeta_score(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    beta: float = 1.0,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """F-beta score: ``beta > 1`` favours recall, ``beta < 1`` precision."""
    return compute_metric(
        formulas.fbeta, tp, fp, fn, tn, reduction, class_weights, zero_division, beta=beta
    )


def f1_score(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """F1 score, the harmonic mean of precision and recall."""
    return compute_metric(formulas.fbeta, tp, fp, fn, tn, reduction, class_weights, zero_division, beta=1.0)


def iou_score(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Intersection over union (Jaccard index)."""
    return compute_metric(formulas.iou, tp, fp, fn, tn, reduction, class_weights, zero_division)


def accuracy(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Accuracy ``(TP + TN) / all``."""
    return compute_metric(formulas.accuracy, tp, fp, fn, tn, reduction, class_weights, zero_division)


def sensitivity(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Sensitivity, recall, hit rate or true positive rate (TPR)."""
    return compute_metric(formulas.sensitivity, tp, fp, fn, tn, reduction, class_weights, zero_division)


def specificity(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Specificity, selectivity or true negative rate (TNR)."""
    return compute_metric(formulas.specificity, tp, fp, fn, tn, reduction, class_weights, zero_division)


def balanced_accuracy(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Balanced accuracy, the mean of sensitivity and specificity."""
    return compute_metric(formulas.balanced_accuracy, tp, fp, fn, tn, reduction, class_weights, zero_division)


def positive_predictive_value(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Precision or positive predictive value (PPV)."""
    return compute_metric(formulas.positive_predictive_value, tp, fp, fn, tn, reduction, class_weights, zero_division)


def negative_predictive_value(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Negative predictive value (NPV)."""
    return compute_metric(formulas.negative_predictive_value, tp, fp, fn, tn, reduction, class_weights, zero_division)


def false_negative_rate(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Miss rate or false negative rate (FNR)."""
    return compute_metric(formulas.false_negative_rate, tp, fp, fn, tn, reduction, class_weights, zero_division)


def false_positive_rate(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Fall-out or false positive rate (FPR)."""
    return compute_metric(formulas.false_positive_rate, tp, fp, fn, tn, reduction, class_weights, zero_division)


def false_discovery_rate(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """False discovery rate (FDR)."""
    return compute_metric(formulas.false_discovery_rate, tp, fp, fn, tn, reduction, class_weights, zero_division)


def false_omission_rate(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """False omission rate (FOR)."""
    return compute_metric(formulas.false_omission_rate, tp, fp, fn, tn, reduction, class_weights, zero_division)


def positive_likelihood_ratio(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Positive likelihood ratio (LR+)."""
    return compute_metric(formulas.positive_likelihood_ratio, tp, fp, fn, tn, reduction, class_weights, zero_division)


def negative_likelihood_ratio(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    class_weights: Sequence[float] | None = None,
    zero_division: ZeroDivision = 1.0,
) -> Tensor:
    """Negative likelihood ratio (LR-)."""
    return compute_metric(formulas.negative_likelihood_ratio, tp, fp, fn, tn, reduction, class_weights, zero_division)


#: Alias of :func:`positive_predictive_value`.
precision = positive_predictive_value
#: Alias of :func:`sensitivity`.
recall = sensitivity
