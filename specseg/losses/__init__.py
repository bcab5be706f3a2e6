"""Segmentation losses, numerically equal to segmentation_models_pytorch 0.6.

Every loss is a ``torch.nn.Module`` called as ``loss(y_pred, y_true)``;
mode-aware losses take one of :data:`BINARY_MODE`, :data:`MULTICLASS_MODE`
and :data:`MULTILABEL_MODE`.  :func:`specseg.losses.build.build_loss` turns
a ``loss:`` spec section into one of these modules.
"""

from .constants import BINARY_MODE, MODES, MULTICLASS_MODE, MULTILABEL_MODE
from .dice import DiceLoss
from .focal import FocalLoss
from .jaccard import JaccardLoss
from .lovasz import LovaszLoss
from .mcc import MCCLoss
from .soft_bce import SoftBCEWithLogitsLoss
from .soft_ce import SoftCrossEntropyLoss
from .tversky import TverskyLoss
from .weighted_sum import WeightedSumLoss

__all__ = [
    "BINARY_MODE",
    "MULTICLASS_MODE",
    "MULTILABEL_MODE",
    "MODES",
    "JaccardLoss",
    "DiceLoss",
    "FocalLoss",
    "LovaszLoss",
    "SoftBCEWithLogitsLoss",
    "SoftCrossEntropyLoss",
    "TverskyLoss",
    "MCCLoss",
    "WeightedSumLoss",
]
