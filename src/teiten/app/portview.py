"""One port as the dashboard's port page shows it: its series, its rises, who sent what.

Everything comes from one engine opened once: the series (``teiten trend``'s
rows, split as asked), the partial days, the fingerprint mix, the busiest
sources, countries and ASNs, and the latest classified sessions to the port;
the onsets are the stored alerts on the port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teiten.analysis.payloads import zoned
from teiten.analysis.portlists import port_lists
from teiten.analysis.series import Port, parse_ports, trend
from teiten.analysis.window import Window, data_span, resolve_window
from teiten.app.engine import open_engine
from teiten.app.traffic import stored_alerts
from teiten.config import Settings
from teiten.engine import Engine
from teiten.errors import ConfigError
from teiten.fingerprint import registry
from teiten.report.charts import partial_days
from teiten.sql import portview
from teiten.sql.traffic import SPLITS

LISTS = ("series", "partial", "fingerprints", "sources", "countries", "asns", "sessions")
"""The lists of a port view (empty when the store holds no packets)."""


@dataclass(frozen=True)
class PortQuery:
    """What a port page asks for: a window of local dates, buckets, a split, list sizes."""

    first: str | None = None
    last: str | None = None
    by: str = "day"
    split: str = "none"
    top: int = 20
    samples: int = 10


def one_port(text: str) -> Port:
    """``52869/tcp`` (or ``52869``) as a :class:`Port`; anything else is a :class:`ConfigError`."""
    ports = parse_ports([text])
    if len(ports) != 1:
        raise ConfigError(f"name one port, not {text!r}")
    return ports[0]


def _mix(row: dict[str, Any], marks: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The one row of ``port_fingerprints`` as ``{name, packets, sources}`` rows: ``all``,
    each fingerprint, ``none``."""
    names = ["all", *(name for _, name in marks), "none"]
    return [
        {"name": name, "packets": int(row[f"p{i}"] or 0), "sources": int(row[f"s{i}"] or 0)}
        for i, name in enumerate(names)
    ]


def _lists(engine: Engine, w: Window, port: Port, q: PortQuery) -> dict[str, Any]:
    """The lists of the view: from the day tables where they answer (with their
    ``estimate``), counted exactly otherwise (``estimate`` None)."""
    d, p, n = engine.dialect, port.proto, port.number
    marks = [(f.bit, f.name) for f in registry.registered()]

    def rows(sql: str) -> list[dict[str, Any]]:
        return engine.query(sql).to_pylist()  # type: ignore[no-any-return]

    sessions = rows(portview.port_sessions(d, p, n, w.start_ns, w.end_ns, limit=q.samples))
    estimated = port_lists(engine, w, p, n, top=q.top, fingerprints=marks)
    if estimated is not None:
        return {**estimated, "sessions": sessions}
    return {
        "fingerprints": _mix(rows(portview.port_fingerprints(d, w, p, n, marks))[0], marks),
        "sources": rows(portview.port_sources(d, w, p, n, limit=q.top)),
        "countries": rows(portview.port_countries(d, w, p, n, limit=q.top)),
        "asns": rows(portview.port_asns(d, w, p, n, limit=q.top)),
        "estimate": None,
        "sessions": sessions,
    }


def port_view(settings: Settings, port_text: str, q: PortQuery = PortQuery()) -> dict[str, Any]:
    """The port page's facts: ``port``, ``window`` (first, last, tz, by, split), ``series``
    (trend rows), ``partial`` days, ``alerts`` on the port, ``fingerprints``, ``sources``,
    ``countries``, ``asns``, ``estimate`` (None when the lists are exact, else how far they
    may be off: ``teiten.analysis.portlists``) and ``sessions`` (latest classified, newest
    first).

    The window defaults to all data; an empty store gives empty lists and no window.
    """
    port = one_port(port_text)
    if q.split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, not {q.split!r}")
    tz = str(settings.tz)
    out: dict[str, Any] = {"port": str(port), "alerts": stored_alerts(settings, [str(port)])}
    with open_engine(settings) as engine:
        w = resolve_window(engine, q.first, q.last, tz, q.by)
        if w is None:
            return {**out, "window": None, "estimate": None, **{key: [] for key in LISTS}}
        labels = [w.label(b) for b in w.buckets()]
        out["window"] = {"first": labels[0][:10], "last": labels[-1][:10], "tz": tz,
                         "by": q.by, "split": q.split}  # fmt: skip
        out["series"] = trend(
            engine, [port], w, split=q.split, home_country=str(settings.home_country)
        )
        days = sorted({label[:10] for label in labels})
        out["partial"] = partial_days(data_span(engine), days, tz)
        out.update(_lists(engine, w, port, q))
    out["sessions"] = zoned(out["sessions"], tz)
    return out
