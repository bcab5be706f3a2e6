"""The encoder registry: which names a spec may use, and how to build each.

This module is torch-free on purpose: ``specseg validate`` checks encoder
names against it without importing torch. Built-in encoders are registered
by import string and imported only when built; plugin encoders are known by
their entry-point names and imported only when built (see
:mod:`specseg.encoders.plugins`).

Names a spec can use:

* built-in names: SMP 0.6's encoder names (:mod:`specseg.encoders.smp_names`);
* names registered in process with :func:`register_encoder`;
* names declared by installed plugins (entry-point group ``specseg.encoders``);
* ``tu-<timm model name>``, any timm model with ``features_only`` support.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Mapping

from specseg.encoders.entries import (
    REGISTERED_NAME,
    TIMM_NAME,
    EncoderEntry,
    PluginError,
    _resolve_import,
    entry_from_mapping,
    with_loaded,
)
from specseg.encoders.plugins import discover_into, load_entry
from specseg.encoders.smp_names import IMAGENET, SMP_NAMES

__all__ = [
    "REGISTERED_NAME",
    "TIMM_NAME",
    "EncoderEntry",
    "EncoderRegistry",
    "PluginError",
    "add_entry_mapping",
    "entry_from_mapping",
    "register_encoder",
    "registry",
    "unregister_encoder",
    "with_loaded",
]


#: ImageNet normalisation, the default for ``imagenet`` weights.
IMAGENET_SETTINGS: Mapping[str, Any] = IMAGENET

#: Keys of a pretrained-settings mapping that say where the weights come from.
WEIGHTS_SOURCE_KEYS = ("timm", "repo_id", "url")


class EncoderRegistry:
    """A named collection of :class:`EncoderEntry` with a documented contract.

    Registering a name twice is an error naming both sources; names must
    match :data:`REGISTERED_NAME` and may not start with ``tu-``. Built-in
    names cannot be replaced. Installed plugins are discovered on first use
    (once per process, from package metadata only; ``SPECSEG_DISABLE_PLUGINS=1``
    turns discovery off).
    """

    def __init__(self, discover: bool = True) -> None:
        self._entries: dict[str, EncoderEntry] = {}
        self._discover = discover
        self._discovered = not discover
        self._lock = threading.RLock()
        #: name -> message, for plugin names that cannot be used (clashes, failed loads).
        self._problems: dict[str, str] = {}
        #: Plugin-level problems for ``specseg list plugins`` (entry points that were refused).
        self.plugin_warnings: list[str] = []

    # -- plugin discovery -------------------------------------------------
    def _ensure_discovered(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True
            discover_into(self)

    def rediscover(self) -> None:
        """Forget plugin entries and discover installed plugins again (for tests and tools)."""
        with self._lock:
            for name in [n for n, e in self._entries.items() if e.distribution is not None]:
                del self._entries[name]
            self._problems.clear()
            self.plugin_warnings.clear()
            self._discovered = not self._discover
        self._ensure_discovered()

    # -- registration -----------------------------------------------------
    def add(self, entry: EncoderEntry) -> EncoderEntry:
        """Add an entry; refuse invalid names and clashes."""
        if entry.source != "builtin":
            self._ensure_discovered()
        if not REGISTERED_NAME.match(entry.name) or entry.name.startswith("tu-"):
            raise ValueError(
                f"invalid encoder name {entry.name!r}: use letters, digits, '_', '-' and '.', "
                "and do not start with 'tu-' (reserved for timm models)"
            )
        with self._lock:
            existing = self._entries.get(entry.name)
            if existing is not None:
                if existing.is_builtin:
                    raise ValueError(
                        f"encoder name {entry.name!r} is a built-in encoder; {entry.source} cannot replace it "
                        "(choose another name)"
                    )
                raise ValueError(
                    f"encoder name {entry.name!r} is already registered by {existing.source}; "
                    f"{entry.source} cannot register it again"
                )
            self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Remove a registration (used by tests and by plugin reloads); built-ins stay."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and not entry.is_builtin:
                del self._entries[name]
            self._problems.pop(name, None)

    def peek_raw(self, name: str) -> EncoderEntry | None:
        """The entry for ``name`` as currently known, without triggering discovery."""
        return self._entries.get(name)

    def add_pending(self, entry: EncoderEntry) -> None:
        """Add a discovered plugin entry (called by discovery, which checks names and clashes)."""
        with self._lock:
            self._entries[entry.name] = entry

    def mark_problem(self, name: str, message: str) -> None:
        """Record that ``name`` cannot be used, and why (a clash between plugins)."""
        with self._lock:
            self._problems[name] = message

    # -- lookup -----------------------------------------------------------
    def _is_builtin(self, name: str) -> bool:
        # A built-in name always wins over plugins (discovery only warns about the clash),
        # so looking one up need not scan the installed distributions' metadata.
        entry = self._entries.get(name)
        return entry is not None and entry.is_builtin

    def problem(self, name: str) -> str | None:
        """Why ``name`` cannot be used (a plugin clash), or None. Does not import plugin code."""
        if self._is_builtin(name):
            return None
        self._ensure_discovered()
        return self._problems.get(name)

    def peek(self, name: str) -> EncoderEntry | None:
        """The entry for ``name`` without importing plugin code (it may be pending)."""
        if not self._is_builtin(name):
            self._ensure_discovered()
        return self._entries.get(name)

    def get(self, name: str) -> EncoderEntry | None:
        """The entry for a registered name, importing its plugin if needed, or None.

        Raises :class:`PluginError` when the name comes from a plugin that
        cannot be loaded or whose name clashes with another source.
        """
        if self._is_builtin(name):
            return self._entries[name]
        self._ensure_discovered()
        problem = self._problems.get(name)
        if problem is not None:
            raise PluginError(problem)
        entry = self._entries.get(name)
        if entry is None or not entry.pending:
            return entry
        with self._lock:
            entry = self._entries[name]
            if not entry.pending:
                return entry
            try:
                loaded = load_entry(entry)
            except PluginError as exc:
                self._problems[name] = str(exc)
                raise
            self._entries[name] = loaded
            return loaded

    def names(self, include_plugins: bool = True) -> list[str]:
        """All registered names, sorted (plugin names come from metadata; nothing is imported)."""
        self._ensure_discovered()
        return sorted(n for n, e in self._entries.items() if include_plugins or e.distribution is None)

    def entries(self) -> list[EncoderEntry]:
        """All entries, sorted by name; plugin entries may be pending (not imported)."""
        self._ensure_discovered()
        return sorted(self._entries.values(), key=lambda e: e.name)

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def __iter__(self) -> Iterator[EncoderEntry]:
        return iter(self.entries())

    def is_valid_name(self, name: str) -> bool:
        """Whether a spec may use ``name`` (registered, or a syntactically valid ``tu-`` name)."""
        self._ensure_discovered()
        return name in self._entries or bool(TIMM_NAME.match(name))

    def params_model(self, name: str) -> Any:
        """The Pydantic model for ``encoder.params`` of ``name``, or None; never imports torch-side plugin code.

        In-process registrations give it directly; plugins declare it in the
        ``specseg.encoder_params`` entry-point group (a torch-free module).
        """
        self._ensure_discovered()
        entry = self._entries.get(name)
        if entry is None:
            return None
        if entry.params_model is not None:
            return entry.resolve_params_model()
        return None


def _builtin_registry() -> EncoderRegistry:
    reg = EncoderRegistry()
    for row in SMP_NAMES:
        if row.timm_model is not None:
            reg.add(
                EncoderEntry(
                    name=row.name,
                    encoder="specseg.encoders.timm_universal:TimmUniversalEncoder",
                    pretrained_settings=row.pretrained_settings,
                    timm_model=row.timm_model,
                    timm_options=dict(row.timm_options),
                    smp_note=row.note,
                    family=row.family,
                )
            )
        else:
            reg.add(
                EncoderEntry(
                    name=row.name,
                    encoder=row.encoder,
                    params=dict(row.params),
                    pretrained_settings=row.pretrained_settings,
                    timm_weights_model=row.timm_weights_model,
                    smp_note=row.note,
                    family=row.family,
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
    params_model: Any = None,
    source: str = "runtime",
) -> Any:
    """Register an encoder class under ``name``; usable as a decorator.

    The class must follow the encoder contract (see :mod:`specseg.encoders.base`;
    :func:`specseg.testing.check_encoder` verifies it). ``pretrained_settings``
    maps weights names to normalisation and source (see :class:`EncoderEntry`);
    ``params`` are default keyword arguments; ``params_model`` is an optional
    Pydantic model validating ``encoder.params`` in specs.

    Three forms::

        register_encoder("mine", MyEncoder, pretrained_settings={...}, params={...})

        @register_encoder("mine", pretrained_settings={...})
        class MyEncoder(torch.nn.Module, EncoderMixin): ...

        register_encoder("mine", {"encoder": MyEncoder, "pretrained_settings": {...}, "params": {...}})

    Returns the class, so the decorator form works.
    """

    def add(cls: Any) -> Any:
        registry.add(
            EncoderEntry(
                name=name,
                encoder=cls,
                params=dict(params or {}),
                pretrained_settings=dict(pretrained_settings or {}),
                params_model=params_model,
                source=source,
            )
        )
        return cls

    if encoder is None:
        return add
    if isinstance(encoder, Mapping):
        # The SMP registration-entry form: {"encoder": ..., "pretrained_settings": ..., "params": ...}
        if pretrained_settings is not None or params is not None:
            raise TypeError("give pretrained_settings and params inside the entry mapping, not as arguments")
        return add_entry_mapping(name, encoder, source, params_model=params_model)
    return add(encoder)


def unregister_encoder(name: str) -> None:
    """Remove an in-process registration (built-in names cannot be removed)."""
    entry = registry.peek(name)
    if entry is not None and entry.is_builtin:
        raise ValueError(f"{name!r} is a built-in encoder and cannot be unregistered")
    registry.remove(name)


def add_entry_mapping(name: str, entry: Mapping[str, Any], source: str, params_model: Any = None) -> Any:
    """Register an SMP-style entry mapping ``{"encoder", "pretrained_settings", "params"}``."""
    registry.add(entry_from_mapping(name, entry, source, params_model))
    return entry["encoder"]
