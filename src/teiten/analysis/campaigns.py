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
from teiten.engine import Engine
from teiten.enrich.country import country_code
from teiten.fingerprint import registry
from teiten.sql import traffic

ONSET_DAYS = 3
SPAN_DAYS = 14
MIN_OVERLAP = 0.2
MAX_SOURCES = 500_000


def _slice(alert: Alert, window: Window, home: int) -> traffic.Slice:
    """The alert's port and segment over its first :data:`SPAN_DAYS` days."""
    number, proto = alert.port.split("/")
    onset = dt.date.fromisoformat(alert.onset)
    last = min(dt.date.fromisoformat(alert.last), onset + dt.timedelta(days=SPAN_DAYS - 1))
    span = Window.from_dates(onset, last, window.tz.key)
    return traffic.Slice(proto, int(number), alert.segment, span.start_ns, span.end_ns, home)


def _sources(engine: Engine, alert: Alert, window: Window, home: int) -> set[Any]:
    sql = traffic.slice_source_keys(engine.dialect, _slice(alert, window, home), limit=MAX_SOURCES)
    return set(engine.query(sql).column("s").to_pylist())


def _fingerprint_mix(engine: Engine, alert: Alert, window: Window, home: int) -> dict[str, float]:
    fps = registry.registered()
    sql = traffic.slice_fingerprint_shares(
        engine.dialect, _slice(alert, window, home), [(f.bit, f.name) for f in fps]
    )
    row = engine.query(sql)
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


def campaign_key(alert: Alert, position: int = 0) -> str:
    """The id a report section, the dashboard and the API give the alert's group: its
    campaign, or for a lone alert ``a<id>-<port><proto>-<onset>``."""
    if alert.campaign:
        return alert.campaign
    return f"a{alert.id or position}-{alert.port.replace('/', '')}-{alert.onset}"


def campaign_groups(alerts: list[Alert]) -> list[tuple[str, list[Alert]]]:
    """Alerts grouped by campaign (lone alerts alone), ordered by onset."""
    groups: dict[str, list[Alert]] = {}
    for a in alerts:
        groups.setdefault(campaign_key(a, len(groups)), []).append(a)
    return sorted(groups.items(), key=lambda g: (min(a.onset for a in g[1]), g[0]))
