"""Per-port series: packets and unique sources per port, local day (or hour) and segment.

>>> rows = trend(engine, parse_ports(["23/tcp"]), window, split="domestic")  # doctest: +SKIP
>>> rows[0]
{'port': '23/tcp', 'date': '2017-10-01', 'segment': 'domestic', 'packets': 12, 'sources': 3}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from teiten.analysis.window import Window, resolve_window
from teiten.config import Settings
from teiten.enrich.country import country_code
from teiten.errors import ConfigError
from teiten.fingerprint import registry
from teiten.store.engine import Engine, open_engine
from teiten.store.views import port_rule

PROTOS = {"tcp": 6, "udp": 17}
SPLITS = ("none", "domestic", "country", "asn", "fingerprint")
MEASURES = ("packets", "sources", "sources24", "per_address")
"""``packets``; ``sources`` (unique addresses); ``sources24`` (unique IPv4 /24s);
``per_address``: packets per sensor address active in the bucket (NICTER-style
normalisation, so sensors of different sizes compare)."""

SOURCES24_SQL = "count(DISTINCT src_ip4 >> 8) FILTER (WHERE ip_version = 4)"

# Unique sources over both address families, portable SQL.
SOURCES_SQL = (
    "(count(DISTINCT src_ip4) FILTER (WHERE ip_version = 4)"
    " + count(DISTINCT src_ip6) FILTER (WHERE ip_version = 6))"
)


@dataclass(frozen=True)
class Port:
    """A transport port, written ``23/tcp``."""

    number: int
    proto: str

    def __str__(self) -> str:
        return f"{self.number}/{self.proto}"


def parse_ports(texts: list[str]) -> list[Port]:
    """Parse ``23/tcp``-style arguments (``23`` alone means TCP); comma lists allowed."""
    out: list[Port] = []
    for text in texts:
        for item in filter(None, (t.strip() for t in text.split(","))):
            m = re.fullmatch(r"(\d{1,5})(?:/(tcp|udp))?", item.lower())
            if not m or int(m.group(1)) > 65535:
                raise ConfigError(f"not a port: {item!r} (expected e.g. 23/tcp or 53/udp)")
            port = Port(int(m.group(1)), m.group(2) or "tcp")
            if port not in out:
                out.append(port)
    if not out:
        raise ConfigError("name at least one port, e.g. 52869/tcp")
    return out


def segment_sql(split: str, home_country: str) -> tuple[str, list[str]]:
    """SQL for the segment of a row, and the segments always shown (zero-filled)."""
    if split == "none":
        return "'all'", ["all"]
    if split == "domestic":
        home = country_code(home_country)
        return (
            f"CASE WHEN src_cc_code = {home} THEN 'domestic' WHEN src_cc_code = 0 THEN 'unknown'"
            " ELSE 'foreign' END",
            ["domestic", "foreign"],
        )
    if split == "country":
        return "CASE WHEN src_cc = '' THEN 'unknown' ELSE CAST(src_cc AS VARCHAR) END", []
    if split == "asn":
        return (
            "CASE WHEN src_asn = 0 THEN 'unknown' ELSE concat('AS', CAST(src_asn AS VARCHAR)) END",
            [],
        )
    raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")


def _port_filter(ports: list[Port]) -> str:
    terms = [f"(proto = {PROTOS[p.proto]} AND dst_port = {p.number})" for p in ports]
    return f"({' OR '.join(terms)}) AND {port_rule()}"


def _base_where(window: Window) -> str:
    return f"NOT is_outbound AND ts >= {window.start_ns} AND ts < {window.end_ns}"


def _query(
    ports: list[Port], window: Window, segment: str, extra: str = "", measures: tuple[str, ...] = ()
) -> str:
    s24 = SOURCES24_SQL if "sources24" in measures else "0"
    return f"""
SELECT proto, dst_port, {window.bucket_sql()} AS bucket, {segment} AS segment,
       count(*) AS packets, {SOURCES_SQL} AS sources, {s24} AS sources24
FROM packets_raw
WHERE {_base_where(window)} AND {_port_filter(ports)} {extra}
GROUP BY 1, 2, 3, 4"""


def active_addresses(engine: Engine, window: Window) -> dict[int, int]:
    """Sensor addresses that received anything, per bucket."""
    sql = f"""
SELECT {window.bucket_sql()} AS bucket,
       count(DISTINCT dst_ip4) FILTER (WHERE ip_version = 4)
       + count(DISTINCT dst_ip6) FILTER (WHERE ip_version = 6) AS n
FROM packets_raw WHERE {_base_where(window)} GROUP BY 1"""
    return {int(r["bucket"]): int(r["n"]) for r in engine.query(sql).to_pylist()}


def trend(
    engine: Engine,
    ports: list[Port],
    window: Window,
    *,
    split: str = "none",
    home_country: str = "JP",
    measures: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """One row per port, bucket and segment, zero-filled over the window.

    Rows always hold ``packets`` and ``sources``; ``measures`` adds
    ``sources24`` and/or ``per_address``.
    """
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ConfigError(f"--measure must be among {', '.join(MEASURES)}, not {sorted(unknown)}")
    active = active_addresses(engine, window) if "per_address" in measures else {}
    if split == "fingerprint":
        parts = [
            _query(ports, window, f"'{f.name}'", f"AND (fp >> {f.bit}) & 1 = 1", measures)
            for f in registry.registered()
        ]
        parts.append(_query(ports, window, "'none'", "AND fp = 0", measures))
        sql = " UNION ALL ".join(parts)
        shown = [f.name for f in registry.registered()] + ["none"]
    else:
        segment, shown = segment_sql(split, home_country)
        sql = _query(ports, window, segment, measures=measures)
    table = engine.query(sql).to_pylist()
    found = {(r["proto"], r["dst_port"], r["bucket"], r["segment"]): r for r in table}
    segments = list(dict.fromkeys(shown + sorted({r["segment"] for r in table} - set(shown))))
    key = "date" if window.by == "day" else "hour"
    rows: list[dict[str, Any]] = []
    for p in ports:
        for b in window.buckets():
            for s in segments:
                r = found.get((PROTOS[p.proto], p.number, b, s))
                if r is None and s not in shown:
                    continue
                row = {
                    "port": str(p),
                    key: window.label(b),
                    "segment": s,
                    "packets": int(r["packets"]) if r else 0,
                    "sources": int(r["sources"]) if r else 0,
                }
                if "sources24" in measures:
                    row["sources24"] = int(r["sources24"]) if r else 0
                if "per_address" in measures:
                    row["per_address"] = (
                        round(row["packets"] / active[b], 3) if active.get(b) else 0.0
                    )
                rows.append(row)
    return rows


def port_trend(
    settings: Settings,
    ports: list[str],
    *,
    first: str | None = None,
    last: str | None = None,
    by: str = "day",
    split: str = "none",
    measures: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """``teiten trend``: series for ports over a window of local dates (default: all data)."""
    parsed = parse_ports(ports)
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, str(settings.tz), by)
        if window is None:
            return []
        return trend(
            engine,
            parsed,
            window,
            split=split,
            home_country=str(settings.home_country),
            measures=measures,
        )
