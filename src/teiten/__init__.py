"""teiten: turn darknet and honeypot captures into early warning.

The public API::

    from teiten import load_settings, ingest, run_query
    settings = load_settings(overrides={"data": "store", "sensor_networks": ["203.0.113.0/24"]})
    ingest(["captures/"], settings)
    run_query(settings, "SELECT dst_port, count(*) FROM packets GROUP BY 1").to_pylist()
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Lazy so that ``import teiten`` stays cheap (numba and pyarrow load on first use).
_EXPORTS = {
    "ConfigError": "teiten.errors",
    "InputError": "teiten.errors",
    "QueryError": "teiten.errors",
    "Settings": "teiten.config",
    "StoreError": "teiten.errors",
    "TeitenError": "teiten.errors",
    "ingest": "teiten.app.ingest",
    "load_settings": "teiten.config",
    "port_ranking": "teiten.app.traffic",
    "port_trend": "teiten.app.traffic",
    "run_demo": "teiten.app.demo",
    "run_query": "teiten.app.engine",
    "simulate": "teiten.simulate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'teiten' has no attribute {name!r}")
