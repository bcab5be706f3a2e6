"""Model heads: the segmentation head and the optional classification head."""

from specseg.heads.classification import ClassificationHead
from specseg.heads.segmentation import SegmentationHead

__all__ = ["ClassificationHead", "SegmentationHead"]
