"""Statements over the classified sessions and the indicators they named."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from teiten.sql.dialect import Dialect
from teiten.sql.expressions import address_text, quote
from teiten.sql.statement import statement


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a listing keeps (all when every field is empty)."""

    signature: str | None = None
    cve: str | None = None
    """Upper-case ``CVE-YYYY-N``; validated by the caller."""
    start_ns: int | None = None
    end_ns: int | None = None
    """First-packet time in ``[start_ns, end_ns)``."""

    def where(self, d: Dialect) -> str:
        out = "TRUE"
        if self.start_ns is not None:
            out += f" AND ts_first_ns >= {int(self.start_ns)}"
        if self.end_ns is not None:
            out += f" AND ts_first_ns < {int(self.end_ns)}"
        if self.signature:
            out += f" AND {d.list_contains('signatures', quote(self.signature))}"
        if self.cve:
            out += f" AND {d.list_contains('cves', quote(self.cve))}"
        return out


@statement
def session_list(d: Dialect, f: SessionFilter, *, limit: int) -> str:
    """Sessions with their classification, oldest first, at most ``limit``."""
    return (
        "SELECT id, ts_first, src, src_port, dst_port, proto, app, kind, signatures, cves, "
        f"indicators, client_total AS bytes FROM sessions WHERE {f.where(d)} "
        f"ORDER BY ts_first_ns, id LIMIT {int(limit)}"
    )


@statement
def session_count(d: Dialect, f: SessionFilter) -> str:
    """How many sessions a filter keeps (``n``)."""
    return f"SELECT count(*) AS n FROM sessions WHERE {f.where(d)}"


@statement
def session_by_id(d: Dialect, session_id: str) -> str:
    """One session, every column."""
    return f"SELECT * FROM sessions WHERE id = {quote(session_id)}"


@statement
def first_exploit(d: Dialect, ports: Sequence[int], start_ns: int, end_ns: int) -> str:
    """The first session to one of ``ports`` that was classified to a CVE, every column."""
    listed = ", ".join(str(int(p)) for p in ports) or "NULL"
    return (
        f"SELECT * FROM sessions WHERE dst_port IN ({listed}) AND {d.list_len('cves')} > 0"
        f" AND ts_first_ns >= {int(start_ns)} AND ts_first_ns < {int(end_ns)}"
        " ORDER BY ts_first_ns, id LIMIT 1"
    )


@statement
def malicious_sessions(d: Dialect, kinds: Sequence[str]) -> str:
    """Sessions of the given kinds that named indicators, with what a STIX feed cites."""
    listed = ", ".join(quote(k) for k in kinds) or "NULL"
    return (
        "SELECT id, kind, dst, ts_first, ts_last, signatures, cves, jvn, indicators"
        f" FROM sessions WHERE {d.list_len('indicators')} > 0 AND kind IN ({listed})"
        " ORDER BY ts_first_ns, id"
    )


@statement
def sensor_addresses(d: Dialect) -> str:
    """Every address that received packets or sessions: the sensor's, by definition (``a``).

    The packets' destinations are read from the ``address_hours`` rollup (one row per
    hour and address that received any inbound packet), not from every packet.
    """
    return (
        f"SELECT DISTINCT {address_text(d, 'dst')} AS a FROM"
        " (SELECT DISTINCT ip_version, dst_ip4, dst_ip6 FROM address_hours_raw) AS h"
        " UNION SELECT DISTINCT dst AS a FROM sessions"
    )


@statement
def indicator_list(d: Dialect) -> str:
    """Every indicator with first/last seen and counts, most sessions first."""
    return (
        "SELECT type, value, first_seen, last_seen, sessions, sources, signatures "
        "FROM indicators ORDER BY sessions DESC, type, value"
    )


@statement
def indicator_values(d: Dialect) -> str:
    """Every indicator's type and value."""
    return "SELECT type, value FROM indicators ORDER BY type, value"
