"""The encoder registry: which names a spec may use, and how to build each.

This module is torch-free on purpose: ``specseg validate`` checks encoder
names against it without importing torch. Built-in encoders are registered
by import string and imported only when built.

Names a spec can use:

* registered names (built-ins and in-process registrations through
  :func:`register_encoder`);
* ``tu-<timm model name>``, any timm model with ``features_only`` support.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

#: A timm model name, optionally with a pretrained tag: ``resnet18``, ``convnext_atto.d2_in1k``.
TIMM_NAME = re.compile(r"tu-[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)?\Z")
#: Registered names: letters, digits, ``_``, ``-`` and ``.``; no path separators or colons.
REGISTERED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")

IMAGENET_SETTINGS: Mapping[str, Any] = {
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "input_space": "RGB",
    "input_range": [0, 1],
}


@dataclass(frozen=True)
class EncoderEntry:
    """How to build one named encoder.

    ``encoder`` is the encoder class (or factory) or an import string
    ``"module:attribute"`` resolved when the encoder is first built.
    ``params`` are keyword arguments for it; ``pretrained_settings`` maps a
    weights name (e.g. ``imagenet``) to its preprocessing and source.
    """

    name: str
    encoder: Any
    params: Mapping[str, Any] = field(default_factory=dict)
    pretrained_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "builtin"

    def resolve(self) -> Callable[..., Any]:
        """The encoder class or factory, importing it if it was given as a string."""
        if isinstance(self.encoder, str):
            module_name, _, attr = self.encoder.partition(":")
            return getattr(importlib.import_module(module_name), attr)
        return self.encoder


class EncoderRegistry:
    """A named collection of :class:`EncoderEntry` with a documented contract.

    Registering a name twice is an error naming both sources; names must
    match :data:`REGISTERED_NAME` and may not start with ``tu-``.
    """

    def __init__(self) -> None:
        self._entries: dict[str, EncoderEntry] = {}

    def add(self, entry: EncoderEntry) -> EncoderEntry:
        """Add an entry; refuse invalid names and clashes."""
        if not REGISTERED_NAME.match(entry.name) or entry.name.startswith("tu-"):
            raise ValueError(
                f"invalid encoder name {entry.name!r}: use letters, digits, '_', '-' and '.', "
                "and do not start with 'tu-' (reserved for timm models)"
            )
        existing = self._entries.get(entry.name)
        if existing is not None:
            raise ValueError(
                f"encoder name {entry.name!r} is already registered by {existing.source}; "
                f"{entry.source} cannot register it again"
            )
        self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Remove a registration (used by tests and by plugin reloads)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> EncoderEntry | None:
        """The entry for a registered name, or None."""
        return self._entries.get(name)

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[EncoderEntry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def is_valid_name(self, name: str) -> bool:
        """Whether a spec may use ``name`` (registered, or a syntactically valid ``tu-`` name)."""
        return name in self._entries or bool(TIMM_NAME.match(name))


def _builtin_registry() -> EncoderRegistry:
    reg = EncoderRegistry()
    resnets = {
        "resnet18": ("basic", [2, 2, 2, 2], "resnet18.tv_in1k"),
        "resnet34": ("basic", [3, 4, 6, 3], "resnet34.tv_in1k"),
        "resnet50": ("bottleneck", [3, 4, 6, 3], "resnet50.tv_in1k"),
        "resnet101": ("bottleneck", [3, 4, 23, 3], "resnet101.tv_in1k"),
        "resnet152": ("bottleneck", [3, 8, 36, 3], "resnet152.tv_in1k"),
    }
    for name, (block, layers, timm_tag) in resnets.items():
        reg.add(
            EncoderEntry(
                name=name,
                encoder="specseg.encoders.resnet:ResNetEncoder",
                params={"block": block, "layers": layers},
                pretrained_settings={"imagenet": {**IMAGENET_SETTINGS, "timm": timm_tag}},
            )
        )
    return reg


#: The process-wide registry. Extend it with :func:`register_encoder`, not by mutation.
registry = _builtin_registry()


def register_encoder(
    name: str,
    encoder: Any = None,
    *,
    pretrained_settings: Mapping[str, Mapping[str, Any]] | None = None,
    params: Mapping[str, Any] | None = None,
    source: str = "runtime",
) -> Any:
    """Register an encoder class under ``name``; usable as a decorator.

    The class must follow the encoder contract (see :mod:`specseg.encoders.base`).
    Returns the class, so ``@register_encoder("my_encoder")`` works.
    """

    def add(cls: Any) -> Any:
        registry.add(
            EncoderEntry(
                name=name,
                encoder=cls,
                params=dict(params or {}),
                pretrained_settings=dict(pretrained_settings or {}),
                source=source,
            )
        )
        return cls

    if encoder is None:
        return add
    if isinstance(encoder, Mapping):
        # The SMP registration-entry form: {"encoder": ..., "pretrained_settings": ..., "params": ...}
        return add_entry_mapping(name, encoder, source)
    return add(encoder)


def add_entry_mapping(name: str, entry: Mapping[str, Any], source: str) -> Any:
    """Register an SMP-style entry mapping ``{"encoder", "pretrained_settings", "params"}``."""
    unknown = set(entry) - {"encoder", "pretrained_settings", "params"}
    if unknown or "encoder" not in entry:
        raise ValueError(
            f"an encoder entry has keys 'encoder' (required), 'pretrained_settings' and 'params'; "
            f"got {sorted(entry)}"
        )
    registry.add(
        EncoderEntry(
            name=name,
            encoder=entry["encoder"],
            params=dict(entry.get("params") or {}),
            pretrained_settings=dict(entry.get("pretrained_settings") or {}),
            source=source,
        )
    )
    return entry["encoder"]
