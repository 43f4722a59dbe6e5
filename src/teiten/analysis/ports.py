"""Ports ranked by how many distinct sources reached them, then by packets."""

from __future__ import annotations

from typing import Any

from teiten.analysis.series import SOURCES_SQL
from teiten.analysis.window import Window, resolve_window
from teiten.config import Settings
from teiten.enrich.country import country_code
from teiten.store.engine import Engine, open_engine
from teiten.store.views import port_rule, proto_text


def top_ports(
    engine: Engine, window: Window, *, top: int = 20, home_country: str = "JP"
) -> list[dict[str, Any]]:
    """The ``top`` TCP/UDP destination ports of inbound packets in the window.

    Each row: ``port`` (``23/tcp``), ``sources``, ``packets``, ``domestic_sources``.
    """
    home = country_code(home_country)
    sql = f"""
SELECT {proto_text()} AS proto, dst_port, count(*) AS packets, {SOURCES_SQL} AS sources,
       count(DISTINCT src_ip4) FILTER (WHERE ip_version = 4 AND src_cc_code = {home})
       + count(DISTINCT src_ip6) FILTER (WHERE ip_version = 6 AND src_cc_code = {home})
         AS domestic_sources
FROM packets_raw
WHERE NOT is_outbound AND {port_rule()}
  AND ts >= {window.start_ns} AND ts < {window.end_ns}
GROUP BY 1, 2
ORDER BY sources DESC, packets DESC, dst_port
LIMIT {int(top)}"""
    return [
        {
            "port": f"{r['dst_port']}/{r['proto']}",
            "sources": int(r["sources"]),
            "packets": int(r["packets"]),
            "domestic_sources": int(r["domestic_sources"]),
        }
        for r in engine.query(sql).to_pylist()
    ]


def port_ranking(
    settings: Settings, *, first: str | None = None, last: str | None = None, top: int = 20
) -> list[dict[str, Any]]:
    """``teiten ports``: the top ports over a window of local dates (default: all data)."""
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, str(settings.tz))
        if window is None:
            return []
        return top_ports(engine, window, top=top, home_country=str(settings.home_country))
