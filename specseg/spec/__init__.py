"""The spec models (Pydantic v2): the single source of truth for the spec format."""

from specseg.spec.model import SUPPORTED_VERSIONS, ModelSpec

__all__ = ["ModelSpec", "SUPPORTED_VERSIONS"]
