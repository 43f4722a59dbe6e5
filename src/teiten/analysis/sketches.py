"""Per-port questions answered from the day sketches, and when to ask them there.

Exact where it is cheap: a ranking or series counts distinct sources over the
``port_hours`` rows of its window while they are at most the scope's
``exact_rows`` (the ``exact_rollup_rows`` setting). Over more, and when the
sketches can answer — every input has them, the window's days are days of the
store's day zone, the split has no ASN or fingerprint and no ``sources24`` is
asked — :func:`series`, :func:`ranking` and :func:`busy_port_days` select
sketch rows (``teiten.sql.traffic``: ``segment_rows`` by domestic / foreign /
unknown where the store's segments were cut for the asked home country,
``sketch_rows`` by country otherwise) and merge them here
(``teiten.store.registers.merge``): packets exact, sources within the sketch's error.
Their rows have the columns of the exact statements they stand for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.analysis.window import Window
from teiten.engine import Engine
from teiten.enrich.country import COUNTRIES, country_code
from teiten.schema import DAY_NS, HOUR_NS
from teiten.sql import traffic
from teiten.sql.expressions import PROTO_NAMES
from teiten.store.paths import day_text
from teiten.store.registers import merge
from teiten.store.sketch import SEGMENTS, segment_codes

Ports = Sequence[tuple[str, int]]

PORT_LIST_MAX = 5_000
"""Candidate ports read by name up to this many; more read every port's rows."""

CANDIDATE_DAYS = 28
"""Days whose per-day bounds :func:`busy_port_days` computes in one statement."""


def _midnights(window: Window) -> bool:
    """Whether the window starts and ends at local midnights."""
    return all(t % DAY_NS == 0 for t in traffic.local_bounds(window))


def sketched(engine: Engine, window: Window, *, split: str = "none", by_day: bool = True) -> bool:
    """Whether to read the day sketches for ``window`` (``by_day``: its buckets are days)."""
    cover = engine.coverage
    if not traffic.USE_ROLLUPS or cover.zone is None or split not in traffic.SKETCH_SPLITS:
        return False
    if window.tz.key != cover.zone or (by_day and window.size_ns != DAY_NS):
        return False
    if not traffic.hourly(window) or not _midnights(window):
        return False
    first, last = day_text(window.start_ns // DAY_NS), day_text((window.end_ns - 1) // DAY_NS)
    return cover.rows_between(first, last) > engine.scope.exact_rows


def hour_sketched(engine: Engine, window: Window, ports: Ports, *, split: str, home: int) -> bool:
    """Whether to read the hour sketches for an hourly series of ``ports`` over ``window``:
    the day sketches would answer its days (:func:`sketched`, by hour), every input has
    hour sketches, the split is by segment of the store's home country (or none), and
    they hold every packet of the ports' days (``traffic.hour_sketch_gap``)."""
    if window.by != "hour" or split not in ("none", "domestic"):
        return False
    if not engine.coverage.hourly or not sketched(engine, window, split=split, by_day=False):
        return False
    if split == "domestic" and not _by_segment(engine, home):
        return False
    days = traffic.sketch_days(window)
    gap = engine.query(traffic.hour_sketch_gap(engine.dialect, days, ports))
    return int(gap.column("n")[0].as_py()) == 0


def hour_series(
    engine: Engine, window: Window, ports: Ports, *, split: str, home: int
) -> list[dict[str, Any]]:
    """The rows of ``teiten.sql.traffic.port_series`` (hourly buckets) from the hour
    sketches (:func:`hour_sketched`): by segment (none, domestic)."""
    days = traffic.sketch_days(window)
    hours = (window.start_ns // HOUR_NS, window.end_ns // HOUR_NS)
    t = engine.query(traffic.hour_segment_rows(engine.dialect, days, hours, ports))
    changes = window.offsets()  # [(from ns, offset ns)]: whole hours (``sketched``)
    starts = np.array([c[0] for c in changes], np.int64)
    shifts = np.array([c[1] // HOUR_NS for c in changes], np.int64)
    utc = _int(t, "hour")
    local = utc + shifts[np.maximum(np.searchsorted(starts, utc * HOUR_NS, "right") - 1, 0)]
    first = int(window.start_ns + changes[0][1]) // HOUR_NS
    seg = _int(t, "seg") if split == "domestic" else np.zeros(t.num_rows, np.int64)
    return _series_rows(t, local - first, first, seg, ["all", *SEGMENTS.values()])


def _series_rows(
    t: pa.Table, offset: npt.NDArray[np.int64], first: int, seg: Any, names: Sequence[str]
) -> list[dict[str, Any]]:
    """Sketch rows merged per port, bucket (``first`` + each row's ``offset``) and segment
    (each row's ``seg``, named by ``names``), as ``port_series`` rows."""
    key = (_port_key(t) << 24 | offset) << 10 | seg
    m = merge(key, _int(t, "packets"), t.column("registers"))
    return [
        {
            "proto": (k >> 50) & 0xFF,
            "dst_port": (k >> 34) & 0xFFFF,
            "bucket": first + ((k >> 10) & 0xFFFFFF),
            "segment": names[k & 0x3FF],
            "packets": p,
            "sources": s,
            "sources24": 0,
        }
        for k, p, s in zip(m.group.tolist(), m.packets.tolist(), m.sources.tolist(), strict=True)
    ]


def _by_segment(engine: Engine, home: int) -> bool:
    """Whether the segment sketches answer for ``home`` (they were cut for it)."""
    store_home = engine.coverage.home
    return store_home is not None and country_code(store_home) == home


def _rows(engine: Engine, days: tuple[int, int], ports: Ports | None, **kw: Any) -> pa.Table:
    """Sketches by country (``src_cc_code``)."""
    return engine.query(traffic.sketch_rows(engine.dialect, days, ports, **kw))


def _segment_rows(
    engine: Engine, days: tuple[int, int], ports: Ports | None, **kw: Any
) -> pa.Table:
    """Sketches by segment (``seg``: 1 domestic, 2 foreign, 3 unknown)."""
    return engine.query(traffic.segment_rows(engine.dialect, days, ports, **kw))


def _int(table: pa.Table, name: str) -> npt.NDArray[np.int64]:
    values: npt.NDArray[np.int64] = table.column(name).to_numpy().astype(np.int64)
    return values


def _port_key(table: pa.Table) -> npt.NDArray[np.int64]:
    """``proto << 16 | port`` of each row."""
    return _int(table, "proto") << 16 | _int(table, "dst_port")


SEGMENT_NAMES = ["", *SEGMENTS.values()]
"""The segment of each ``seg`` code (``teiten.store.sketch.SEGMENTS``)."""


def _segments(
    engine: Engine, days: tuple[int, int], ports: Ports, split: str, home: int
) -> tuple[pa.Table, Any, list[str]]:
    """The rows a series under ``split`` reads, each row's segment number, their names."""
    if split == "none" or (split == "domestic" and _by_segment(engine, home)):
        t = _segment_rows(engine, days, ports)
        if split == "none":
            return t, np.zeros(t.num_rows, np.int64), ["all"]
        return t, _int(t, "seg"), SEGMENT_NAMES
    t = _rows(engine, days, ports)
    codes = _int(t, "src_cc_code")
    if split == "domestic":
        return t, segment_codes(codes, home), SEGMENT_NAMES
    return t, codes, ["unknown", *COUNTRIES[1:]]  # country: the code itself


def series(
    engine: Engine, window: Window, ports: Ports, *, split: str, home: int
) -> list[dict[str, Any]]:
    """The rows of ``teiten.sql.traffic.port_series`` (daily buckets) from the sketches:
    by segment (none, domestic) or by country."""
    first, end = traffic.sketch_days(window)
    t, seg, names = _segments(engine, (first, end), ports, split, home)
    return _series_rows(t, _int(t, "day") - first, first, seg, names)


def ranking(engine: Engine, window: Window, *, home: int, top: int) -> list[dict[str, Any]]:
    """The rows of ``teiten.sql.traffic.top_ports`` from the segment sketches of the ports
    that can rank in (``port_candidates``), merged over the window's days."""
    candidates = engine.query(traffic.port_candidates(engine.dialect, window, top=top))
    among = [(PROTO_NAMES[p], n) for p, n in zip(*_pairs(candidates), strict=True)]
    days = traffic.sketch_days(window)
    listed = among if len(among) <= PORT_LIST_MAX else None
    t = _segment_rows(engine, days, listed)
    everyone = merge(_port_key(t), _int(t, "packets"), t.column("registers"))
    if _by_segment(engine, home):
        h = t.filter(pa.array(_int(t, "seg") == 1))
    else:  # the home country's own sketches
        h = _rows(engine, days, listed, country=home)
    at_home = merge(_port_key(h), _int(h, "packets"), h.column("registers"))
    home_sources = dict(zip(at_home.group.tolist(), at_home.sources.tolist(), strict=True))
    rows = [
        {
            "proto": PROTO_NAMES[k >> 16],
            "dst_port": k & 0xFFFF,
            "packets": p,
            "sources": s,
            "domestic_sources": home_sources.get(k, 0),
        }
        for k, p, s in zip(
            everyone.group.tolist(),
            everyone.packets.tolist(),
            everyone.sources.tolist(),
            strict=True,
        )
    ]
    rows.sort(key=lambda r: (-r["sources"], -r["packets"], r["dst_port"], r["proto"]))
    return rows[:top]


def _pairs(table: pa.Table) -> tuple[list[int], list[int]]:
    return table.column("proto").to_pylist(), table.column("dst_port").to_pylist()


def busy_port_days(
    engine: Engine, window: Window, *, home: int, min_sources: int, ports_per_part: int = 0
) -> Iterator[pa.Table]:
    """The rows of ``teiten.sql.traffic.busy_port_days`` (daily buckets) from the
    sketches, ``ports_per_part`` candidate ports at a time (0: all at once) in order of
    protocol and port: only the ports that may be busy (``busy_candidates``) are read,
    a range of them per query, so memory grows with the part, not the window."""
    first, end = traffic.sketch_days(window)
    found: set[tuple[int, int]] = set()
    for start in range(first, end, CANDIDATE_DAYS):  # bounded memory: ports × a few weeks
        days = (start, min(start + CANDIDATE_DAYS, end))
        sql = traffic.busy_candidates(engine.dialect, days, min_sources=min_sources)
        found.update(zip(*_pairs(engine.query(sql)), strict=True))
    pairs = sorted(found)
    protos = np.asarray([p for p, _ in pairs], np.int64)
    ports = np.asarray([n for _, n in pairs], np.int64)
    by_segment = _by_segment(engine, home)
    size = ports_per_part or max(len(ports), 1)
    for proto in np.unique(protos).tolist():
        mine = ports[protos == proto]
        for start in range(0, len(mine), size):
            chunk = mine[start : start + size]
            within = (proto, int(chunk[0]), int(chunk[-1]))
            listed = [(PROTO_NAMES[proto], int(p)) for p in chunk.tolist()]
            yield _busy_part(engine, (first, end), within, listed, home, min_sources, by_segment)


def _busy_part(
    engine: Engine,
    days: tuple[int, int],
    within: traffic.PortRange,
    listed: Ports,
    home: int,
    min_sources: int,
    by_segment: bool,
) -> pa.Table:
    """The busy ports' rows of one part of the candidate ports (``busy_port_days``'
    columns): the rows of the ports ``listed``, read ``within`` the range they span (the
    range alone held every port between two candidates: 19,751 ports for 4,096
    candidates, 1.1 GiB, over a year of random ports)."""
    first = days[0]
    if by_segment:
        t = _segment_rows(engine, days, listed, within=within)
        seg = _int(t, "seg")
    else:
        t = _rows(engine, days, listed, within=within)
        seg = segment_codes(_int(t, "src_cc_code"), home)
    key = (_port_key(t) << 24 | (_int(t, "day") - first)) << 2 | seg
    m = merge(key, _int(t, "packets"), t.column("registers"))  # sorted by key
    port_day = m.group >> 2
    cut = np.flatnonzero(np.r_[True, port_day[1:] != port_day[:-1]]) if len(port_day) else port_day
    per_day = np.add.reduceat(m.sources, cut) if len(cut) else m.sources
    busy = np.unique((port_day[cut] >> 24)[per_day >= min_sources])
    keep = np.isin(port_day >> 24, busy)
    key = m.group[keep]
    return pa.table(
        {
            "proto": key >> 42,
            "dst_port": (key >> 26) & 0xFFFF,
            "day": first + ((key >> 2) & 0xFFFFFF),
            "seg": key & 3,
            "packets": m.packets[keep],
            "sources": m.sources[keep],
        }
    )
