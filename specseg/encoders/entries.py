"""What the registry holds: one :class:`EncoderEntry` per encoder name, and the names' rules (torch-free).

Shared by the registry (:mod:`specseg.encoders.registry`) and plugin
discovery (:mod:`specseg.encoders.plugins`), which depend on this module and
not on each other's internals.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from specseg.errors import SpecsegError

#: A timm model name, optionally with a pretrained tag: ``resnet18``, ``convnext_atto.d2_in1k``.
TIMM_NAME = re.compile(r"tu-[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)?\Z")
#: Registered names: letters, digits, ``_``, ``-`` and ``.``; no path separators or colons.
REGISTERED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")


class PluginError(SpecsegError):
    """A plugin encoder cannot be used (its code failed to load, or its name clashes)."""


def resolve_import(value: Any) -> Any:
    """An entry point, an import string ``"module:attribute"``, or the object itself, resolved."""
    if hasattr(value, "load") and hasattr(value, "group"):  # an importlib.metadata.EntryPoint
        return value.load()
    if isinstance(value, str):
        module_name, _, attr = value.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    return value


@dataclass(frozen=True)
class EncoderEntry:
    """How to build one named encoder.

    ``encoder`` is the encoder class (or factory) or an import string
    ``"module:attribute"`` resolved when the encoder is first built.
    ``params`` are keyword arguments for it; ``pretrained_settings`` maps a
    weights name (e.g. ``imagenet``) to its normalisation (``mean``, ``std``,
    ``input_space``, ``input_range``) and its source: ``timm`` (a timm
    pretrained tag), ``repo_id``/``revision``/``filename`` (Hugging Face) or
    ``url``, optionally with ``sha256``.

    ``timm_model`` set means the name is built as the ``tu-`` encoder of that
    timm model (``timm_options`` are options of
    :class:`~specseg.encoders.timm_universal.TimmUniversalEncoder`), and any
    pretrained tag of that model may be given as weights; ``timm_weights_model``
    does the same for a dedicated module whose state dict is timm's.
    ``params_model`` (a Pydantic model or import string) validates
    ``encoder.params`` at validation time. ``smp_note`` is None for names that
    are not SMP's, ``""`` when specseg builds SMP's network with SMP's state
    dict, and otherwise says how they differ. ``distribution`` names the
    installed package of a plugin entry (its ``source`` too); ``entry_point``
    is set while a plugin entry's code has not been imported yet.
    """

    name: str
    encoder: Any
    params: Mapping[str, Any] = field(default_factory=dict)
    pretrained_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "builtin"
    params_model: Any = None
    timm_model: str | None = None
    timm_options: Mapping[str, Any] = field(default_factory=dict)
    timm_weights_model: str | None = None
    smp_note: str | None = None
    family: str = ""
    distribution: str | None = None
    entry_point: Any = None

    def resolve(self) -> Callable[..., Any]:
        """The encoder class or factory, importing it if it was given as a string."""
        return resolve_import(self.encoder)

    def resolve_params_model(self) -> Any:
        """The Pydantic model validating ``encoder.params``, or None."""
        return resolve_import(self.params_model) if self.params_model is not None else None

    @property
    def is_builtin(self) -> bool:
        """Whether this entry ships with specseg."""
        return self.source == "builtin"

    @property
    def pending(self) -> bool:
        """Whether this is a plugin entry whose code has not been imported yet."""
        return self.entry_point is not None


def entry_from_mapping(name: str, entry: Mapping[str, Any], source: str, params_model: Any = None) -> EncoderEntry:
    """An :class:`EncoderEntry` from SMP's entry mapping ``{"encoder", "pretrained_settings", "params"}``."""
    unknown = set(entry) - {"encoder", "pretrained_settings", "params", "params_model"}
    if unknown or "encoder" not in entry:
        raise ValueError(
            f"an encoder entry has keys 'encoder' (required), 'pretrained_settings', 'params' and "
            f"'params_model'; got {sorted(entry)}"
        )
    return EncoderEntry(
        name=name,
        encoder=entry["encoder"],
        params=dict(entry.get("params") or {}),
        pretrained_settings=dict(entry.get("pretrained_settings") or {}),
        params_model=entry.get("params_model", params_model),
        source=source,
    )


def with_loaded(entry: EncoderEntry, **changes: Any) -> EncoderEntry:
    """A copy of ``entry`` with ``changes`` (used when a pending plugin entry is loaded)."""
    return replace(entry, **changes)


#: The former private name.
_resolve_import = resolve_import
