"""Campaigns: alerts on different ports whose onsets are close and whose sources overlap.

The seed's 52869/TCP exploitation and 23+2323/TCP Telnet scanning started the
same day from largely the same (infected) routers. Two surge alerts are linked
when their onsets are within :data:`ONSET_DAYS` and the overlap coefficient
of their source sets (|A ∩ B| / min(|A|, |B|)) over the first
:data:`SPAN_DAYS` days is at least :data:`MIN_OVERLAP`; linked alerts form a
campaign (connected components). Each alert gets the campaign id and evidence:
the shared sources and its fingerprint mix (e.g. the Mirai share).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from teiten.analysis.alerts import Alert
from teiten.analysis.window import Window
from teiten.enrich.country import country_code
from teiten.fingerprint import registry
from teiten.store.engine import Engine

ONSET_DAYS = 3
SPAN_DAYS = 14
MIN_OVERLAP = 0.2
MAX_SOURCES = 500_000


def _segment_filter(segment: str, home: int) -> str:
    if segment == "domestic":
        return f"AND src_cc_code = {home}"
    if segment == "foreign":
        return f"AND src_cc_code <> {home} AND src_cc_code <> 0"
    return ""


def _where(alert: Alert, window: Window, home: int) -> str:
    number, proto = alert.port.split("/")
    start = Window.from_dates(
        dt.date.fromisoformat(alert.onset),
        min(
            dt.date.fromisoformat(alert.last),
            dt.date.fromisoformat(alert.onset) + dt.timedelta(days=SPAN_DAYS - 1),
        ),
        window.tz.key,
    )
    return (
        f"NOT is_outbound AND proto = {6 if proto == 'tcp' else 17} AND dst_port = {number}"
        f" AND ts >= {start.start_ns} AND ts < {start.end_ns} "
        + _segment_filter(alert.segment, home)
    )


def _sources(engine: Engine, alert: Alert, window: Window, home: int) -> set[Any]:
    sql = (
        f"SELECT DISTINCT coalesce(CAST(src_ip4 AS VARCHAR), CAST(src_ip6 AS VARCHAR)) AS s"
        f" FROM packets_raw WHERE {_where(alert, window, home)} LIMIT {MAX_SOURCES}"
    )
    return set(engine.query(sql).column("s").to_pylist())


def _fingerprint_mix(engine: Engine, alert: Alert, window: Window, home: int) -> dict[str, float]:
    fps = registry.registered()
    shares = ", ".join(
        f"avg(CASE WHEN (fp >> {f.bit}) & 1 = 1 THEN 1.0 ELSE 0.0 END) AS {f.name}" for f in fps
    )
    row = engine.query(f"SELECT {shares} FROM packets_raw WHERE {_where(alert, window, home)}")
    return {f.name: round(float(row.column(f.name)[0].as_py() or 0.0), 3) for f in fps}


def link_campaigns(engine: Engine, alerts: list[Alert], window: Window, home_country: str) -> None:
    """Set ``campaign`` and campaign evidence on linked surge alerts (in place)."""
    home = country_code(home_country)
    surges = [a for a in alerts if a.kind == "surge"]
    sources = [_sources(engine, a, window, home) for a in surges]
    for a, seen in zip(surges, sources, strict=True):
        a.evidence["fingerprints"] = _fingerprint_mix(engine, a, window, home)
        a.evidence["sources"] = len(seen)
    parent = list(range(len(surges)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    links: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(surges))}
    for i, a in enumerate(surges):
        for j in range(i + 1, len(surges)):
            b = surges[j]
            gap = abs((dt.date.fromisoformat(a.onset) - dt.date.fromisoformat(b.onset)).days)
            if gap > ONSET_DAYS or a.port == b.port or not sources[i] or not sources[j]:
                continue
            shared = len(sources[i] & sources[j])
            overlap = shared / min(len(sources[i]), len(sources[j]))
            if overlap >= MIN_OVERLAP:
                parent[find(j)] = find(i)
                for x, y in ((i, b), (j, a)):
                    links[x].append(
                        {
                            "port": y.port,
                            "segment": y.segment,
                            "shared_sources": shared,
                            "overlap": round(overlap, 3),
                        }
                    )
    groups: dict[int, list[int]] = {}
    for i in range(len(surges)):
        groups.setdefault(find(i), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        first = min(members, key=lambda i: (surges[i].onset, surges[i].port))
        cid = f"c{surges[first].onset.replace('-', '')}-{surges[first].port.replace('/', '')}"
        for i in members:
            surges[i].campaign = cid
            surges[i].evidence["linked"] = links[i]
