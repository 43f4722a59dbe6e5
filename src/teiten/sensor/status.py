"""``teiten sensor status``: what a sensor is doing, from its metrics endpoint and its spool.

:func:`sensor_status` reads, and never writes: the files waiting in
``spool/events`` and ``spool/captures`` and those already moved to
``ingested/`` or ``failed/``; ``spool/state.json`` (the last ingest and
detection, written by the running sensor after every round); the stored
alerts not ended (the store's catalog, read only); and, when ``metrics`` is
configured and answers on its loopback address, the live counters. Every read
is bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

from teiten.analysis.alerts import read_stored_alerts
from teiten.errors import TeitenError
from teiten.sensor.config import Listen, SensorConfig
from teiten.sensor.health import CAPTURE_STATE
from teiten.sensor.service import CAPTURE_SUFFIXES

MAX_METRICS = 1 << 20
"""Most bytes read from the metrics endpoint."""
MAX_STATE = 64 << 10
"""Most bytes read from ``spool/state.json``."""
METRICS_TIMEOUT = 3.0

LIVE = {
    "connections_total": "connections", "open_connections": "open_connections",
    "events_total": "events", "client_bytes_total": "client_bytes",
}  # fmt: skip
"""Live counters (``teiten_sensor_`` + key) shown by their status name."""


def read_metrics(address: Listen, timeout: float = METRICS_TIMEOUT) -> dict[str, float] | None:
    """The counters served at ``http://ADDRESS/metrics`` by name (with labels); None if down."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    out = bytearray()
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((address.host, address.port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            while len(out) <= MAX_METRICS and (chunk := s.recv(65536)):
                out += chunk
    except OSError:
        return None
    head, _, body = bytes(out[:MAX_METRICS]).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    values: dict[str, float] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, _, value = line.rpartition(" ")
        if not name or line.startswith("#"):
            continue
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


def _read_state(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_STATE + 1)
        state = json.loads(raw) if len(raw) <= MAX_STATE else {}
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _count(folder: Path, pattern: str, suffixes: tuple[str, ...] = ()) -> int:
    if not folder.is_dir():
        return 0
    return sum(
        1
        for p in folder.glob(pattern)
        if not p.name.startswith(".") and (not suffixes or p.suffix in suffixes)
    )


def _when(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        return ""
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).isoformat(timespec="seconds")


def sensor_status(config: SensorConfig) -> dict[str, Any]:
    """The sensor's state as one flat record (see the module notes); never writes."""
    events, captures = config.events_dir, config.captures_dir
    live = read_metrics(config.metrics) if config.metrics is not None else None
    state = _read_state(config.state_path)
    try:
        alerts = read_stored_alerts(config.data / "catalog.sqlite")
    except (OSError, sqlite3.Error) as e:  # a damaged catalog: one line, not a traceback
        raise TeitenError(f"cannot read the alerts of {config.data}: {e}") from None
    out: dict[str, Any] = {
        "sensor": config.name,
        "running": None if config.metrics is None else live is not None,
        "source": "metrics" if live is not None else "spool",
        "events_waiting": _count(events, "*.jsonl"),
        "captures_waiting": _count(captures, "*", CAPTURE_SUFFIXES),
        "files_ingested": _count(events / "ingested", "*.jsonl")
        + _count(captures / "ingested", "*", CAPTURE_SUFFIXES),
        "files_failed": _count(events / "failed", "*") + _count(captures / "failed", "*"),
        "last_ingest": _when(state.get("last_ingest")),
        "last_detection": _when(state.get("last_detection")),
        "detections": d if isinstance(d := state.get("detections"), int) else 0,
        "alerts_open": sum(1 for a in alerts if a.state != "ended"),
    }
    for key in CAPTURE_STATE:  # this run's counters, as of the last round
        value = state.get(key)
        out[key] = value if isinstance(value, int) and not isinstance(value, bool) else 0
    if live is not None:
        for key in ("capture_running", *CAPTURE_STATE):
            name = "capture_running" if key == "capture_running" else f"{key}_total"
            if f"teiten_sensor_{name}" in live:
                out[key] = int(live[f"teiten_sensor_{name}"])
        for key, name in LIVE.items():
            out[name] = int(live.get(f"teiten_sensor_{key}", 0))
        out["dropped"] = int(
            sum(v for k, v in live.items() if k.startswith("teiten_sensor_dropped_total"))
        )
        # A sensor restarted a moment ago has no round yet: the state file's times stand.
        for key in ("last_ingest", "last_detection"):
            seen = _when(live.get(f"teiten_sensor_{key}_timestamp_seconds"))
            out[key] = seen or out[key]
    return out
