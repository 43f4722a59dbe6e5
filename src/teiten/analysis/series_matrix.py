"""Daily series of every port and segment, fetched in one query and laid out as matrices.

Unique sources add up across the domestic / foreign / unknown segments (a
source has one allocated country), so one ``GROUP BY`` over the three gives
the ``all`` series too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from teiten.analysis.series import Port
from teiten.analysis.sketches import sketched
from teiten.analysis.window import Window
from teiten.engine import Engine
from teiten.enrich.country import country_code
from teiten.sql import traffic

SEGMENTS = ("all", "domestic", "foreign")
_PROTO_NAMES = {6: "tcp", 17: "udp"}


@dataclass
class SeriesMatrix:
    """Packets and unique sources per (port, segment) row and day column."""

    window: Window
    days: list[int]
    ports: list[Port]
    packets: npt.NDArray[np.float64]
    """Shape (len(ports) × 3, len(days)); row ``i * 3 + s`` is port i, segment SEGMENTS[s]."""
    sources: npt.NDArray[np.float64]

    def row(self, port_index: int, segment: str) -> int:
        return port_index * len(SEGMENTS) + SEGMENTS.index(segment)

    def key(self, row: int) -> tuple[Port, str]:
        return self.ports[row // len(SEGMENTS)], SEGMENTS[row % len(SEGMENTS)]

    def day_label(self, index: int) -> str:
        return self.window.label(self.days[index])


def daily_matrix(
    engine: Engine, window: Window, home_country: str, *, min_sources: int = 5
) -> SeriesMatrix:
    """All TCP/UDP ports that reached ``min_sources`` unique sources on some day."""
    sql = traffic.busy_port_days(
        engine.dialect,
        window,
        home=country_code(home_country),
        min_sources=min_sources,
        sketches=sketched(engine, window),
    )
    t = engine.query(sql)
    days = window.buckets()
    keys = t.column("proto").to_numpy().astype(np.int64) * 65536 + t.column(
        "dst_port"
    ).to_numpy().astype(np.int64)
    ordered = np.sort(keys)
    uniq = ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(keys) else ordered
    shape = (len(uniq) * len(SEGMENTS), len(days))
    packets, sources = np.zeros(shape), np.zeros(shape)
    if len(uniq):
        port_i = np.searchsorted(uniq, keys)
        day_i = t.column("day").to_numpy() - days[0]
        seg = t.column("seg").to_numpy()
        for arr, col in ((packets, "packets"), (sources, "sources")):
            v = t.column(col).to_numpy().astype(np.float64)
            np.add.at(arr, (port_i * 3, day_i), v)  # all
            named = seg < 3  # unknown counts only towards all
            np.add.at(arr, (port_i[named] * 3 + seg[named], day_i[named]), v[named])
    ports = [Port(int(k) % 65536, _PROTO_NAMES[int(k) // 65536]) for k in uniq]
    return SeriesMatrix(window, days, ports, packets, sources)
