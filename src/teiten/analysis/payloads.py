"""Classified payloads and indicators read back from the store (``teiten payloads``,
``teiten indicators``).

Indicators that name one of the sensor's own addresses — a Host header, a URL
pointing back at the sensor, in any notation (see ``teiten.secrecy``) — are
never listed: sensor addresses are secret.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from teiten.analysis.window import Window, parse_date
from teiten.config import Settings
from teiten.errors import QueryError
from teiten.secrecy import Secrecy
from teiten.store.engine import Engine, open_engine

_ID = re.compile(r"s\d{1,9}-\d{1,12}")
_CVE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_ALL = 1 << 62


def zoned(rows: list[dict[str, Any]], tz: str) -> list[dict[str, Any]]:
    """Rows with every timestamp as ISO 8601 text in zone ``tz``, with its offset.

    Stored timestamps are UTC; in zone ``UTC`` they end in ``Z``, elsewhere in
    the zone's offset at that instant (``2017-11-01T09:00:00+09:00``).
    """
    zone = ZoneInfo(tz)
    utc = tz in ("UTC", "Etc/UTC")

    def text(v: dt.datetime) -> str:
        aware = v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v
        out = aware.astimezone(zone).isoformat()
        return out.removesuffix("+00:00") + "Z" if utc else out

    return [{k: text(v) if isinstance(v, dt.datetime) else v for k, v in r.items()} for r in rows]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _window_sql(settings: Settings, first: str | None, last: str | None) -> str:
    if not first and not last:
        return ""
    a = parse_date(first or "1970-01-01")
    b = parse_date(last or "2999-12-31")
    w = Window.from_dates(a, b, str(settings.tz))
    return f" AND ts_first_ns >= {w.start_ns} AND ts_first_ns < {w.end_ns}"


def _payload_where(
    settings: Settings, signature: str | None, cve: str | None, first: str | None, last: str | None
) -> str:
    if cve and not _CVE.fullmatch(cve):
        raise QueryError(f"not a CVE id: {cve!r} (ids look like CVE-2014-8361)")
    where = "TRUE" + _window_sql(settings, first, last)
    if signature:
        where += f" AND list_contains(signatures, {_quote(signature)})"
    if cve:
        where += f" AND list_contains(cves, {_quote(cve.upper())})"
    return where


def list_payloads(
    settings: Settings,
    *,
    signature: str | None = None,
    cve: str | None = None,
    first: str | None = None,
    last: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Sessions with their classification, newest last (``teiten payloads``)."""
    where = _payload_where(settings, signature, cve, first, last)
    sql = (
        f"SELECT id, ts_first, src, src_port, dst_port, proto, app, kind, signatures, cves, "
        f"indicators, client_total AS bytes FROM sessions WHERE {where} "
        f"ORDER BY ts_first_ns, id LIMIT {int(limit)}"
    )
    with open_engine(settings) as engine:
        rows: list[dict[str, Any]] = engine.query(sql).to_pylist()
    return zoned(rows, str(settings.tz))


def show_payload(settings: Settings, session_id: str) -> dict[str, Any]:
    """One session with its bytes (``teiten payloads --show ID``)."""
    if not _ID.fullmatch(session_id):
        raise QueryError(f"not a session id: {session_id!r} (ids look like s3-17)")
    with open_engine(settings) as engine:
        rows = engine.query(f"SELECT * FROM sessions WHERE id = {_quote(session_id)}").to_pylist()
    if not rows:
        raise QueryError(f"no session {session_id}")
    return zoned([dict(rows[0])], str(settings.tz))[0]


def sensor_addresses(engine: Engine) -> set[str]:
    """Every address that received packets or sessions (the sensor's, by definition)."""
    sql = (
        "SELECT DISTINCT dst AS a FROM packets WHERE direction = 'in' "
        "UNION SELECT DISTINCT dst FROM sessions"
    )
    return {a for a in engine.query(sql).column("a").to_pylist() if a}


def list_indicators(settings: Settings, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Indicators with first/last seen and counts, sensor addresses left out."""
    with open_engine(settings) as engine:
        sensor = Secrecy(settings.sensor_networks, sensor_addresses(engine))
        rows = engine.query(
            "SELECT type, value, first_seen, last_seen, sessions, sources, signatures "
            "FROM indicators ORDER BY sessions DESC, type, value"
        ).to_pylist()
    kept = [r for r in rows if not sensor.names_sensor(str(r["value"]))]
    return zoned(kept[:limit], str(settings.tz))


@dataclass(frozen=True)
class Page:
    """The rows a listing shows and how many matched in all (``total`` ≥ ``len(rows)``)."""

    rows: list[dict[str, Any]]
    total: int


def payload_page(
    settings: Settings,
    *,
    signature: str | None = None,
    cve: str | None = None,
    first: str | None = None,
    last: str | None = None,
    limit: int = 100,
) -> Page:
    """``teiten payloads``: the first ``limit`` matching sessions and how many match in all.

    A ``cve`` that is not shaped like ``CVE-2014-8361`` is an error, not an empty list.
    """
    where = _payload_where(settings, signature, cve, first, last)
    rows = list_payloads(
        settings, signature=signature, cve=cve, first=first, last=last, limit=limit
    )
    if len(rows) < limit:
        return Page(rows, len(rows))
    with open_engine(settings) as engine:
        total = engine.query(f"SELECT count(*) AS n FROM sessions WHERE {where}")
    return Page(rows, int(total.column("n")[0].as_py()))


def indicator_page(settings: Settings, *, limit: int = 1000) -> Page:
    """``teiten indicators``: the first ``limit`` indicators and how many are listed in all."""
    rows = list_indicators(settings, limit=_ALL)
    return Page(rows[:limit], len(rows))
