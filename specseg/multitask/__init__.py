"""Multi-task networks (spec format version 2): one encoder, named decoders, named heads."""

from specseg.multitask.model import MultiTaskModel

__all__ = ["MultiTaskModel"]
