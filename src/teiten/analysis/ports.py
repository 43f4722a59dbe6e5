"""Ports ranked by how many distinct sources reached them, then by packets."""

from __future__ import annotations

from typing import Any

from teiten.analysis.sketches import sketched
from teiten.analysis.window import Window
from teiten.engine import Engine
from teiten.enrich.country import country_code
from teiten.sql import traffic
from teiten.sql.expressions import PROTO_NAMES


def top_ports(
    engine: Engine, window: Window, *, top: int = 20, home_country: str = "JP"
) -> list[dict[str, Any]]:
    """The ``top`` TCP/UDP destination ports of inbound packets in the window.

    Each row: ``port`` (``23/tcp``), ``sources``, ``packets``, ``domestic_sources``.
    """
    sketches = sketched(engine, window, by_day=False)
    among = None
    if sketches:  # merge the registers of the ports that can rank in only
        rows = engine.query(traffic.port_candidates(engine.dialect, window, top=top)).to_pylist()
        among = [(PROTO_NAMES[int(r["proto"])], int(r["dst_port"])) for r in rows]
    sql = traffic.top_ports(
        engine.dialect,
        window,
        home=country_code(home_country),
        top=top,
        sketches=sketches,
        among=among,
    )
    return [
        {
            "port": f"{r['dst_port']}/{r['proto']}",
            "sources": int(r["sources"]),
            "packets": int(r["packets"]),
            "domestic_sources": int(r["domestic_sources"]),
        }
        for r in engine.query(sql).to_pylist()
    ]
