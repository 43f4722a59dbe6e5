"""Per-port series: packets and unique sources per port, local day (or hour) and segment.

>>> rows = trend(engine, parse_ports(["23/tcp"]), window, split="domestic")  # doctest: +SKIP
>>> rows[0]
{'port': '23/tcp', 'date': '2017-10-01', 'segment': 'domestic', 'packets': 12, 'sources': 3}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from teiten.analysis import sketches
from teiten.analysis.sketches import sketched
from teiten.analysis.window import Window
from teiten.engine import Engine
from teiten.enrich.country import country_code
from teiten.errors import ConfigError
from teiten.fingerprint import registry
from teiten.sql import traffic
from teiten.sql.traffic import SPLITS

PROTOS = {"tcp": 6, "udp": 17}
MEASURES = ("packets", "sources", "sources24", "per_address")
"""``packets``; ``sources`` (unique addresses); ``sources24`` (unique IPv4 /24s);
``per_address``: packets per sensor address active in the bucket (NICTER-style
normalisation, so sensors of different sizes compare)."""


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


def active_addresses(engine: Engine, window: Window) -> dict[int, int]:
    """Sensor addresses that received anything, per bucket."""
    rows = engine.query(traffic.active_addresses(engine.dialect, window)).to_pylist()
    return {int(r["bucket"]): int(r["n"]) for r in rows}


def _shown(split: str) -> list[str]:
    """The segments a split always shows (zero-filled)."""
    if split == "none":
        return ["all"]
    if split == "domestic":
        return ["domestic", "foreign"]
    if split == "fingerprint":
        return [f.name for f in registry.registered()] + ["none"]
    return []


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
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    active = active_addresses(engine, window) if "per_address" in measures else {}
    pairs = [(p.proto, p.number) for p in ports]
    home = country_code(home_country)
    if "sources24" not in measures and sketched(engine, window, split=split):
        table = sketches.series(engine, window, pairs, split=split, home=home)
    elif "sources24" not in measures and sketches.hour_sketched(
        engine, window, pairs, split=split, home=home
    ):
        table = sketches.hour_series(engine, window, pairs, split=split, home=home)
    else:
        sql = traffic.port_series(
            engine.dialect,
            window,
            pairs,
            split=split,
            home=home,
            fingerprints=[(f.bit, f.name) for f in registry.registered()],
            with_sources24="sources24" in measures,
        )
        table = engine.query(sql).to_pylist()
    shown = _shown(split)
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
