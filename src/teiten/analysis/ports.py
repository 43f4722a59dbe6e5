"""Ports ranked by how many distinct sources reached them, then by packets."""

from __future__ import annotations

from typing import Any

from teiten.analysis import sketches
from teiten.analysis.sketches import sketched
from teiten.analysis.window import Window
from teiten.engine import Engine
from teiten.enrich.country import country_code
from teiten.sql import traffic


def top_ports(
    engine: Engine, window: Window, *, top: int = 20, home_country: str = "JP"
) -> list[dict[str, Any]]:
    """The ``top`` TCP/UDP destination ports of inbound packets in the window.

    Each row: ``port`` (``23/tcp``), ``sources``, ``packets``, ``domestic_sources``.
    """
    home = country_code(home_country)
    if sketched(engine, window, by_day=False):
        rows = sketches.ranking(engine, window, home=home, top=top)
    else:
        rows = engine.query(
            traffic.top_ports(engine.dialect, window, home=home, top=top)
        ).to_pylist()
    return [
        {
            "port": f"{r['dst_port']}/{r['proto']}",
            "sources": int(r["sources"]),
            "packets": int(r["packets"]),
            "domestic_sources": int(r["domestic_sources"]),
        }
        for r in rows
    ]
