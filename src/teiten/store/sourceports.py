"""The ``source_ports`` rollup: one source's packets per port, in source order.

The source page asks about one address across the whole store: its packets,
first and last instant, ports, fingerprints, country and AS. The packets are
stored in time order (each batch grouped by source), so every packet file holds
every address and the question read the source column of all of them: 4.7 s at
10^9 packets. ``source_ports`` holds, per day file, one row per (source,
protocol, destination port, fingerprint bitmask) with the packets' number and
their first and last instant, sorted by source, in row groups of
ROLLUP_ROW_GROUP_ROWS whose source statistics the files keep: an address's
rows are one row group of each file (of each month, once packed).

Rows are built column-wise at ingest from the same batches as ``port_hours``
(``teiten.store.rollup.Rollup``), merged per day as they come (a key may still
come in several rows or files: readers sum packets and take the least first and
greatest last instant), and for inputs ingested before the table existed from
their packet files (:func:`build_missing`, run by ``teiten rollup``). Packets the
port rule does not count (ICMP, ports not captured) are kept with ``counted``
false and port 0: they count in a source's packets, not in its ports.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.jit import kernel
from teiten.schema import SOURCE_PORTS
from teiten.store.arrow import bytes16_array, bytes16_values, write_file
from teiten.store.grouping import Columns, group_spans, key_words
from teiten.store.layout import stored_inputs
from teiten.store.order import address_order
from teiten.store.paths import day_of, input_of, listed_as, month_of
from teiten.store.rewrite import logical_columns
from teiten.store.rollup import CAPTURED, bytes_words, dtypes, schema, v6_column
from teiten.store.transaction import Transaction

TABLE = "source_ports"

KEY = ("ip_version", "src_ip4", "src_ip6", "proto", "dst_port", "counted", "fp", "src_cc",
       "src_asn")  # fmt: skip
"""The columns a row is keyed by (``src_as_org`` follows the source; the rest are sums)."""

_DTYPES = dtypes(SOURCE_PORTS)

_SECONDS = ("first_s", "span_s")
NS = 1_000_000_000


@kernel(cache=True, nogil=True)
def _words(
    rows: npt.NDArray[np.int64],
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
) -> tuple[
    npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.bool_]
]:  # pragma: no cover
    """The key words of the inbound IPv4/IPv6 rows, which rows they are, and whether the
    port rule counts each (inbound TCP/UDP, port captured): one pass over the batch."""
    words = np.empty((rows.shape[0], 5 if v6 else 3), np.uint64)
    kept = np.empty(rows.shape[0], np.int64)
    counted = np.empty(rows.shape[0], np.bool_)
    m = 0
    for r in rows:
        v = version[r]
        if outbound[r] or (v != 4 and v != 6):
            continue
        p = proto[r]
        c = (p == 6 or p == 17) and captured[error[r]]
        words[m, 0] = (
            np.uint64(src4[r])
            | (np.uint64(p) << np.uint64(32))
            | (np.uint64(port[r] if c else 0) << np.uint64(40))
            | (np.uint64(v) << np.uint64(56))
            | (np.uint64(1 if c else 0) << np.uint64(63))
        )
        words[m, 1] = np.uint64(fp[r]) | (np.uint64(cc[r] & 0xFFFF) << np.uint64(32))
        words[m, 2] = np.uint64(asn[r])
        if v6:
            words[m, 3], words[m, 4] = bytes_words(src6, r)
        kept[m] = r
        counted[m] = c
        m += 1
    return words[:m], kept[:m], counted[:m]


def source_rows(columns: Columns, rows: npt.NDArray[np.int64]) -> Columns:
    """The ``source_ports`` rows of ``rows`` of a batch of logical packet columns: one per
    key, with ``packets``, ``first_s``, ``last_s`` (seconds since the epoch) and
    ``src_as_org`` as the code of the key's first row (0 without an AS source)."""
    n = len(columns["ts"])
    asn = columns.get("src_asn")
    asn = asn if asn is not None else np.zeros(n, np.uint32)
    src6 = v6_column(columns, "src_ip6")
    words, kept, counted = _words(
        np.ascontiguousarray(rows, np.int64), columns["proto"], columns["dst_port"],
        columns["ip_version"], columns["src_ip4"], src6, columns["src_cc"], asn,
        columns["fp"], columns["is_outbound"], columns["decode_error"], CAPTURED,
        bool((columns["ip_version"] == 6).any()),
    )  # fmt: skip
    seconds = columns["ts"][kept] // NS
    first, packets, lo, hi = group_spans(words, None, (seconds, seconds))
    take = kept[first]
    out: Columns = {
        "ip_version": columns["ip_version"][take].astype(np.uint8),
        "src_ip4": columns["src_ip4"][take].astype(np.uint32),
        "src_ip6": src6[take],
        "proto": columns["proto"][take].astype(np.uint8),
        "dst_port": np.where(counted[first], columns["dst_port"][take], 0).astype(np.uint16),
        "counted": counted[first],
        "fp": columns["fp"][take].astype(np.uint32),
        "src_cc": columns["src_cc"][take].astype(np.uint16),
        "src_asn": asn[take].astype(np.uint32),
        "src_as_org": (
            columns["src_as_org"][take].astype(np.int32)
            if "src_as_org" in columns
            else np.zeros(len(take), np.int32)
        ),
        "packets": packets,
        "first_s": lo,
        "last_s": hi,
    }
    return out


def merge(parts: Sequence[Columns]) -> Columns:
    """Rows of ``parts`` (:func:`source_rows`' columns) with one row per key: packets summed,
    the least first and the greatest last second."""
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    words = key_words(rows, KEY)
    first, packets, lo, hi = group_spans(words, rows["packets"], (rows["first_s"], rows["last_s"]))
    out = {k: v[first] for k, v in rows.items()}
    out["packets"], out["first_s"], out["last_s"] = packets, lo, hi
    return out


def _order(columns: Columns) -> npt.NDArray[np.int64]:
    """Rows by source (IPv4 first), then protocol and port."""
    proto_port = columns["proto"].astype(np.uint32) << 16 | columns["dst_port"]
    return address_order(columns["ip_version"], columns["src_ip4"], columns["src_ip6"], proto_port)


def to_table(columns: Columns | None, labels: Sequence[str] = ()) -> pa.Table:
    """A ``source_ports`` table of rows (``src_as_org`` codes into ``labels``), sorted by
    source; an empty table for None."""
    target = schema(SOURCE_PORTS)
    if columns is None or len(columns["src_ip4"]) == 0:
        return target.empty_table()
    order = _order(columns)
    arrays: list[pa.Array] = []
    for c in SOURCE_PORTS:
        if c.name == "span_s":
            v = columns["last_s"][order] - columns["first_s"][order]
        else:
            v = columns[c.name][order]
        if c.dtype == "bytes16":
            arrays.append(bytes16_array(v, columns["ip_version"][order] == 6))
        elif c.dtype == "str":
            text = pa.DictionaryArray.from_arrays(pa.array(v, pa.int32()), list(labels) or [""])
            arrays.append(text.cast(pa.string()))
        else:
            arrays.append(pa.array(v.astype(_DTYPES[c.name], copy=False)))
    return pa.Table.from_arrays(arrays, schema=target)


def from_table(table: pa.Table) -> tuple[Columns, list[str]]:
    """The columns of stored ``source_ports`` rows (:func:`to_table`'s inverse): the AS
    names as codes into the returned labels."""
    out: Columns = {}
    for c in SOURCE_PORTS:
        col = table.column(c.name)
        if c.dtype == "bytes16":
            out[c.name] = bytes16_values(col)
        elif c.dtype == "str":
            encoded = col.combine_chunks().dictionary_encode()
            out[c.name] = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
            labels = encoded.dictionary.to_pylist()
        else:
            out[c.name] = col.to_numpy().astype(np.int64 if c.name in _SECONDS else _DTYPES[c.name])
    out["last_s"] = out["first_s"] + out.pop("span_s")
    return out, [str(x) for x in labels] if table.num_rows else [""]


class SourceDays:
    """The ``source_ports`` rows of one input, per day, merged as batches come.

    Thread-safe, bounded like ``teiten.store.rollup.Rollup``: a day's pending rows
    are merged once they pass ``max_rows``; when the merged rows still fill half of
    that, :meth:`add` returns them to be written as a part file at once.
    """

    def __init__(self, max_rows: int = 1 << 22) -> None:
        self.max_rows = max_rows
        self._days: dict[int, list[Columns]] = {}
        self._mutex = threading.Lock()

    def add(
        self, day: int, columns: Columns, rows: npt.NDArray[np.int64], labels: Sequence[str]
    ) -> pa.Table | None:
        """Add ``rows`` (of day ``day``) of a batch of logical packet columns; returns a
        table to write now when the day outgrew the bound (``labels``: the AS names)."""
        return self.add_rows(day, source_rows(columns, rows), labels)

    def add_rows(self, day: int, found: Columns, labels: Sequence[str]) -> pa.Table | None:
        """:meth:`add` for the rows :func:`source_rows` found (in another thread)."""
        with self._mutex:
            parts = self._days.setdefault(day, [])
            parts.append(found)
            if sum(len(p["src_ip4"]) for p in parts) <= self.max_rows:
                return None
            merged = merge(parts)
            if len(merged["src_ip4"]) * 2 <= self.max_rows:
                self._days[day] = [merged]
                return None
            self._days[day] = []
        return to_table(merged, labels)

    def table(self, day: int, labels: Sequence[str]) -> pa.Table:
        """The remaining rows of a day (an empty table when none)."""
        with self._mutex:
            parts = self._days.pop(day, [])
        return to_table(merge(parts) if parts else None, labels)


# --- inputs ingested before the table existed (teiten rollup) ----------------

_READS = ("ts", "proto", "dst_port", "ip_version", "src_ip4", "src_ip6", "src_cc", "src_asn",
          "fp", "is_outbound", "decode_error")  # fmt: skip
"""The logical packet columns the rows are built from (and ``src_as_org``)."""


def _packet_groups(path: Any, labels: dict[str, int]) -> Iterator[Columns]:
    """The logical columns of each row group of a packet file (each read once),
    ``src_as_org`` as codes into ``labels`` (name → code, growing)."""
    f = pq.ParquetFile(path)
    present = set(f.schema_arrow.names)
    names = [n for n in _READS if n != "src_asn" or "src_asn" in present]
    wanted = [c for c in f.schema_arrow.names if c in {*stored_inputs(names), "src_as_org"}]
    for i in range(f.num_row_groups):
        group = f.read_row_group(i, columns=wanted)
        columns = logical_columns("packets", group, names)
        if "src_as_org" in present:
            text = group.column("src_as_org").combine_chunks()
            encoded = text if pa.types.is_dictionary(text.type) else text.dictionary_encode()
            names_of = encoded.dictionary.to_pylist()
            codes = np.array([labels.setdefault(str(v or ""), len(labels)) for v in names_of])
            index = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
            columns["src_as_org"] = (
                codes.astype(np.int32)[index] if len(codes) else np.zeros(len(index), np.int32)
            )
        yield columns


def build_missing(tx: Transaction, inputs: Sequence[int]) -> int:
    """Stage, in a rewrite transaction, the ``source_ports`` files of every packet file of
    ``inputs`` (ingested before the table existed), built from their packets as ingest
    builds them; returns the rows staged."""
    wanted = set(inputs)
    staged = 0
    parts: dict[tuple[str, int, int], int] = {}
    for rel in tx.lake.catalog.files("packets"):
        day, month = day_of(rel), month_of(rel)
        if day is None or month is None or input_of(rel) not in wanted:
            continue
        input_id, sensor = input_of(rel), month[0]
        labels: dict[str, int] = {"": 0}
        days = SourceDays()
        tables = []
        for columns in _packet_groups(tx.lake.root / rel, labels):
            rows = np.arange(len(columns["ts"]), dtype=np.int64)
            spilled = days.add(day, columns, rows, list(labels))
            if spilled is not None:
                tables.append(spilled)
        tables.append(days.table(day, list(labels)))
        for table in tables:
            part = parts.get((sensor, day, input_id), 0)
            parts[(sensor, day, input_id)] = part + 1
            new, path = tx.input_target(TABLE, sensor, day, input_id, part)
            write_file(TABLE, table, path)
            tx.add(listed_as(TABLE, day), new, table.num_rows)
            staged += table.num_rows
    return staged


# --- packs: a piece of a month's files merged (teiten.store.pack) ----------------


def merged_piece(tables: Sequence[pa.Table]) -> pa.Table:
    """Rows of many files of one piece as one sorted table, each key once."""
    parts = [from_table(t) for t in tables if t.num_rows]
    if not parts:
        return schema(SOURCE_PORTS).empty_table()
    index: dict[str, int] = {}  # each file's AS names as codes into one list
    for cols, names in parts:
        codes = np.array([index.setdefault(n, len(index)) for n in names], np.int32)
        cols["src_as_org"] = codes[cols["src_as_org"]]
    return to_table(merge([cols for cols, _ in parts]), list(index))
