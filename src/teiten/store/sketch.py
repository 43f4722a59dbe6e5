"""Day sketches: the ``port_days`` rollup, derived from ``port_hours`` rows.

A ``port_hours`` row names its source, so a count of distinct sources over a
long window reads one row per source, port and hour: at 10^9 packets a year,
hundreds of millions of rows. ``port_days`` keeps, per local day, protocol,
port and source country, the HyperLogLog registers of the sources instead
(Flajolet et al. 2007): a source's 64-bit hash picks a register (its top
:data:`~teiten.schema.SKETCH_BITS` bits) and a rank (1 + the leading zeros of
the other bits); a register keeps the highest rank that reached it, and the
packets of the sources that hash to it. So a group of rows (any window of whole
days, any ports, countries merged) gives its packets exactly, by summing, and
its distinct sources within the sketch's error, by merging registers with
``max`` — in SQL, on every engine (``teiten.sql.expressions.sketch_sources``).
A group holds at most 4,096 rows a day however many sources it has.

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
    PORT_DAY_TOTALS,
    PORT_DAYS,
    SKETCH_ALPHA,
    SKETCH_BITS,
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
    """The ``port_days`` rows of a table of ``port_hours`` rows, with days cut in ``zone``."""
    target = schema(PORT_DAYS)
    if port_hours.num_rows == 0:
        return target.empty_table()
    col = {n: port_hours.column(n).to_numpy() for n in ("hour", "proto", "dst_port", "src_cc")}
    version = port_hours.column("ip_version").to_numpy()
    src6 = bytes16_values(port_hours.column("src_ip6"))
    reg, rank = source_registers(version, port_hours.column("src_ip4").to_numpy(), src6)
    day = local_days(col["hour"], zone)
    first = int(day.min())
    key = (day - first).astype(np.uint64) << np.uint64(45)
    key |= (col["proto"] == 17).astype(np.uint64) << np.uint64(44)
    key |= col["dst_port"].astype(np.uint64) << np.uint64(28)
    key |= col["src_cc"].astype(np.uint64) << np.uint64(SKETCH_BITS)
    key |= reg.astype(np.uint64)
    order = np.argsort(key, kind="stable")
    starts = _run_starts(key[order])
    packets = port_hours.column("packets").to_numpy()[order]
    rows = order[starts]
    arrays = {
        "day": day[rows],
        "proto": col["proto"][rows],
        "dst_port": col["dst_port"][rows],
        "src_cc": col["src_cc"][rows],
        "reg": reg[rows],
        "rank": np.maximum.reduceat(rank[order], starts),
        "packets": np.add.reduceat(packets, starts),
    }
    return pa.Table.from_arrays(
        [pa.array(arrays[f.name]).cast(f.type) for f in target], schema=target
    )


def _run_starts(ordered: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Where each run of equal values of a sorted array starts."""
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


def estimate(nonzero: int, harmonic: float, packets: float = math.inf) -> int:
    """Distinct sources estimated from a merged sketch: ``nonzero`` registers set and the
    sum of 2**-rank over them (Ertl's improved raw estimator), kept between ``nonzero``
    and ``packets``. The Python twin of ``teiten.sql.expressions.sketch_sources``."""
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


def day_totals(days: pa.Table) -> pa.Table:
    """The ``port_day_totals`` rows of a table of ``port_days`` rows (sorted as
    :func:`day_rows` writes them): per day, protocol and port, the packets and the
    sources its registers estimate, countries merged."""
    target = schema(PORT_DAY_TOTALS)
    if days.num_rows == 0:
        return target.empty_table()
    day = days.column("day").to_numpy().astype(np.uint64)
    proto = days.column("proto").to_numpy().astype(np.uint64)
    port = days.column("dst_port").to_numpy().astype(np.uint64)
    reg = days.column("reg").to_numpy().astype(np.uint64)
    group = (day - day.min()) << np.uint64(28) | proto << np.uint64(16) | port
    key = group << np.uint64(SKETCH_BITS) | reg
    order = np.argsort(key, kind="stable")
    rank = days.column("rank").to_numpy()[order].astype(np.int64)
    packets = days.column("packets").to_numpy()[order]
    starts = _run_starts(key[order])
    merged = np.maximum.reduceat(rank, starts)  # a register over countries: their max
    per_group = group[order][starts]
    firsts = _run_starts(per_group)
    nonzero = np.diff(np.append(firsts, len(per_group)))
    harmonic = np.add.reduceat(np.exp2(-merged.astype(np.float64)), firsts)
    total = np.add.reduceat(packets, starts[firsts])  # a group's rows are contiguous
    rows = order[starts[firsts]]
    arrays = {
        "day": days.column("day").to_numpy()[rows],
        "proto": days.column("proto").to_numpy()[rows],
        "dst_port": days.column("dst_port").to_numpy()[rows],
        "packets": total,
        "sources": estimates(nonzero, harmonic, total),
    }
    return pa.Table.from_arrays(
        [pa.array(arrays[f.name]).cast(f.type) for f in target], schema=target
    )


def read_port_hours(path: Any) -> pa.Table:
    """The columns of a ``port_hours`` file that its day sketch reads."""
    names = ("hour", "proto", "dst_port", "ip_version", "src_ip4", "src_ip6", "src_cc", "packets")
    return pq.read_table(path, columns=list(names))


def rebuild(
    tx: Transaction, zone: str, countries: Callable[[Columns], Columns] | None = None
) -> int:
    """Stage, in a rewrite transaction, the ``port_days`` sketch of every committed
    ``port_hours`` file, with days cut in ``zone``, and drop every listed ``port_days``
    file; returns the rows staged.

    ``countries`` (``teiten enrich``) maps the rows' source columns (``ip_version``,
    ``src_ip4``, ``src_ip6``) to their new ``src_cc``, the same function that rewrites
    the ``port_hours`` rows in the same transaction.
    """
    lake = tx.lake
    for table in SKETCH_TABLES:
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
        for table, rows in sketch_tables(hours, zone).items():
            new, path = tx.replacement(f"{table}/" + rel.split("/", 1)[1])
            write_file(table, rows, path)
            tx.add(table, new, rows.num_rows)
            staged += rows.num_rows
    return staged


SKETCH_TABLES = ("port_days", "port_day_totals")
"""The tables derived from each ``port_hours`` file (:func:`sketch_tables`)."""


def sketch_tables(port_hours: pa.Table, zone: str) -> dict[str, pa.Table]:
    """The day sketch and its totals of a ``port_hours`` table, by table name."""
    days = day_rows(port_hours, zone)
    return {"port_days": days, "port_day_totals": day_totals(days)}


@dataclass(frozen=True)
class Coverage:
    """What a reader needs to know of the sketches, read from the catalog when it opens."""

    zone: str | None = None
    """The store's day zone; None when there are no sketches or an input lacks them."""
    rows: Mapping[str, int] = field(default_factory=dict)
    """``port_hours`` rows per UTC day (``YYYY-MM-DD``): what an exact answer reads."""

    def rows_between(self, first_day: str, last_day: str) -> int:
        """``port_hours`` rows of the UTC days ``first_day``..``last_day``."""
        return sum(n for day, n in self.rows.items() if first_day <= day <= last_day)


def coverage(lake: Lake) -> Coverage:
    """The sketches' :class:`Coverage` of a lake (its catalog open)."""
    zone = lake.day_zone()
    complete = zone is not None and not lake.unsketched(SKETCH_TABLES)
    return Coverage(zone if complete else None, lake.rollup_rows_by_day())
