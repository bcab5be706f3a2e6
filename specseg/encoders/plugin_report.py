"""Reports on installed plugins: ``specseg list plugins`` rows and the params schemas plugins declare.

Moved out of :mod:`specseg.encoders.plugins` (which discovers and loads
plugins for the registry) because these read the process-wide registry.
"""

from __future__ import annotations

from typing import Any

from specseg.encoders.plugins import DISABLE_ENV, distribution_of, plugins_disabled
from specseg.encoders.registry import PluginError, registry


def plugin_rows(load: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """Installed plugin encoders for ``specseg list plugins``, and warning lines.

    Each row: ``name``, ``distribution``, ``version``, ``entry_point`` (its
    value), ``status`` (``ok``, ``not loaded`` or ``error``) and ``message``.
    With ``load`` each plugin is imported to check that it works.
    """
    rows: list[dict[str, Any]] = []
    registry.names()  # runs discovery once
    warnings = list(registry.plugin_warnings)
    if plugins_disabled():
        warnings.append(f"plugin discovery is disabled ({DISABLE_ENV} is set)")
    for entry in registry.entries():
        if entry.distribution is None:
            continue
        ep = entry.entry_point
        version = ""
        value = ""
        if ep is not None:
            version = distribution_of(ep)[1]
            value = ep.value
        status, message = ("not loaded", "")
        if load:
            try:
                registry.get(entry.name)
                status = "ok"
            except PluginError as exc:
                status, message = "error", str(exc)
                warnings.append(str(exc))
        rows.append(
            {"name": entry.name, "distribution": entry.distribution, "version": version, "entry_point": value, "status": status, "message": message}
        )
    return rows, warnings


def plugin_params_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of ``encoder.params`` for every encoder that declares a params model.

    Covers in-process registrations and installed plugins (their
    ``specseg.encoder_params`` models, which are torch-free). A model that
    cannot be imported is left out.
    """
    out: dict[str, dict[str, Any]] = {}
    for entry in registry.entries():
        if entry.params_model is None:
            continue
        try:
            model = entry.resolve_params_model()
            out[entry.name] = model.model_json_schema()
        except (Exception, SystemExit):  # noqa: BLE001 - a broken plugin must not break the schema
            continue
    return out
