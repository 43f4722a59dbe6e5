"""Conversion of packet batches to Arrow tables in the stored layout (teiten.store.layout)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.schema import ROLLUP_ROW_GROUP_ROWS, ROLLUP_STATISTICS, ROLLUPS, TABLES, Column
from teiten.schema.daytables import ROLLUP_ROW_BYTES, ROLLUP_ROW_GROUP_BYTES
from teiten.store.layout import Stored, stored_columns, to_physical

_PARQUET_ENCODING = {
    "delta": "DELTA_BINARY_PACKED",
    "split": "BYTE_STREAM_SPLIT",
    "plain": "PLAIN",
}


def arrow_type(c: Stored | Column) -> pa.DataType:
    """The Arrow type a stored column is written as."""
    if c.dtype == "str" and isinstance(c, Stored):
        return pa.dictionary(pa.int32(), pa.string())
    if c.dtype == "str":
        return pa.string()
    if c.dtype == "binary":
        return pa.binary()
    if c.dtype == "list_str":
        return pa.list_(pa.string())
    if c.dtype in ("struct", "list_struct") and isinstance(c, Column):
        struct = pa.struct([pa.field(f.name, arrow_type(f), f.nullable) for f in c.fields])
        return struct if c.dtype == "struct" else pa.list_(struct)
    if c.dtype == "bytes16":
        return pa.binary(16)
    if c.dtype == "bool":
        return pa.bool_()
    if c.dtype == "timestamp_us":
        return pa.timestamp("us", tz="UTC")
    return pa.from_numpy_dtype(np.dtype(c.dtype))


def arrow_schema() -> pa.Schema:
    """The Arrow schema of stored packet files."""
    return pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in stored_columns()]
    )


def table_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a declared table stored as declared (sessions, logins, probes)."""
    return pa.schema([pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in columns])


def writer_options() -> dict[str, Any]:
    """Keyword arguments for :class:`pyarrow.parquet.ParquetWriter`, derived from the layout.

    Every column is zstd-compressed at level 1; the encoding comes from the
    layout (dictionary, delta, byte-stream-split or plain). Statistics are written
    for the timestamp only (the other columns' min/max prune nothing).
    """
    stored = stored_columns()
    return {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": [c.name for c in stored if c.encoding == "dict"],
        "column_encoding": {
            c.name: _PARQUET_ENCODING[c.encoding] for c in stored if c.encoding in _PARQUET_ENCODING
        },
        "write_statistics": ["ts_us"],
        "data_page_size": 1 << 20,
    }


def file_options(table: str) -> dict[str, Any]:
    """Parquet writer options of a table's files: :func:`writer_options` for packets;
    zstd and the declared encodings (dictionary, delta for the sorted hour and
    addresses and the times) for a rollup, with statistics for its
    :data:`~teiten.schema.ROLLUP_STATISTICS` only, and for sessions and logins; zstd for
    the other tables stored as declared (probes)."""
    if table == "packets":
        return writer_options()
    if table in ROLLUPS:
        return {
            "compression": "zstd",
            **_declared_encodings(ROLLUPS[table]),
            "write_statistics": list(ROLLUP_STATISTICS[table]),
        }
    if table in TABLES:  # sessions, logins
        return {"compression": "zstd", **_declared_encodings(TABLES[table])}
    return {"compression": "zstd"}


def _leaves(declared: tuple[Column, ...], prefix: str = "") -> Iterator[tuple[str, Column]]:
    """Each Parquet leaf column of ``declared`` (its path in the file) with the
    declaration that gives its encoding: a ``list_str``'s items take the list's, a
    struct's fields (in a list or not) their own."""
    for c in declared:
        path = prefix + c.name
        if c.dtype == "list_str":
            yield path + ".list.element", c
        elif c.dtype == "list_struct":
            yield from _leaves(c.fields, path + ".list.element.")
        elif c.dtype == "struct":
            yield from _leaves(c.fields, path + ".")
        else:
            yield path, c


def _declared_encodings(declared: tuple[Column, ...]) -> dict[str, Any]:
    """Dictionary encoding for the leaves declared ``dict`` (a list's items, a
    struct's fields: the evidence's method, headers, SOAP fields…), delta for those
    declared ``delta``; the rest plain (a session's id, times and bytes have about as
    many values as rows: trying a dictionary on them first made writing 199,191
    sessions take 0.26 s instead of 0.20)."""
    leaves = list(_leaves(declared))
    return {
        "use_dictionary": [path for path, c in leaves if c.encoding == "dict"],
        "column_encoding": {
            path: _PARQUET_ENCODING[c.encoding] for path, c in leaves if c.encoding == "delta"
        },
    }


def layout_of(path: Any) -> str:
    """A short key of a Parquet file's columns (names, types, order) from its footer:
    files of a table with one layout are read without matching columns by name."""
    text = pq.read_schema(path).remove_metadata().to_string(show_schema_metadata=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_file(table: str, data: pa.Table, path: Any) -> None:
    """Write ``data`` as one whole file of ``table``, with the table's file options and
    row groups (how ingest's transactions and the sketches' rebuild write them)."""
    if table not in ROLLUP_ROW_GROUP_BYTES or data.num_rows == 0:
        rows = ROLLUP_ROW_GROUP_ROWS.get(table)
        pq.write_table(data, path, row_group_size=rows, **file_options(table))
        return
    with DayTableWriter(table, path, data.schema) as out:
        out.write(data)


class DayTableWriter:
    """A file of a day table written in pieces (``teiten.store.pack``), each cut into
    row groups by bytes: ROLLUP_ROW_GROUP_BYTES, the busy target for busy rows (a
    piece's busy rows come first), the other (times ``scale``) for the rest."""

    def __init__(self, table: str, path: Any, schema: pa.Schema, *, scale: int = 1) -> None:
        busy, quiet = ROLLUP_ROW_GROUP_BYTES[table]
        self.targets = (busy, quiet * scale)
        """``scale``: quiet groups that many times larger (a pack: fewer groups to skip)."""
        self.out = pq.ParquetWriter(path, schema, **file_options(table))
        self.rows = 0

    def __enter__(self) -> DayTableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.close()

    def write(self, data: pa.Table) -> None:
        busy = data.column("busy").to_numpy(zero_copy_only=False).astype(bool)
        split = int(np.argmin(busy)) if not busy.all() else len(busy)  # busy rows first
        for offset, part, target in (
            (0, data.slice(0, split), self.targets[0]),
            (split, data.slice(split), self.targets[1]),
        ):
            for start, end in _byte_groups(_row_bytes(part), target):
                group = data.slice(start + offset, end - start)
                self.out.write_table(group, row_group_size=end - start)
        self.rows += data.num_rows


def _row_bytes(data: pa.Table) -> npt.NDArray[np.int64]:
    """What each row weighs in ROLLUP_ROW_GROUP_BYTES: its ``registers`` bytes, or
    ROLLUP_ROW_BYTES in a table without them."""
    if "registers" not in data.column_names:
        return np.full(data.num_rows, ROLLUP_ROW_BYTES, np.int64)
    return binary_lengths(data.column("registers"))


def binary_offsets(array: pa.Array) -> npt.NDArray[np.int64]:
    """The ``len + 1`` value offsets of a ``binary`` or ``large_binary`` array (positions in
    its data buffer), as 64-bit integers."""
    width = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    at = array.offset
    offsets = np.frombuffer(array.buffers()[1], width)[at : at + len(array) + 1]
    return offsets.astype(np.int64, copy=False)


def binary_lengths(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """The byte length of each value of a ``binary`` or ``large_binary`` column (0 where
    null), from its offsets: ``pyarrow.compute`` costs a reader 27 ms to import."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = np.diff(binary_offsets(array))
    if array.null_count:
        lengths[np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool)] = 0
    return lengths


def _byte_groups(sizes: npt.NDArray[np.int64], target: int) -> list[tuple[int, int]]:
    """Row ranges of about ``target`` bytes each (cut between rows), rows of ``sizes``."""
    if len(sizes) == 0:
        return []
    ends = np.cumsum(sizes)
    cuts = np.searchsorted(ends, np.arange(target, int(ends[-1]), target), side="right")
    bounds = np.unique(np.concatenate(([0], cuts, [len(sizes)])))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def bytes16_values(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint8]:
    """A ``binary(16)`` column as (rows, 16) bytes, zeros where null."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    out = np.zeros((len(array), 16), np.uint8)
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool)
    if valid.any():
        data = np.frombuffer(array.buffers()[1], np.uint8)[array.offset * 16 :]
        out[valid] = data[: len(array) * 16].reshape(-1, 16)[valid]
    return out


def bytes16_array(values: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> pa.Array:
    """A ``binary(16)`` column of ``(n, 16)`` bytes, null where ``valid`` is false (no copy)."""
    n = values.shape[0]
    if not valid.any():
        return pa.nulls(n, pa.binary(16))
    flat = pa.py_buffer(np.ascontiguousarray(values).reshape(-1))
    mask = pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.binary(16), n, [mask, flat], null_count=int(n - valid.sum()))


def to_table(
    columns: dict[str, npt.NDArray[Any]],
    schema: pa.Schema | None = None,
    order: npt.NDArray[np.int64] | None = None,
    labels: dict[str, list[str]] | None = None,
) -> pa.Table:
    """An Arrow table of a batch of logical columns, in the stored layout.

    ``order`` permutes the rows (see ``store/order.py``); ``str`` columns are
    int32 codes into ``labels[name]`` (a column without labels is all '').
    """
    schema = schema or arrow_schema()
    physical = to_physical(columns)
    is_v6 = columns["ip_version"] == 6
    if order is not None:
        has_v6 = bool(is_v6.any())
        # IPv6 columns are all null without IPv6 rows: not worth gathering.
        physical = {
            k: (v[order] if has_v6 or v.ndim == 1 else np.empty((len(order), 16), np.uint8))
            for k, v in physical.items()
        }
        is_v6 = is_v6[order]
    arrays: list[pa.Array] = []
    for c in stored_columns():
        v = physical[c.name]
        if c.dtype == "bytes16":
            arrays.append(bytes16_array(v, is_v6))
        elif c.dtype == "str":
            text = (labels or {}).get(c.name) or [""]
            codes = v if (labels or {}).get(c.name) else np.zeros(len(is_v6), np.int32)
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), text))
        else:
            arrays.append(pa.array(v))
    return pa.Table.from_arrays(arrays, schema=schema)
