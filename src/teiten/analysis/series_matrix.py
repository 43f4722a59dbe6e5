"""Daily series of every port and segment, fetched in one query and laid out as matrices.

Unique sources add up across the domestic / foreign / unknown segments (a
source has one allocated country), so one ``GROUP BY`` over the three gives
the ``all`` series too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.analysis import sketches
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


PORTS_PER_MATRIX = 4096
"""Ports per matrix of :func:`daily_matrices` (what detection holds at a time)."""


def daily_matrices(
    engine: Engine,
    window: Window,
    home_country: str,
    *,
    min_sources: int = 5,
    ports_per_matrix: int = PORTS_PER_MATRIX,
) -> Iterator[SeriesMatrix]:
    """The TCP/UDP ports that reached ``min_sources`` unique sources on some day, by
    protocol and port, ``ports_per_matrix`` at a time: every row is one port's, so a
    caller that treats rows alone (surge detection) holds one matrix at a time."""
    home = country_code(home_country)
    if sketched(engine, window):
        tables: Iterable[pa.Table] = sketches.busy_port_days(
            engine, window, home=home, min_sources=min_sources, ports_per_part=ports_per_matrix
        )
    else:
        sql = traffic.busy_port_days(engine.dialect, window, home=home, min_sources=min_sources)
        tables = _by_ports(engine.query(sql), ports_per_matrix)
    for t in tables:
        yield _matrix(window, t)


def daily_matrix(
    engine: Engine, window: Window, home_country: str, *, min_sources: int = 5
) -> SeriesMatrix:
    """All TCP/UDP ports that reached ``min_sources`` unique sources on some day, in one
    matrix (:func:`daily_matrices`)."""
    parts = list(
        daily_matrices(engine, window, home_country, min_sources=min_sources, ports_per_matrix=0)
    )
    return parts[0] if parts else _matrix(window, None)


def _port_keys(t: pa.Table) -> npt.NDArray[np.int64]:
    keys: npt.NDArray[np.int64] = t.column("proto").to_numpy().astype(np.int64) * 65536 + t.column(
        "dst_port"
    ).to_numpy().astype(np.int64)
    return keys


def _by_ports(t: pa.Table, ports: int) -> Iterator[pa.Table]:
    """The rows of a table sorted by protocol and port, ``ports`` ports (0: all) at a time."""
    keys = _port_keys(t)
    firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else keys
    cuts = [*firsts[:: ports or max(len(firsts), 1)].tolist(), len(keys)]
    for start, end in itertools.pairwise(cuts):
        yield t.slice(start, end - start)


def _matrix(window: Window, t: pa.Table | None) -> SeriesMatrix:
    """The matrix of a table of (proto, dst_port, day, seg, packets, sources) rows."""
    days = window.buckets()
    keys = _port_keys(t) if t is not None else np.zeros(0, np.int64)
    ordered = np.sort(keys)
    uniq = ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(keys) else ordered
    shape = (len(uniq) * len(SEGMENTS), len(days))
    packets, sources = np.zeros(shape), np.zeros(shape)
    if t is not None and len(uniq):
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
