"""Rollup rows of packet batches: packets per hour, port and source; addresses per hour.

Computed column-wise at ingest, for each day file of an input, and written in
the input's transaction beside the packets (``teiten.store.lake.PacketWriter``),
so re-ingest, interrupted ingest and duplicates treat them exactly as packets.
Tables and columns are declared in :data:`teiten.schema.ROLLUPS`.

Rows are grouped by sorting a 64-bit mix of each row's key and cutting runs
where any key column changes. Two different keys with the same mix may
interleave and then come out as more than one row each; that costs a few
bytes, never a wrong answer: every statement over the rollups sums ``packets``
and counts distinct sources over its rows, so a key split over several rows
(or files: one input writes one file per day, a long one several) adds up the
same. :meth:`Rollup.add` merges each batch's rows into what the day holds and
re-groups them whenever they outgrow a bound, so memory follows the distinct
keys, not the packets.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.schema import (
    ADDRESS_HOURS,
    DECODE_ERRORS,
    HOUR_NS,
    PORT_CAPTURED,
    PORT_HOURS,
    ROLLUPS,
    Column,
)

ROLLUP_TABLES: tuple[str, ...] = tuple(ROLLUPS)
"""The rollup tables, as the lake and the catalog name them."""

Columns = dict[str, npt.NDArray[Any]]
"""Columns of rows: ``bytes16`` columns as (rows, 16) uint8, zeros where null."""

_CAPTURED = np.zeros(256, np.bool_)
_CAPTURED[[DECODE_ERRORS.index(n) for n in PORT_CAPTURED]] = True
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(parts: list[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
    """A 64-bit mix of several uint64 key parts per row (equal keys, equal mixes)."""
    h = np.zeros(len(parts[0]), np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            h ^= p + _GOLDEN + (h << np.uint64(6)) + (h >> np.uint64(2))
            h *= np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(33)
    return h


def _v6_parts(v6: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.uint64]]:
    words = np.ascontiguousarray(v6).view(np.uint64).reshape(-1, 2)
    return [words[:, 0], words[:, 1]]


def group(
    columns: Columns, names: tuple[str, ...], weights: npt.NDArray[np.int64] | None = None
) -> tuple[Columns, npt.NDArray[np.int64]]:
    """One row per run of equal ``names`` after sorting by their mix, with the summed
    ``weights`` (1 per row when None)."""
    n = len(columns[names[0]])
    if n == 0:
        return {k: columns[k][:0] for k in names}, np.zeros(0, np.int64)
    parts: list[npt.NDArray[np.uint64]] = []
    for k in names:
        v = columns[k]
        if v.ndim == 2:
            if v.any():
                parts.extend(_v6_parts(v))
        else:
            parts.append(v.astype(np.uint64))
    order = np.argsort(_mix(parts), kind="stable")
    change = np.zeros(n, np.bool_)
    change[0] = True
    for k in names:
        v = columns[k][order]
        if v.ndim == 2:
            change[1:] |= (v[1:] != v[:-1]).any(axis=1)
        else:
            change[1:] |= v[1:] != v[:-1]
    starts = np.flatnonzero(change)
    first = order[starts]
    out = {k: columns[k][first] for k in names}
    w = np.ones(n, np.int64) if weights is None else weights
    return out, np.add.reduceat(w[order], starts).astype(np.int64)


PORT_KEY = tuple(c.name for c in PORT_HOURS if c.name != "packets")
ADDRESS_KEY = tuple(c.name for c in ADDRESS_HOURS)


def _dtypes(columns: tuple[Column, ...]) -> dict[str, Any]:
    return {c.name: np.uint8 if c.dtype == "bytes16" else c.numpy_dtype for c in columns}


_PORT_DTYPES = _dtypes(PORT_HOURS)
_ADDRESS_DTYPES = _dtypes(ADDRESS_HOURS)


def _take(columns: Columns, name: str, rows: npt.NDArray[np.int64], dtype: Any) -> Any:
    v = columns.get(name)
    if v is None:  # src_asn without an ASN source
        return np.zeros(len(rows), dtype)
    return v[rows].astype(dtype, copy=False)


def _v6(columns: Columns, name: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    v = np.asarray(columns[name])
    if v.ndim != 2:  # not decoded as (rows, 16): no IPv6 rows
        return np.zeros((len(rows), 16), np.uint8)
    return v[rows]


def port_rows(columns: Columns, rows: npt.NDArray[np.int64]) -> tuple[Columns, Any]:
    """The ``port_hours`` key columns and packets of ``rows`` of a batch of logical
    packet columns: inbound TCP/UDP packets whose port counts (``PORT_CAPTURED``)."""
    proto = columns["proto"][rows]
    keep = (
        ~columns["is_outbound"][rows]
        & ((proto == 6) | (proto == 17))
        & _CAPTURED[columns["decode_error"][rows]]
    )
    sel = rows[keep]
    out: Columns = {"hour": (columns["ts"][sel] // HOUR_NS).astype(np.int32)}
    for name in PORT_KEY[1:]:
        if name == "src_ip6":
            out[name] = _v6(columns, name, sel)
        else:
            out[name] = _take(columns, name, sel, _PORT_DTYPES[name])
    return group(out, PORT_KEY)


def address_rows(columns: Columns, rows: npt.NDArray[np.int64]) -> Columns:
    """The distinct ``address_hours`` rows of ``rows``: inbound IPv4/IPv6 packets."""
    version = columns["ip_version"][rows]
    sel = rows[~columns["is_outbound"][rows] & ((version == 4) | (version == 6))]
    out: Columns = {
        "hour": (columns["ts"][sel] // HOUR_NS).astype(np.int32),
        "ip_version": columns["ip_version"][sel].astype(np.uint8),
        "dst_ip4": columns["dst_ip4"][sel].astype(np.uint32),
        "dst_ip6": _v6(columns, "dst_ip6", sel),
    }
    return group(out, ADDRESS_KEY)[0]


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
        ports, packets = port_rows(columns, rows)
        ports["packets"] = packets
        addresses = address_rows(columns, rows)
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
        t = pa.binary(16) if c.dtype == "bytes16" else pa.from_numpy_dtype(c.numpy_dtype)
        fields.append(pa.field(c.name, t, nullable=c.nullable))
    return pa.schema(fields)


def to_table(columns: Columns | None, declared: tuple[Column, ...]) -> pa.Table:
    """A rollup table of grouped columns, sorted by hour then key (better pages, and
    row groups a time filter can skip); an empty table for None."""
    target = schema(declared)
    if columns is None or len(columns["hour"]) == 0:
        return target.empty_table()
    sort_keys = [columns[c.name] for c in reversed(declared) if c.dtype != "bytes16"]
    order = np.lexsort(sort_keys)
    arrays = []
    for c in declared:
        v = columns[c.name][order]
        if c.dtype == "bytes16":
            valid = columns["ip_version"][order] == 6
            arrays.append(_bytes16(v, valid))
        else:
            arrays.append(pa.array(v.astype(_PORT_DTYPES.get(c.name, _ADDRESS_DTYPES.get(c.name)))))
    return pa.Table.from_arrays(arrays, schema=target)


def _bytes16(values: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> pa.Array:
    n = values.shape[0]
    if not valid.any():
        return pa.nulls(n, pa.binary(16))
    flat = pa.py_buffer(np.ascontiguousarray(values).reshape(-1))
    mask = pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.binary(16), n, [mask, flat], null_count=int(n - valid.sum()))
