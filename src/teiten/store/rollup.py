"""Rollup rows of packet batches: packets per hour, port and source; addresses per hour.

Computed column-wise at ingest, for each day file of an input, and written in
the input's transaction beside the packets (``teiten.store.writers.PacketWriter``),
so re-ingest, interrupted ingest and duplicates treat them exactly as packets.
Tables and columns are declared in :data:`teiten.schema.ROLLUPS`.

Rows are grouped by their key columns in numba hash tables
(:mod:`teiten.store.grouping`). Every statement over the
rollups sums ``packets`` and counts distinct sources over its rows, so a key
may also come in several rows or files (an input writes one file per day, a
long one several) and add up the same. :meth:`Rollup.add` merges each batch's
rows into what the day holds and re-groups them whenever they outgrow a bound,
so memory follows the distinct keys, not the packets.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.jit import kernel
from teiten.schema import (
    ADDRESS_HOURS,
    DECODE_ERRORS,
    HOUR_NS,
    PORT_CAPTURED,
    PORT_HOURS,
    ROLLUPS,
    Column,
)
from teiten.store.arrow import bytes16_array, bytes16_values
from teiten.store.grouping import Columns, group, group_spans
from teiten.store.order import address_order, radix_order

ROLLUP_TABLES: tuple[str, ...] = tuple(ROLLUPS)
"""The rollup tables, as the lake and the catalog name them."""

CAPTURED = np.zeros(256, np.bool_)
"""Per ``decode_error`` code: whether the port rule counts the packet (PORT_CAPTURED)."""
CAPTURED[[DECODE_ERRORS.index(n) for n in PORT_CAPTURED]] = True


PORT_KEY = tuple(c.name for c in PORT_HOURS if c.name != "packets")
ADDRESS_KEY = tuple(c.name for c in ADDRESS_HOURS)


def dtypes(columns: tuple[Column, ...]) -> dict[str, Any]:
    """The numpy type of each declared column in memory: (rows, 16) bytes for ``bytes16``,
    int32 codes for ``str``."""
    out: dict[str, Any] = {}
    for c in columns:  # numpy_dtype only for the numeric ones: it has none for these two
        out[c.name] = {"bytes16": np.uint8, "str": np.int32}.get(c.dtype) or c.numpy_dtype
    return out


_PORT_DTYPES = dtypes(PORT_HOURS)
_ADDRESS_DTYPES = dtypes(ADDRESS_HOURS)


@kernel(cache=True, nogil=True)
def bytes_words(
    v6: npt.NDArray[np.uint8], r: int
) -> tuple[np.uint64, np.uint64]:  # pragma: no cover
    hi = np.uint64(0)
    lo = np.uint64(0)
    for j in range(8):
        hi = (hi << np.uint64(8)) | np.uint64(v6[r, j])
        lo = (lo << np.uint64(8)) | np.uint64(v6[r, 8 + j])
    return hi, lo


@kernel(cache=True, nogil=True)
def _port_words(
    rows: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    proto: npt.NDArray[Any],
    port: npt.NDArray[Any],
    version: npt.NDArray[Any],
    src4: npt.NDArray[Any],
    src6: npt.NDArray[np.uint8],
    cc: npt.NDArray[Any],
    asn: npt.NDArray[Any],
    fp: npt.NDArray[Any],
    outbound: npt.NDArray[np.bool_],
    error: npt.NDArray[Any],
    captured: npt.NDArray[np.bool_],
    v6: bool,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:  # pragma: no cover - jit
    """The key words of the rows the port rule counts (inbound TCP/UDP, port captured),
    and which rows they are: one pass over the batch's columns."""
    words = np.empty((rows.shape[0], 5 if v6 else 3), np.uint64)
    kept = np.empty(rows.shape[0], np.int64)
    m = 0
    for r in rows:
        p = proto[r]
        if outbound[r] or (p != 6 and p != 17) or not captured[error[r]]:
            continue
        words[m, 0] = (
            np.uint64(ts[r] // HOUR_NS)
            | (np.uint64(p) << np.uint64(32))
            | (np.uint64(version[r]) << np.uint64(40))
            | (np.uint64(port[r]) << np.uint64(48))
        )
        words[m, 1] = np.uint64(src4[r]) | (np.uint64(cc[r] & 0xFFFF) << np.uint64(32))
        words[m, 2] = np.uint64(asn[r]) | (np.uint64(fp[r]) << np.uint64(32))
        if v6:
            words[m, 3], words[m, 4] = bytes_words(src6, r)
        kept[m] = r
        m += 1
    return words[:m], kept[:m]


@kernel(cache=True, nogil=True)
def _address_words(
    rows: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    version: npt.NDArray[Any],
    dst4: npt.NDArray[Any],
    dst6: npt.NDArray[np.uint8],
    outbound: npt.NDArray[np.bool_],
    v6: bool,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:  # pragma: no cover - jit
    """The key words of the inbound IPv4/IPv6 rows, and which rows they are."""
    words = np.empty((rows.shape[0], 4 if v6 else 1), np.uint64)
    kept = np.empty(rows.shape[0], np.int64)
    m = 0
    for r in rows:
        v = version[r]
        if outbound[r] or (v != 4 and v != 6):
            continue
        words[m, 0] = np.uint64(ts[r] // HOUR_NS) | (np.uint64(dst4[r]) << np.uint64(32))
        if v6:
            words[m, 1] = np.uint64(v)
            words[m, 2], words[m, 3] = bytes_words(dst6, r)
        kept[m] = r
        m += 1
    return words[:m], kept[:m]


def v6_column(columns: Columns, name: str) -> npt.NDArray[np.uint8]:
    """A ``bytes16`` column as (rows, 16) bytes; zeros when the batch decoded no IPv6."""
    v = np.asarray(columns.get(name, np.zeros(0, np.uint8)))
    if v.ndim != 2:  # not decoded as (rows, 16): no IPv6 rows
        return np.zeros((len(columns["ts"]), 16), np.uint8)
    return v


def _gather(
    columns: Columns, take: npt.NDArray[np.int64], names: tuple[str, ...], dtypes: dict[str, Any]
) -> Columns:
    """The key columns of the rows ``take``, typed as declared."""
    out: Columns = {"hour": (columns["ts"][take] // HOUR_NS).astype(np.int32)}
    for name in names[1:]:
        if dtypes[name] is np.uint8 and name.endswith("_ip6"):
            out[name] = v6_column(columns, name)[take]
        elif name in columns:
            out[name] = columns[name][take].astype(dtypes[name], copy=False)
        else:  # src_asn without an ASN source
            out[name] = np.zeros(len(take), dtypes[name])
    return out


def port_rows(columns: Columns, rows: npt.NDArray[np.int64]) -> tuple[Columns, Any]:
    """The ``port_hours`` key columns and packets of ``rows`` of a batch of logical
    packet columns: inbound TCP/UDP packets whose port counts (``PORT_CAPTURED``)."""
    n = len(columns["ts"])
    asn = columns.get("src_asn")
    words, kept = _port_words(
        np.ascontiguousarray(rows, np.int64),
        columns["ts"],
        columns["proto"],
        columns["dst_port"],
        columns["ip_version"],
        columns["src_ip4"],
        v6_column(columns, "src_ip6"),
        columns["src_cc"],
        asn if asn is not None else np.zeros(n, np.uint32),
        columns["fp"],
        columns["is_outbound"],
        columns["decode_error"],
        CAPTURED,
        bool((columns["ip_version"] == 6).any()),
    )
    first, packets, _, _ = group_spans(words)
    return _gather(columns, kept[first], PORT_KEY, _PORT_DTYPES), packets


def address_rows(columns: Columns, rows: npt.NDArray[np.int64]) -> Columns:
    """The distinct ``address_hours`` rows of ``rows``: inbound IPv4/IPv6 packets."""
    words, kept = _address_words(
        np.ascontiguousarray(rows, np.int64),
        columns["ts"],
        columns["ip_version"],
        columns["dst_ip4"],
        v6_column(columns, "dst_ip6"),
        columns["is_outbound"],
        bool((columns["ip_version"] == 6).any()),
    )
    first, _, _, _ = group_spans(words)
    return _gather(columns, kept[first], ADDRESS_KEY, _ADDRESS_DTYPES)


def _concat(parts: list[Columns]) -> Columns:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _merged_ports(parts: list[Columns]) -> Columns | None:
    if not parts:
        return None
    rows = _concat(parts)
    merged, packets = group(rows, PORT_KEY, rows["packets"])
    merged["packets"] = packets
    return merged


def _merged_addresses(parts: list[Columns]) -> Columns | None:
    return group(_concat(parts), ADDRESS_KEY)[0] if parts else None


BatchRows = tuple[Columns, Columns]
"""A batch's distinct ``port_hours`` rows (with ``packets``) and ``address_hours`` rows."""


def batch_rows(columns: Columns, rows: npt.NDArray[np.int64]) -> BatchRows:
    """The rollup rows of ``rows`` of a batch of logical packet columns, each key once."""
    ports, packets = port_rows(columns, rows)
    ports["packets"] = packets
    return ports, address_rows(columns, rows)


class Rollup:
    """The rollup rows of one input, per day, merged as batches come.

    Thread-safe (batches are added in the decoding thread). A day's pending
    rows are re-grouped once they pass ``max_rows``; when its ``port_hours``
    rows still fill half of that, :meth:`add` returns them to be written as a
    part file at once, so memory stays bounded.
    """

    def __init__(self, max_rows: int = 1 << 22) -> None:
        self.max_rows = max_rows
        self._ports: dict[int, list[Columns]] = {}
        self._addresses: dict[int, list[Columns]] = {}
        self._mutex = threading.Lock()

    def _pending(self, day: int) -> int:
        parts = self._ports.get(day, []) + self._addresses.get(day, [])
        return sum(len(p["hour"]) for p in parts)

    def add(self, day: int, columns: Columns, rows: npt.NDArray[np.int64]) -> pa.Table | None:
        """Add ``rows`` (of day ``day``) of a batch of logical packet columns; returns a
        ``port_hours`` table to write now when the day outgrew the bound."""
        return self.add_rows(day, batch_rows(columns, rows))

    def add_rows(self, day: int, found: BatchRows) -> pa.Table | None:
        """:meth:`add` for the rows :func:`batch_rows` found (in another thread)."""
        ports, addresses = found
        with self._mutex:
            self._ports.setdefault(day, []).append(ports)
            self._addresses.setdefault(day, []).append(addresses)
            if self._pending(day) <= self.max_rows:
                return None
            merged = _merged_ports(self._ports[day])
            distinct = _merged_addresses(self._addresses[day])
            assert merged is not None and distinct is not None
            self._addresses[day] = [distinct]
            if len(merged["hour"]) * 2 <= self.max_rows:
                self._ports[day] = [merged]
                return None
            self._ports[day] = []
        return to_table(merged, PORT_HOURS)

    def tables(self, day: int) -> dict[str, pa.Table]:
        """The remaining rows of a day, per rollup table (empty tables when none)."""
        with self._mutex:
            ports = self._ports.pop(day, [])
            addresses = self._addresses.pop(day, [])
        return {
            "port_hours": to_table(_merged_ports(ports), PORT_HOURS),
            "address_hours": to_table(_merged_addresses(addresses), ADDRESS_HOURS),
        }


def schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema a rollup table is stored with."""
    fields = []
    for c in columns:
        if c.dtype in ("bytes16", "binary"):
            t = pa.binary(16) if c.dtype == "bytes16" else pa.binary()
        elif c.dtype == "str":
            t = pa.string()
        else:
            t = pa.from_numpy_dtype(c.numpy_dtype)
        fields.append(pa.field(c.name, t, nullable=c.nullable))
    return pa.schema(fields)


def _order(columns: Columns, declared: tuple[Column, ...]) -> npt.NDArray[np.int64]:
    """The rows sorted by hour, protocol, version, port and IPv4 address (the declared
    order). Rows of one day file span at most 24 hours, so the key packs into one
    word: (hour − first hour) in 6 bits, UDP and IPv6 a bit each, the port in 16 and
    the address in 32, radix-sorted at once (sorting by every column in turn cost
    three times as much). Other spans are sorted by every declared column but IPv6."""
    hour = columns["hour"].astype(np.int64)
    first = int(hour.min())
    if int(hour.max()) - first >= 64:
        return radix_order(*(columns[c.name] for c in declared if c.dtype != "bytes16"))
    key = (hour - first).astype(np.uint64) << np.uint64(58)
    key |= (columns["ip_version"] == 6).astype(np.uint64) << np.uint64(56)
    if "dst_port" in columns:
        key |= (columns["proto"] == 17).astype(np.uint64) << np.uint64(57)
        key |= columns["dst_port"].astype(np.uint64) << np.uint64(32)
    address = columns["src_ip4"] if "src_ip4" in columns else columns["dst_ip4"]
    key |= address.astype(np.uint64)
    return radix_order(key)


def _address_order(columns: Columns) -> npt.NDArray[np.int64]:
    """``address_hours`` rows by destination (IPv4 first), then hour."""
    hour = columns["hour"].astype(np.int64)
    return address_order(
        columns["ip_version"], columns["dst_ip4"], v6_column(columns, "dst_ip6"),
        (hour - int(hour.min())).astype(np.uint32),
    )  # fmt: skip


def to_table(columns: Columns | None, declared: tuple[Column, ...]) -> pa.Table:
    """A rollup table of grouped columns, sorted by hour then key (better pages, and
    row groups a time filter can skip) — ``address_hours`` by address then hour (one
    address's rows together); an empty table for None."""
    target = schema(declared)
    if columns is None or len(columns["hour"]) == 0:
        return target.empty_table()
    order = _address_order(columns) if declared is ADDRESS_HOURS else _order(columns, declared)
    arrays = []
    for c in declared:
        v = columns[c.name][order]
        if c.dtype == "bytes16":
            valid = columns["ip_version"][order] == 6
            arrays.append(bytes16_array(v, valid))
        else:
            arrays.append(pa.array(v.astype(_PORT_DTYPES.get(c.name, _ADDRESS_DTYPES.get(c.name)))))
    return pa.Table.from_arrays(arrays, schema=target)


def merged_addresses(tables: Sequence[pa.Table]) -> pa.Table:
    """``address_hours`` rows of many files as one table, each row once, sorted by address
    (a pack's piece: ``teiten.store.pack``)."""
    rows = pa.concat_tables([t.select([c.name for c in ADDRESS_HOURS]) for t in tables])
    if rows.num_rows == 0:
        return schema(ADDRESS_HOURS).empty_table()
    columns: Columns = {
        c.name: (
            bytes16_values(rows.column(c.name))
            if c.dtype == "bytes16"
            else rows.column(c.name).to_numpy().astype(_ADDRESS_DTYPES[c.name], copy=False)
        )
        for c in ADDRESS_HOURS
    }
    return to_table(_merged_addresses([columns]), ADDRESS_HOURS)
