"""Segmentation metrics, numerically equal to segmentation_models_pytorch 0.6.

First count confusion statistics per image and class with :func:`get_stats`,
then score them with any metric function and a ``reduction``::

    tp, fp, fn, tn = get_stats(output, target, mode="multilabel", threshold=0.5)
    iou = iou_score(tp, fp, fn, tn, reduction="micro")
"""

from .scores import (
    accuracy,
    balanced_accuracy,
    f1_score,
    false_discovery_rate,
    false_negative_rate,
    false_omission_rate,
    false_positive_rate,
    fbeta_score,
    iou_score,
    negative_likelihood_ratio,
    negative_predictive_value,
    positive_likelihood_ratio,
    positive_predictive_value,
    precision,
    recall,
    sensitivity,
    specificity,
)
from .stats import get_stats

__all__ = [
    "get_stats",
    "fbeta_score",
    "f1_score",
    "iou_score",
    "accuracy",
    "precision",
    "recall",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "positive_predictive_value",
    "negative_predictive_value",
    "false_negative_rate",
    "false_positive_rate",
    "false_discovery_rate",
    "false_omission_rate",
    "positive_likelihood_ratio",
    "negative_likelihood_ratio",
]
