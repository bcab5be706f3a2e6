"""Encoder plugins: installed packages that add encoder names (torch-free).

A package declares each encoder it adds as an entry point in the group
``specseg.encoders``; the entry point's *name* is the encoder name used in
specs, its *value* names the registration::

    [project.entry-points."specseg.encoders"]
    my_encoder = "my_package.encoders:MyEncoder"

The object may be

* an encoder class (``torch.nn.Module, EncoderMixin``), optionally carrying
  ``pretrained_settings``, ``default_params`` and ``params_model`` class attributes;
* SMP's registration mapping ``{"encoder": ..., "pretrained_settings": ..., "params": ...}``;
* a callable returning either of these, or a mapping ``{encoder name: either}``
  (the entry for this entry point's name is used).

A Pydantic model validating the encoder's ``encoder.params`` can be declared
in the group ``specseg.encoder_params`` under the same name; it must live in
a torch-free module, because ``specseg validate`` imports it (and nothing else
of the plugin).

Discovery reads package metadata only, once per process, on first use of the
registry; plugin code is imported when one of its encoders is built. A
plugin that fails to import breaks only its own encoders. Two packages
declaring the same name make that name an error naming both; a plugin cannot
replace a built-in name. ``SPECSEG_DISABLE_PLUGINS=1`` turns discovery off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from specseg.encoders.entries import REGISTERED_NAME, EncoderEntry, PluginError, entry_from_mapping, with_loaded

if TYPE_CHECKING:
    from specseg.encoders.registry import EncoderRegistry

logger = logging.getLogger(__name__)

GROUP = "specseg.encoders"
PARAMS_GROUP = "specseg.encoder_params"
DISABLE_ENV = "SPECSEG_DISABLE_PLUGINS"


def plugins_disabled() -> bool:
    """Whether ``SPECSEG_DISABLE_PLUGINS`` turns plugin discovery off."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _entry_points(*groups: str) -> dict[str, list[Any]]:
    """The installed entry points of each group, from one scan of the distributions' metadata."""
    from importlib.metadata import entry_points

    found = entry_points()
    return {group: list(found.select(group=group)) for group in groups}


def _distribution(ep: Any) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "an unknown distribution", ""
    return dist.name, getattr(dist, "version", "") or ""


def distribution_of(ep: Any) -> tuple[str, str]:
    """``(name, version)`` of the distribution that installed entry point ``ep``."""
    return _distribution(ep)


def describe(ep: Any) -> str:
    """``distribution (entry point name = value)``, for messages."""
    return f"{_distribution(ep)[0]} (entry point {ep.name} = {ep.value})"


def discover_into(reg: "EncoderRegistry") -> None:
    """Add pending entries for every installed plugin encoder to ``reg`` (metadata only)."""
    if plugins_disabled():
        return
    by_name: dict[str, list[Any]] = {}
    declared = _entry_points(GROUP, PARAMS_GROUP)
    for ep in declared[GROUP]:
        same = by_name.setdefault(ep.name, [])
        # The same distribution can be visible twice on sys.path (e.g. an editable install); keep one.
        if not any(_distribution(o)[0] == _distribution(ep)[0] and o.value == ep.value for o in same):
            same.append(ep)
    params_eps = {ep.name: ep for ep in declared[PARAMS_GROUP]}
    for name, eps in sorted(by_name.items()):
        if len(eps) > 1:
            message = (
                f"encoder name {name!r} is declared by more than one plugin: "
                + " and ".join(describe(ep) for ep in eps)
                + "; uninstall one of them"
            )
            reg.mark_problem(name, message)
            reg.plugin_warnings.append(message)
            continue
        ep = eps[0]
        if not REGISTERED_NAME.match(name) or name.startswith("tu-"):
            reg.plugin_warnings.append(
                f"plugin {describe(ep)} declares the invalid encoder name {name!r} (letters, digits, '_', '-', '.'; "
                "not starting with 'tu-'); it is ignored"
            )
            continue
        existing = reg.peek_raw(name)
        if existing is not None:
            reg.plugin_warnings.append(
                f"plugin {describe(ep)} declares encoder {name!r}, which is already registered by {existing.source}; "
                "built-in encoders cannot be replaced, so the plugin's registration is ignored"
            )
            continue
        dist, _ = _distribution(ep)
        params_ep = params_eps.get(name)
        reg.add_pending(
            EncoderEntry(
                name=name,
                encoder=None,
                source=dist,
                distribution=dist,
                entry_point=ep,
                params_model=params_ep if params_ep is not None else None,
            )
        )


def _entry_from_object(pending: EncoderEntry, obj: Any, label: str) -> EncoderEntry:
    name = pending.name
    if isinstance(obj, Mapping) and "encoder" in obj:
        try:
            made = entry_from_mapping(name, obj, pending.source)
        except ValueError as exc:
            raise PluginError(f"encoder {name!r} from plugin {label}: {exc}") from None
        return with_loaded(
            pending,
            encoder=made.encoder,
            params=made.params,
            pretrained_settings=made.pretrained_settings,
            params_model=made.params_model or pending.params_model,
            entry_point=None,
        )
    if isinstance(obj, type):
        return with_loaded(
            pending,
            encoder=obj,
            params=dict(getattr(obj, "default_params", None) or {}),
            pretrained_settings=dict(getattr(obj, "pretrained_settings", None) or {}),
            params_model=getattr(obj, "params_model", None) or pending.params_model,
            entry_point=None,
        )
    if callable(obj):
        try:
            result = obj()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - plugin code: report, do not crash the caller
            raise PluginError(f"encoder {name!r} from plugin {label}: its registration function failed: {type(exc).__name__}: {exc}") from None
        if isinstance(result, Mapping) and "encoder" not in result:
            if name not in result:
                raise PluginError(
                    f"encoder {name!r} from plugin {label}: the registration function returned entries for "
                    f"{sorted(map(str, result))} but not for {name!r}"
                )
            result = result[name]
        if isinstance(result, type) or (isinstance(result, Mapping) and "encoder" in result):
            return _entry_from_object(pending, result, label)
    raise PluginError(
        f"encoder {name!r} from plugin {label}: the entry point must name an encoder class, an entry mapping "
        f"{{'encoder': ..., 'pretrained_settings': ..., 'params': ...}}, or a function returning one; got {type(obj).__name__}"
    )


def load_entry(pending: EncoderEntry) -> EncoderEntry:
    """Import a pending plugin entry's code and return the complete entry, or raise :class:`PluginError`."""
    ep = pending.entry_point
    label = describe(ep)
    try:
        obj = ep.load()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must only break its own encoders
        # SystemExit too: a plugin calling sys.exit() at import must not end the caller (with status 0!).
        # The traceback is for `specseg --debug` (which shows the ``specseg`` logger's debug records).
        logger.debug("plugin %s failed to import:", label, exc_info=True)
        raise PluginError(
            f"encoder {pending.name!r} comes from plugin {label}, which failed to import: {type(exc).__name__}: {exc}"
        ) from None
    return _entry_from_object(pending, obj, label)
