"""Day sketches: the ``port_sketches`` and ``port_segments`` rollups, from ``port_hours``.

A ``port_hours`` row names its source, so a count of distinct sources over a
long window reads one row per source, port and hour: at 10^9 packets a year,
hundreds of millions of rows. ``port_sketches`` keeps one row per local day,
protocol, port and source country instead: the packets, and the HyperLogLog
registers of the sources (``teiten.store.registers``: sparse bytes for a few
sources, at most 4 KiB a day for many). ``port_segments`` merges them per
segment of the store's home country (domestic, foreign, unknown), with the
sources each estimates: what rankings, detection and domestic/foreign series
read. Rows of any window of whole days, ports, countries, inputs and sensors
merge — packets by summing, registers by ``max`` — into packets exactly and
distinct sources within 1.6 %. Both tables put the rows of *busy* port days
first, so a question about a busy port reads a few small row groups.

Days are local days of the store's *day zone* (``Lake.day_zone``: the ``tz``
setting when the store's first sketches were written), segments those of its
home country (``Lake.sketch_home``). Sketches are computed from the same
``port_hours`` tables that are written (at ingest, per day file and part) and
rebuilt from them whenever those change (``teiten enrich``) or the zone or
country does (``teiten rollup`` with ``--zone`` or ``--home``): :func:`rebuild`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.schema import LEGACY_ROLLUPS
from teiten.schema.daytables import (
    PORT_SEGMENTS,
    PORT_SKETCHES,
    SKETCH_BUSY_PORTS,
    SKETCH_BUSY_SOURCES,
)
from teiten.store import hoursketch, portlists
from teiten.store.arrow import bytes16_values, write_file
from teiten.store.executor import INLINE
from teiten.store.lake import Lake
from teiten.store.order import radix_order
from teiten.store.registers import Registers, merge, row_registers, run_starts, sketch
from teiten.store.rollup import schema
from teiten.store.transaction import Transaction

Columns = dict[str, npt.NDArray[Any]]

_SECONDS_PER_DAY = 86_400


def local_days(hours: npt.NDArray[Any], zone: str) -> npt.NDArray[np.int32]:
    """The local day (in ``zone``) of each UTC hour number: one zone lookup per distinct hour
    (found by counting when the hours span less than a year, as a day file's do)."""
    if len(hours) == 0:
        return np.zeros(0, np.int32)
    tz = ZoneInfo(zone)
    hours = np.asarray(hours, np.int64)
    first, span = int(hours.min()), int(hours.max()) - int(hours.min()) + 1
    if span <= _HOURS_COUNTED:  # no sort: each hour's index among the distinct ones
        distinct = np.flatnonzero(np.bincount(hours - first, minlength=span)) + first
        position = np.zeros(span, np.intp)
        position[distinct - first] = np.arange(len(distinct))
        inverse = position[hours - first]
    else:
        distinct, inverse = np.unique(hours, return_inverse=True)
    days = np.empty(len(distinct), np.int32)
    for i, hour in enumerate(distinct.tolist()):
        offset = dt.datetime.fromtimestamp(hour * 3600, tz).utcoffset()  # in force then
        seconds = hour * 3600 + int(offset.total_seconds() if offset is not None else 0)
        days[i] = seconds // _SECONDS_PER_DAY
    out: npt.NDArray[np.int32] = days[inverse.reshape(-1)]
    return out


_HOURS_COUNTED = 24 * 366


def day_rows(
    port_hours: pa.Table,
    zone: str,
    days: npt.NDArray[Any] | None = None,
    registers: Registers | None = None,
) -> pa.Table:
    """The ``port_sketches`` rows of a table of ``port_hours`` rows, with days cut in ``zone``
    (``days``: the rows' local days, ``registers`` their sources' registers, when known):
    per local day, protocol, port and country, the packets and the sources' sketch."""
    target = schema(PORT_SKETCHES)
    if port_hours.num_rows == 0:
        return target.empty_table()
    col = {n: port_hours.column(n).to_numpy() for n in ("hour", "proto", "dst_port", "src_cc")}
    reg, rank = row_registers(port_hours) if registers is None else registers
    day = local_days(col["hour"], zone) if days is None else days
    group = _sketch_key(day, col["proto"], col["dst_port"], col["src_cc"])
    groups, packets, registers = sketch(group, reg, rank, port_hours.column("packets").to_numpy())
    arrays = {
        "busy": pa.array(np.zeros(len(groups), bool)),  # :func:`sketch_tables` marks them
        "day": pa.array(int(day.min()) + (groups >> 33)),
        "proto": pa.array(np.where(groups >> 32 & 1, 17, 6)),
        "dst_port": pa.array(groups >> 16 & 0xFFFF),
        "src_cc": pa.array(groups & 0xFFFF),
        "packets": pa.array(packets),
        "registers": registers,
    }
    return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in target], schema=target)


def _sketch_key(day: Any, proto: Any, port: Any, cc: Any) -> npt.NDArray[np.int64]:
    """One integer per row ordering ``port_sketches`` rows by day, protocol, port, country."""
    day = np.asarray(day, np.int64)
    key: npt.NDArray[np.int64] = (
        (day - int(day.min())) << 33
        | (np.asarray(proto) == 17).astype(np.int64) << 32
        | np.asarray(port, np.int64) << 16
        | np.asarray(cc, np.int64)
    )
    return key


def combine(parts: Sequence[pa.Table]) -> pa.Table:
    """``port_sketches`` rows of several tables (the parts of one input's day file) as one:
    the rows of a day, protocol, port and country merged, in :func:`day_rows`' order."""
    rows = [p for p in parts if p.num_rows]
    if len(rows) <= 1:
        return rows[0] if rows else schema(PORT_SKETCHES).empty_table()
    t = pa.concat_tables(rows)
    col = {n: t.column(n).to_numpy() for n in ("day", "proto", "dst_port", "src_cc")}
    key = _sketch_key(col["day"], col["proto"], col["dst_port"], col["src_cc"])
    m = merge(key, t.column("packets").to_numpy(), t.column("registers"), keep=True)
    order = radix_order(key)
    at = order[run_starts(key[order])]  # a row of each group (as m.group), for its keys
    target = schema(PORT_SKETCHES)
    arrays = {
        "busy": pa.array(np.zeros(len(at), bool)),
        "day": pa.array(col["day"][at]),
        "proto": pa.array(col["proto"][at]),
        "dst_port": pa.array(col["dst_port"][at]),
        "src_cc": pa.array(col["src_cc"][at]),
        "packets": pa.array(m.packets),
        "registers": m.registers,
    }
    return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in target], schema=target)


SEGMENTS = {1: "domestic", 2: "foreign", 3: "unknown"}
"""The ``seg`` codes of ``port_segments`` rows (the store's home country is domestic)."""


def segment_codes(src_cc: npt.NDArray[Any], home: int) -> npt.NDArray[np.int64]:
    """The :data:`SEGMENTS` code of each country code, ``home`` being domestic."""
    cc = np.asarray(src_cc, np.int64)
    codes: npt.NDArray[np.int64] = np.where(cc == home, 1, np.where(cc == 0, 3, 2))
    return codes


def segment_rows(sketches: pa.Table, home: int) -> pa.Table:
    """The ``port_segments`` rows of a table of ``port_sketches`` rows: per day, protocol,
    port and segment (``home`` domestic), their packets, merged registers and the sources
    these estimate."""
    target = schema(PORT_SEGMENTS)
    if sketches.num_rows == 0:
        return target.empty_table()
    day = sketches.column("day").to_numpy().astype(np.int64)
    first = int(day.min())
    proto = sketches.column("proto").to_numpy().astype(np.int64)
    port = sketches.column("dst_port").to_numpy().astype(np.int64)
    seg = segment_codes(sketches.column("src_cc").to_numpy(), home)
    group = proto << 44 | port << 28 | (day - first) << 2 | seg  # sorted by port, then day
    m = merge(group, sketches.column("packets").to_numpy(), sketches.column("registers"), keep=True)
    arrays = {
        "busy": pa.array(np.zeros(len(m.group), bool)),  # :func:`sketch_tables` marks them
        "day": pa.array((m.group >> 2 & 0x3FFFFFF) + first),
        "proto": pa.array(m.group >> 44),
        "dst_port": pa.array(m.group >> 28 & 0xFFFF),
        "seg": pa.array(m.group & 3),
        "packets": pa.array(m.packets),
        "sources": pa.array(m.sources),
        "registers": m.registers,
    }
    return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in target], schema=target)


def read_port_hours(path: Any) -> pa.Table:
    """The columns of a ``port_hours`` file that its day sketches read."""
    names = ("hour", "proto", "dst_port", "ip_version", "src_ip4", "src_ip6", "src_cc", "src_asn",
             "fp", "packets")  # fmt: skip
    return pq.read_table(path, columns=list(names))


@dataclass(frozen=True)
class SketchCut:
    """How a store's sketches are cut (catalog properties ``day_zone`` and ``sketch_home``)."""

    zone: str
    """Days are local days of this zone."""
    home: int
    """The country code (``teiten.enrich.country``) whose sources are the ``domestic``
    segment of ``port_segments``."""


def rebuild(
    tx: Transaction, cut: SketchCut, countries: Callable[[Columns], Columns] | None = None
) -> int:
    """Stage, in a rewrite transaction, the day sketches of every committed ``port_hours``
    file, cut by ``cut``, and drop every listed sketch file (also those of
    :data:`LEGACY_ROLLUPS`); returns the rows staged.

    ``countries`` (``teiten enrich``) maps the rows' source columns (``ip_version``,
    ``src_ip4``, ``src_ip6``) to their new ``src_cc`` (and ``src_asn`` when it has an AS
    source), the same function that rewrites the ``port_hours`` rows in the same
    transaction.
    """
    lake = tx.lake
    for table in (*SKETCH_TABLES, *LEGACY_ROLLUPS):
        for rel in lake.catalog.files(table):
            tx.remove(rel)
    day_files: dict[str, list[str]] = {}  # an input's day file: its rollup parts
    for rel in lake.catalog.files("port_hours"):
        day_files.setdefault(rel.rsplit("-", 1)[0], []).append(rel)
    staged = 0
    for parts in day_files.values():
        sketch = DaySketch(cut)
        for rel in parts:
            hours = read_port_hours(lake.root / rel)
            if countries is not None and hours.num_rows:
                sources = {
                    "ip_version": hours.column("ip_version").to_numpy(),
                    "src_ip4": hours.column("src_ip4").to_numpy(),
                    "src_ip6": bytes16_values(hours.column("src_ip6")),
                }
                for name, values in countries(sources).items():  # src_cc (and src_asn)
                    at = hours.schema.get_field_index(name)
                    typed = pa.array(np.asarray(values), hours.schema.field(name).type)
                    hours = hours.set_column(at, name, typed)
            sketch.add(hours)
        for table, rows in sketch.tables().items():
            new, path = tx.replacement(f"{table}/" + parts[0].split("/", 1)[1])
            write_file(table, rows, path)
            tx.add(table, new, rows.num_rows)
            staged += rows.num_rows
    return staged


DAY_TABLES = ("port_sketches", "port_segments", "port_groups", "port_tops")
"""The day sketches and the port lists (``teiten.store.portlists``): what the sketched
statements need of every input (:class:`Coverage`)."""

SKETCH_TABLES = (*DAY_TABLES, "port_hour_segments")
"""The tables derived from the ``port_hours`` files of each input's day (:class:`DaySketch`):
:data:`DAY_TABLES` and the hour sketches of busy port days (``teiten.store.hoursketch``)."""


class DaySketch:
    """The day sketches and port lists of one input's day file, from its ``port_hours``
    parts as they are written (a part's rows are kept, the part is not): one file of each
    a day however many parts the rollup spilled, so a busy port has one row per input and
    day."""

    def __init__(self, cut: SketchCut) -> None:
        self.cut = cut
        self.found: list[list[Future[pa.Table]]] = []
        """Per part, its four derivations (:meth:`add`), done or running."""

    def add(self, port_hours: pa.Table, pool: Executor = INLINE) -> None:
        """Add a ``port_hours`` part's rows; its four derivations run in ``pool`` (with a
        thread pool, while the caller goes on: :meth:`tables` waits for them)."""
        if port_hours.num_rows == 0:
            return
        days = local_days(port_hours.column("hour").to_numpy(), self.cut.zone)
        registers = row_registers(port_hours)  # hashed once for both sketches
        seg = segment_codes(port_hours.column("src_cc").to_numpy(), self.cut.home)
        jobs: list[tuple[Callable[..., pa.Table], tuple[Any, ...]]] = [
            (day_rows, (port_hours, self.cut.zone, days, registers)),
            (portlists.group_rows, (port_hours, days, registers)),
            (portlists.top_rows, (port_hours, days)),
            (hoursketch.hour_rows, (port_hours, days, seg, registers)),
        ]
        self.found.append([pool.submit(job, *args) for job, args in jobs])

    def tables(self, pool: Executor = INLINE) -> dict[str, pa.Table]:
        """The tables of :data:`SKETCH_TABLES`, each sorted busy first (``busy``: the port's
        day is among the SKETCH_BUSY_PORTS with most sources, and has SKETCH_BUSY_SOURCES
        at least); the hour sketches of every day of the file's busiest ports only. The
        parts' derivations are combined side by side in ``pool``."""
        parts, groups, tops, hours = (
            ([f.result() for f in kind] for kind in zip(*self.found, strict=True))
            if self.found
            else ([], [], [], [])
        )
        combined = {
            "port_groups": pool.submit(portlists.combine_groups, groups),
            "port_tops": pool.submit(portlists.combine_tops, tops),
            hoursketch.TABLE: pool.submit(hoursketch.combine_hours, hours),
        }
        days = combine(parts)
        out = {"port_sketches": days, "port_segments": segment_rows(days, self.cut.home)}
        out |= {table: combined[table].result() for table in ("port_groups", "port_tops")}
        every_hour = combined[hoursketch.TABLE].result()
        if days.num_rows == 0:
            out[hoursketch.TABLE] = every_hour
            return out
        segments = out["port_segments"]
        key = port_day_keys(segments)
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # rows sorted by port, day
        sources = np.add.reduceat(segments.column("sources").to_numpy(), first)
        busiest = np.argsort(-sources, kind="stable")[:SKETCH_BUSY_PORTS]
        busy = key[first][busiest[sources[busiest] >= SKETCH_BUSY_SOURCES]]
        marked = {table: pool.submit(busy_first, rows, busy) for table, rows in out.items()}
        # Hour sketches for every day of the file's busiest ports, however few their
        # sources: a day file holds parts of two local days in other zones, and a busy
        # port's smaller part is sketched by the hour too.
        ports = np.unique(key[first][busiest] >> 32)
        hourly = key[first][np.isin(key[first] >> 32, ports)]
        out = {table: rows.result() for table, rows in marked.items()}
        out[hoursketch.TABLE] = hoursketch.kept(every_hour, hourly)
        return out


def sketch_tables(port_hours: pa.Table, cut: SketchCut) -> dict[str, pa.Table]:
    """The day sketches of one ``port_hours`` table (:class:`DaySketch` of one part)."""
    sketch = DaySketch(cut)
    sketch.add(port_hours)
    return sketch.tables()


def port_day_keys(table: pa.Table) -> npt.NDArray[np.int64]:
    """``proto``, ``dst_port`` and ``day`` of each row in one key."""
    key: npt.NDArray[np.int64] = (
        table.column("proto").to_numpy().astype(np.int64) << 48
        | table.column("dst_port").to_numpy().astype(np.int64) << 32
        | table.column("day").to_numpy().astype(np.int64)
    )
    return key


def busy_first(table: pa.Table, busy: npt.NDArray[np.int64]) -> pa.Table:
    """``table`` with ``busy`` set for the rows of the busy port days and those rows first,
    each part in its order (by protocol, port and day)."""
    if table.num_rows == 0:
        return table
    key = port_day_keys(table)
    flag = np.isin(key, busy)
    order = np.lexsort((np.arange(len(key)), key, ~flag))
    field = table.schema.field("busy")
    marked = table.set_column(table.schema.get_field_index("busy"), field, pa.array(flag))
    return marked.take(pa.array(order))


@dataclass(frozen=True)
class Coverage:
    """What a reader needs to know of the sketches, read from the catalog when it opens."""

    zone: str | None = None
    """The store's day zone; None when there are no sketches or an input lacks them."""
    home: str | None = None
    """The country the segment sketches count as domestic (None as ``zone``)."""
    rows: Mapping[str, int] = field(default_factory=dict)
    """``port_hours`` rows per UTC day (``YYYY-MM-DD``): what an exact answer reads."""
    hourly: bool = False
    """Whether every input has its hour sketches (``port_hour_segments``) too."""

    def rows_between(self, first_day: str, last_day: str) -> int:
        """``port_hours`` rows of the UTC days ``first_day``..``last_day``."""
        return sum(n for day, n in self.rows.items() if first_day <= day <= last_day)


def coverage(lake: Lake) -> Coverage:
    """The sketches' :class:`Coverage` of a lake (its catalog open)."""
    zone, home = lake.day_zone(), lake.sketch_home()
    complete = zone is not None and home is not None and not lake.unsketched(DAY_TABLES)
    if not complete:
        return Coverage(rows=lake.rollup_rows_by_day())
    hourly = not lake.unsketched((hoursketch.TABLE,))
    return Coverage(zone, home, lake.rollup_rows_by_day(), hourly)
