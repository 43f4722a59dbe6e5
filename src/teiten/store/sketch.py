"""Day sketches: the ``port_sketches`` rollup, derived from ``port_hours`` rows.

A ``port_hours`` row names its source, so a count of distinct sources over a
long window reads one row per source, port and hour: at 10^9 packets a year,
hundreds of millions of rows. ``port_sketches`` keeps one row per local day,
protocol, port and source country: the packets, and the HyperLogLog sketch of
the sources (Flajolet et al. 2007): a source's 64-bit hash picks a register
(its top :data:`~teiten.schema.SKETCH_BITS` bits) and a rank (1 + the leading
zeros of the other bits); a register keeps the highest rank that reached it.
Rows of any window of whole days, any ports, countries, inputs and sensors
merge — packets by summing, registers by ``max`` (:func:`merge`, a numba loop
over the stored bytes) — and the merged registers estimate the distinct
sources within 1.6 % (:func:`estimates`).

A sketch is stored *sparse* (3 bytes per register set) while that is shorter
than *dense* (one byte per register): the long tail of (port, country) pairs
with a few sources a day costs a few bytes, a busy port at most 4 KiB a day.
The engines only select rows; merging in numpy rather than in SQL is what makes
a year of a port a few thousand rows to read instead of millions
(docs/architecture.md, "Day sketches").

Days are local days of the store's *day zone* (``Lake.day_zone``: the ``tz``
setting when the store's first sketches were written). Sketches are computed
from the same ``port_hours`` tables that are written (at ingest, per day file
and part) and rebuilt from them whenever those change (``teiten enrich``) or
the day zone does (``teiten rollup --zone``): :func:`rebuild`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from numba import njit

from teiten.schema import (
    PORT_SEGMENTS,
    PORT_SKETCHES,
    SKETCH_ALPHA,
    SKETCH_BITS,
    SKETCH_BUSY_SOURCES,
    SKETCH_DENSE_BYTES,
    SKETCH_REGISTERS,
    SKETCH_SIGMA_TERMS,
)
from teiten.store.arrow import bytes16_values, write_file
from teiten.store.lake import Lake, Transaction
from teiten.store.rollup import schema

Columns = dict[str, npt.NDArray[Any]]

REGISTERS = SKETCH_REGISTERS

STANDARD_ERROR = 1.04 / math.sqrt(REGISTERS)
"""Relative standard error of an estimate above the linear-counting range (1.6 %)."""

_SECONDS_PER_DAY = 86_400


@njit(cache=True, nogil=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:  # pragma: no cover - jit
    """The splitmix64 finalizer: every input bit reaches every output bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _registers(
    version: npt.NDArray[Any], src4: npt.NDArray[Any], src6: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8]]:  # pragma: no cover - jit
    """Each source's register and rank (IPv4: the integer; IPv6: its 16 bytes)."""
    n = version.shape[0]
    reg = np.empty(n, np.uint16)
    rank = np.empty(n, np.uint8)
    gamma = np.uint64(0x9E3779B97F4A7C15)
    low_bits = np.uint64(64 - SKETCH_BITS)
    for i in range(n):
        if version[i] == 6:
            hi = np.uint64(0)
            lo = np.uint64(0)
            for j in range(8):
                hi = (hi << np.uint64(8)) | np.uint64(src6[i, j])
                lo = (lo << np.uint64(8)) | np.uint64(src6[i, 8 + j])
            h = _mix(_mix(hi + gamma) ^ lo ^ np.uint64(6 << 32))
        else:
            h = _mix(np.uint64(src4[i]) + gamma)
        reg[i] = np.uint16(h >> low_bits)
        rest = h << np.uint64(SKETCH_BITS)
        r = 1
        while r <= 64 - SKETCH_BITS and (rest >> np.uint64(63)) == 0:
            rest <<= np.uint64(1)
            r += 1
        rank[i] = np.uint8(r)
    return reg, rank


def source_registers(
    version: npt.NDArray[Any], src4: npt.NDArray[Any], src6: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8]]:
    """The register and rank of each source (``src6``: (rows, 16) bytes, zeros for IPv4)."""
    return _registers(
        np.ascontiguousarray(version), np.ascontiguousarray(src4), np.ascontiguousarray(src6)
    )


def local_days(hours: npt.NDArray[Any], zone: str) -> npt.NDArray[np.int32]:
    """The local day (in ``zone``) of each UTC hour number: one zone lookup per distinct hour."""
    if len(hours) == 0:
        return np.zeros(0, np.int32)
    tz = ZoneInfo(zone)
    distinct, inverse = np.unique(np.asarray(hours, np.int64), return_inverse=True)
    days = np.empty(len(distinct), np.int32)
    for i, hour in enumerate(distinct.tolist()):
        offset = dt.datetime.fromtimestamp(hour * 3600, tz).utcoffset()  # in force then
        seconds = hour * 3600 + int(offset.total_seconds() if offset is not None else 0)
        days[i] = seconds // _SECONDS_PER_DAY
    return days[inverse.reshape(-1)]


def day_rows(port_hours: pa.Table, zone: str) -> pa.Table:
    """The ``port_sketches`` rows of a table of ``port_hours`` rows, with days cut in ``zone``:
    per local day, protocol, port and country, the packets and the sources' sketch."""
    target = schema(PORT_SKETCHES)
    if port_hours.num_rows == 0:
        return target.empty_table()
    col = {n: port_hours.column(n).to_numpy() for n in ("hour", "proto", "dst_port", "src_cc")}
    version = port_hours.column("ip_version").to_numpy()
    src6 = bytes16_values(port_hours.column("src_ip6"))
    reg, rank = source_registers(version, port_hours.column("src_ip4").to_numpy(), src6)
    day = local_days(col["hour"], zone)
    first = int(day.min())
    group = (day - first).astype(np.uint64) << np.uint64(33)
    group |= (col["proto"] == 17).astype(np.uint64) << np.uint64(32)
    group |= col["dst_port"].astype(np.uint64) << np.uint64(16)
    group |= col["src_cc"].astype(np.uint64)
    key = group << np.uint64(SKETCH_BITS) | reg.astype(np.uint64)
    order = np.argsort(key, kind="stable")
    starts = _run_starts(key[order])  # one run per (group, register)
    firsts = _run_starts(group[order][starts])  # the first run of each group
    registers = encode(
        firsts,
        reg[order][starts],
        np.maximum.reduceat(rank[order], starts),
    )
    rows = order[starts[firsts]]
    packets = np.add.reduceat(port_hours.column("packets").to_numpy()[order], starts[firsts])
    arrays = {
        "busy": pa.array(np.zeros(len(rows), bool)),  # :func:`sketch_tables` marks them
        "day": pa.array(day[rows]),
        "proto": pa.array(col["proto"][rows]),
        "dst_port": pa.array(col["dst_port"][rows]),
        "src_cc": pa.array(col["src_cc"][rows]),
        "packets": pa.array(packets),
        "registers": registers,
    }
    return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in target], schema=target)


def _run_starts(ordered: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Where each run of equal values of a sorted array starts."""
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


_SPARSE = 3
"""Bytes per register set in a sparse sketch (``teiten.schema.PORT_SKETCHES``)."""


@njit(cache=True, nogil=True)
def _encode(
    firsts: npt.NDArray[np.intp], reg: npt.NDArray[np.uint16], rank: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:  # pragma: no cover - jit
    n = firsts.shape[0]
    offsets = np.zeros(n + 1, np.int64)
    for g in range(n):
        end = firsts[g + 1] if g + 1 < n else reg.shape[0]
        size = (end - firsts[g]) * _SPARSE
        offsets[g + 1] = offsets[g] + (size if size < SKETCH_DENSE_BYTES else SKETCH_DENSE_BYTES)
    data = np.zeros(offsets[n], np.uint8)
    for g in range(n):
        end = firsts[g + 1] if g + 1 < n else reg.shape[0]
        o = offsets[g]
        if offsets[g + 1] - o == SKETCH_DENSE_BYTES:
            for i in range(firsts[g], end):
                data[o + reg[i]] = rank[i]
        else:
            for i in range(firsts[g], end):
                data[o] = reg[i] & 0xFF
                data[o + 1] = reg[i] >> 8
                data[o + 2] = rank[i]
                o += _SPARSE
    return offsets, data


def encode(
    firsts: npt.NDArray[np.intp], reg: npt.NDArray[np.uint16], rank: npt.NDArray[np.uint8]
) -> pa.Array:
    """The ``registers`` of groups given as runs of (register, rank) pairs sorted by
    register, each group's first pair at ``firsts``: dense or sparse, whichever is shorter."""
    offsets, data = _encode(
        np.ascontiguousarray(firsts, np.intp),
        np.ascontiguousarray(reg, np.uint16),
        np.ascontiguousarray(rank, np.uint8),
    )
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.large_binary(), len(firsts), buffers).cast(pa.binary())


@njit(cache=True, nogil=True)
def _merge(
    order: npt.NDArray[np.intp],
    group: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    data: npt.NDArray[np.uint8],
    keep: bool,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int64],
    npt.NDArray[np.uint8],
]:  # pragma: no cover - jit
    """Per run of equal ``group`` (rows in ``order``): its group, registers set and the sum
    of 2**-rank over them, the rows' registers merged by max; with ``keep`` also the
    merged registers, encoded (offsets and bytes; never longer than the rows' own).
    One scratch register array: a sparse merge touches (and clears) only the registers
    its rows set."""
    n = order.shape[0]
    out_group = np.empty(n, np.int64)
    out_set = np.empty(n, np.int64)
    out_sum = np.empty(n, np.float64)
    out_offsets = np.zeros(n + 1 if keep else 1, np.int64)
    out_data = np.empty(data.shape[0] if keep else 0, np.uint8)
    scratch = np.zeros(SKETCH_DENSE_BYTES, np.uint8)
    touched = np.empty(SKETCH_DENSE_BYTES, np.int64)
    powers = np.empty(256, np.float64)
    for r in range(256):
        powers[r] = 2.0**-r
    i = 0
    groups = 0
    o = 0
    while i < n:
        g = group[order[i]]
        dense = False
        count = 0
        j = i
        while j < n and group[order[j]] == g:
            row = order[j]
            a = offsets[row]
            b = offsets[row + 1]
            if b - a == SKETCH_DENSE_BYTES:
                dense = True
                for k in range(SKETCH_DENSE_BYTES):
                    if data[a + k] > scratch[k]:
                        scratch[k] = data[a + k]
            else:
                for k in range(a, b - _SPARSE + 1, _SPARSE):
                    reg = np.int64(data[k]) | (np.int64(data[k + 1]) << 8)
                    if reg >= SKETCH_DENSE_BYTES or data[k + 2] == 0:
                        continue  # no register, or no rank: damaged bytes count nothing
                    if scratch[reg] == 0:
                        touched[count] = reg
                        count += 1
                    if data[k + 2] > scratch[reg]:
                        scratch[reg] = data[k + 2]
            j += 1
        if dense:  # the set registers, in order
            count = 0
            for k in range(SKETCH_DENSE_BYTES):
                if scratch[k]:
                    touched[count] = k
                    count += 1
        elif keep:
            touched[:count] = np.sort(touched[:count])
        harmonic = 0.0
        for t in range(count):
            harmonic += powers[scratch[touched[t]]]
        if keep and count * _SPARSE >= SKETCH_DENSE_BYTES:
            out_data[o : o + SKETCH_DENSE_BYTES] = scratch
            o += SKETCH_DENSE_BYTES
        elif keep:
            for t in range(count):
                out_data[o] = touched[t] & 0xFF
                out_data[o + 1] = touched[t] >> 8
                out_data[o + 2] = scratch[touched[t]]
                o += _SPARSE
        for t in range(count):
            scratch[touched[t]] = 0
        out_group[groups] = g
        out_set[groups] = count
        out_sum[groups] = harmonic
        groups += 1
        if keep:
            out_offsets[groups] = o
        i = j
    return (
        out_group[:groups],
        out_set[:groups],
        out_sum[:groups],
        out_offsets[: groups + 1],
        out_data[:o],
    )


@dataclass(frozen=True)
class Merged:
    """Sketches merged per group: the groups (sorted), their packets and distinct sources
    (and their merged ``registers`` when asked)."""

    group: npt.NDArray[np.int64]
    packets: npt.NDArray[np.int64]
    sources: npt.NDArray[np.int64]
    registers: pa.Array | None = None


def merge(
    group: npt.NDArray[Any], packets: npt.NDArray[Any], registers: Any, *, keep: bool = False
) -> Merged:
    """Merge the sketches of rows by ``group`` (any integer key per row): per distinct
    group, its packets (summed) and its distinct sources (registers merged by max and
    estimated, :func:`estimates`); with ``keep``, the merged registers too (a
    ``registers`` column). ``registers`` is the rows' ``registers`` column."""
    column = registers.combine_chunks() if isinstance(registers, pa.ChunkedArray) else registers
    column = column.cast(pa.large_binary())
    group = np.asarray(group, np.int64)
    if len(group) == 0:
        empty = np.zeros(0, np.int64)
        return Merged(empty, empty, empty, pa.array([], pa.binary()) if keep else None)
    _, offset_buffer, data_buffer = column.buffers()
    start = column.offset
    offsets = np.frombuffer(offset_buffer, np.int64)[start : start + len(column) + 1]
    data = (
        np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    )
    order = np.argsort(group, kind="stable")
    groups, nonzero, harmonic, out_offsets, out_data = _merge(order, group, offsets, data, keep)
    firsts = _run_starts(group[order])
    total = np.add.reduceat(np.asarray(packets, np.int64)[order], firsts)
    merged = None
    if keep:
        buffers = [None, pa.py_buffer(out_offsets), pa.py_buffer(out_data)]
        merged = pa.Array.from_buffers(pa.large_binary(), len(groups), buffers).cast(pa.binary())
    return Merged(groups, total, estimates(nonzero, harmonic, total), merged)


def estimate(nonzero: int, harmonic: float, packets: float = math.inf) -> int:
    """Distinct sources estimated from a merged sketch: ``nonzero`` registers set and the
    sum of 2**-rank over them, by Ertl's improved raw estimator (O. Ertl, "New cardinality
    estimation algorithms for HyperLogLog sketches", 2017: unbiased from one source to
    billions without an empirical bias table), kept between ``nonzero`` (each register
    set has a source) and ``packets`` (each source sent a packet)."""
    one = estimates(np.array([nonzero]), np.array([harmonic]), np.array([packets]))
    return int(one[0])


def estimates(
    nonzero: npt.NDArray[Any], harmonic: npt.NDArray[Any], packets: npt.NDArray[Any]
) -> npt.NDArray[np.int64]:
    """:func:`estimate` of many sketches at once."""
    x = (REGISTERS - nonzero.astype(np.float64)) / REGISTERS
    sigma = x.copy()
    for k in range(1, SKETCH_SIGMA_TERMS + 1):
        sigma += x ** (2**k) * 2 ** (k - 1)
    raw = SKETCH_ALPHA * REGISTERS * REGISTERS / (REGISTERS * sigma + harmonic)
    bounded = np.minimum(packets.astype(np.float64), np.round(raw))
    out: npt.NDArray[np.int64] = np.maximum(nonzero.astype(np.float64), bounded).astype(np.int64)
    return out


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
    """The columns of a ``port_hours`` file that its day sketch reads."""
    names = ("hour", "proto", "dst_port", "ip_version", "src_ip4", "src_ip6", "src_cc", "packets")
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
    :data:`LEGACY_SKETCH_TABLES`); returns the rows staged.

    ``countries`` (``teiten enrich``) maps the rows' source columns (``ip_version``,
    ``src_ip4``, ``src_ip6``) to their new ``src_cc``, the same function that rewrites
    the ``port_hours`` rows in the same transaction.
    """
    lake = tx.lake
    for table in (*SKETCH_TABLES, *LEGACY_SKETCH_TABLES):
        for rel in lake.catalog.files(table):
            tx.remove(rel)
    staged = 0
    for rel in lake.catalog.files("port_hours"):
        hours = read_port_hours(lake.root / rel)
        if countries is not None and hours.num_rows:
            sources = {
                "ip_version": hours.column("ip_version").to_numpy(),
                "src_ip4": hours.column("src_ip4").to_numpy(),
                "src_ip6": bytes16_values(hours.column("src_ip6")),
            }
            cc = pa.array(np.asarray(countries(sources)["src_cc"]), pa.uint16())
            hours = hours.set_column(hours.schema.get_field_index("src_cc"), "src_cc", cc)
        for table, rows in sketch_tables(hours, cut).items():
            new, path = tx.replacement(f"{table}/" + rel.split("/", 1)[1])
            write_file(table, rows, path)
            tx.add(table, new, rows.num_rows)
            staged += rows.num_rows
    return staged


SKETCH_TABLES = ("port_sketches", "port_segments")
"""The tables derived from each ``port_hours`` file (:func:`sketch_tables`)."""

LEGACY_SKETCH_TABLES = ("port_days", "port_day_totals")
"""Sketch tables of earlier releases (one row per register; totals without registers):
readers ignore them, a rebuild (``teiten rollup``) drops them."""


def sketch_tables(port_hours: pa.Table, cut: SketchCut) -> dict[str, pa.Table]:
    """The day sketches (per country, and per segment) of a ``port_hours`` table, each
    sorted busy first (``busy``: the port's day reaches SKETCH_BUSY_SOURCES sources)."""
    days = day_rows(port_hours, cut.zone)
    segments = segment_rows(days, cut.home)
    if days.num_rows == 0:
        return {"port_sketches": days, "port_segments": segments}
    key = _port_day(segments)
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # rows sorted by port and day
    sources = np.add.reduceat(segments.column("sources").to_numpy(), first) if len(key) else key
    busy = key[first][sources >= SKETCH_BUSY_SOURCES]
    return {"port_sketches": _busy_first(days, busy), "port_segments": _busy_first(segments, busy)}


def _port_day(table: pa.Table) -> npt.NDArray[np.int64]:
    """``proto``, ``dst_port`` and ``day`` of each row in one key."""
    key: npt.NDArray[np.int64] = (
        table.column("proto").to_numpy().astype(np.int64) << 48
        | table.column("dst_port").to_numpy().astype(np.int64) << 32
        | table.column("day").to_numpy().astype(np.int64)
    )
    return key


def _busy_first(table: pa.Table, busy: npt.NDArray[np.int64]) -> pa.Table:
    """``table`` with ``busy`` set for the rows of the busy port days and those rows first,
    each part in its order (by protocol, port and day)."""
    if table.num_rows == 0:
        return table
    key = _port_day(table)
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

    def rows_between(self, first_day: str, last_day: str) -> int:
        """``port_hours`` rows of the UTC days ``first_day``..``last_day``."""
        return sum(n for day, n in self.rows.items() if first_day <= day <= last_day)


def coverage(lake: Lake) -> Coverage:
    """The sketches' :class:`Coverage` of a lake (its catalog open)."""
    zone, home = lake.day_zone(), lake.sketch_home()
    complete = zone is not None and home is not None and not lake.unsketched(SKETCH_TABLES)
    if not complete:
        return Coverage(rows=lake.rollup_rows_by_day())
    return Coverage(zone, home, lake.rollup_rows_by_day())
