"""specseg: declarative segmentation model specs, validated and compiled to PyTorch.

Importing :mod:`specseg` is light: torch is imported only when a model is
built (``specseg.build``), so validation stays fast and torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

from specseg._version import __version__
from specseg.errors import InputShapeError, SpecError, SpecIssue, SpecValueError
from specseg.loader import load_spec

# Public names that need torch, resolved on first access.
_LAZY = {
    "build": "specseg.builder:build",
    "load": "specseg.artifacts:load",
    "save_artifact": "specseg.artifacts:save_artifact",
    "save_pretrained": "specseg.hub:save_pretrained",
    "push_to_hub": "specseg.hub:push_to_hub",
    "SegmentationModel": "specseg.model:SegmentationModel",
    "EncoderMixin": "specseg.encoders.base:EncoderMixin",
    "ModelSpec": "specseg.spec.model:ModelSpec",
    "MultiTaskSpec": "specseg.spec.multitask:MultiTaskSpec",
    "MultiTaskModel": "specseg.multitask.model:MultiTaskModel",
    "register_encoder": "specseg.encoders.registry:register_encoder",
    "json_schema": "specseg.schema:json_schema",
    "import_smp": "specseg.interop.smp_import:import_smp",
    "build_loss": "specseg.builder:build_loss",
    "preprocessing": "specseg.preprocessing:preprocessing",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'specseg' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["__version__", "SpecError", "SpecIssue", "SpecValueError", "InputShapeError", "load_spec", *_LAZY]
