"""Classified payloads and indicators read back from the store.

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
from teiten.engine import Engine
from teiten.errors import NotFoundError, QueryError
from teiten.secrecy import Secrecy
from teiten.sql import sessions
from teiten.sql.sessions import SessionFilter

_ID = re.compile(r"s\d{1,9}-\d{1,12}")
_CVE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    """The rows a listing shows and how many matched in all (``total`` ≥ ``len(rows)``)."""

    rows: list[dict[str, Any]]
    total: int


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


def session_filter(
    tz: str,
    *,
    signature: str | None = None,
    cve: str | None = None,
    first: str | None = None,
    last: str | None = None,
) -> SessionFilter:
    """The filter of a listing; a ``cve`` not shaped like ``CVE-2014-8361`` is an error."""
    if cve and not _CVE.fullmatch(cve):
        raise QueryError(f"not a CVE id: {cve!r} (ids look like CVE-2014-8361)")
    start = end = None
    if first or last:
        a = parse_date(first or "1970-01-01")
        b = parse_date(last or "2999-12-31")
        w = Window.from_dates(a, b, tz)
        start, end = w.start_ns, w.end_ns
    return SessionFilter(signature or None, cve.upper() if cve else None, start, end)


def payload_page(engine: Engine, f: SessionFilter, *, limit: int = 100) -> Page:
    """The first ``limit`` sessions a filter keeps, oldest first, and how many it keeps in all."""
    rows: list[dict[str, Any]] = engine.query(
        sessions.session_list(engine.dialect, f, limit=limit)
    ).to_pylist()
    if len(rows) < limit:
        return Page(rows, len(rows))
    total = engine.query(sessions.session_count(engine.dialect, f))
    return Page(rows, int(total.column("n")[0].as_py()))


def session_by_id(engine: Engine, session_id: str) -> dict[str, Any]:
    """One session with its bytes; an id not shaped like ``s3-17`` or not stored is an error."""
    if not _ID.fullmatch(session_id):
        raise QueryError(f"not a session id: {session_id!r} (ids look like s3-17)")
    rows = engine.query(sessions.session_by_id(engine.dialect, session_id)).to_pylist()
    if not rows:
        raise NotFoundError(f"no session {session_id}")
    return dict(rows[0])


def sensor_addresses(engine: Engine) -> set[str]:
    """Every address that received packets or sessions (the sensor's, by definition)."""
    table = engine.query(sessions.sensor_addresses(engine.dialect))
    return {a for a in table.column("a").to_pylist() if a}


def indicators(engine: Engine, secrecy: Secrecy) -> list[dict[str, Any]]:
    """Every indicator with first/last seen and counts, those naming the sensor left out."""
    rows = engine.query(sessions.indicator_list(engine.dialect)).to_pylist()
    return [r for r in rows if not secrecy.names_sensor(str(r["value"]))]
