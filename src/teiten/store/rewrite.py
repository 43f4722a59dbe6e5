"""A table's stored files read, and rewritten, in logical columns, row group by row group.

Callers outside the store (``teiten enrich``) speak in the logical columns of
:mod:`teiten.schema` — ``src_cc`` as a country code, ``src_ip6`` as 16 bytes —
and never in the stored layout (packed bits, residuals; ``store/layout.py``).
:func:`read_columns` gives them the logical columns of every committed file;
:func:`rewrite_table` stages a replacement of each file with some logical
columns replaced by what a function of the logical columns returns, keeping
every other stored column, the row order and the row groups (their number and
sizes) as stored. The replacements join a rewrite :class:`Transaction`, whose
:meth:`~Transaction.commit_replacements` swaps them in, all at once, in the
catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.schema import LAKE_TABLES
from teiten.store.arrow import arrow_schema, bytes16_values, file_options
from teiten.store.lake import Lake
from teiten.store.layout import from_physical, replace_physical, stored_columns, stored_inputs
from teiten.store.paths import month_of
from teiten.store.transaction import Transaction

Columns = dict[str, npt.NDArray[Any]]
"""Logical columns of some rows: numpy arrays; ``bytes16`` columns as (rows, 16) uint8
(zeros where null); ``str`` columns as int32 codes into their labels."""
Change = Callable[[Columns], Columns]
"""A function of some logical columns of a row group to the columns that replace theirs."""

_DICTIONARY_STR = {s.name for s in stored_columns() if s.dtype == "str"}


@dataclass
class Rewritten:
    """What :func:`rewrite_table` staged."""

    files: int = 0
    rows: int = 0
    row_groups: int = 0


def _numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    if pa.types.is_fixed_size_binary(column.type) and column.type.byte_width == 16:
        return bytes16_values(column)
    if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
        values: npt.NDArray[Any] = column.to_numpy()
        return values
    raise ValueError(f"column of type {column.type} cannot be read as numbers")


def logical_columns(table: str, rows: pa.Table, names: Sequence[str]) -> Columns:
    """The logical columns ``names`` of stored rows of ``table`` (``str`` columns left out)."""
    if table != "packets":
        return {name: _numpy(rows.column(name)) for name in names}
    stored = {
        name: _numpy(rows.column(name))
        for name in rows.column_names
        if name not in _DICTIONARY_STR
        and (not pa.types.is_fixed_size_binary(rows.schema.field(name).type) or name in names)
    }
    return from_physical(stored, names)


def read_columns(lake: Lake, table: str, names: Sequence[str]) -> Iterator[Columns]:
    """The logical columns ``names`` of each row group of every committed file of ``table``."""
    wanted = stored_inputs(names) if table == "packets" else set(names)
    for path in lake.files(table):
        f = pq.ParquetFile(path)
        columns = [c for c in f.schema_arrow.names if c in wanted]
        for i in range(f.num_row_groups):
            yield logical_columns(table, f.read_row_group(i, columns=columns), names)


def _default(field: pa.Field, n: int) -> pa.Array:
    """The value of a column an older file lacks (packets' ``src_asn``, ``src_as_org``)."""
    if pa.types.is_dictionary(field.type):
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), [""])
    return pa.array(np.zeros(n, field.type.to_pandas_dtype()), field.type)


def _text(codes: npt.NDArray[Any], labels: Sequence[str], field: pa.Field) -> pa.Array:
    text = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), list(labels) or [""])
    return text if pa.types.is_dictionary(field.type) else text.cast(field.type)


def _replaced(
    table: str,
    rows: pa.Table,
    new: Columns,
    schema: pa.Schema,
    labels: Mapping[str, Sequence[str]],
) -> pa.Table:
    n = rows.num_rows
    declared = {c.name: c for c in LAKE_TABLES[table]}
    arrays: dict[str, pa.Array] = {}
    numeric = {}
    for name, values in new.items():
        if name not in declared:
            raise ValueError(f"{table} has no column {name}")
        if len(values) != n:
            raise ValueError(f"{table}.{name}: {len(values)} values for {n} rows")
        if declared[name].dtype == "str" and (table != "packets" or name in _DICTIONARY_STR):
            arrays[name] = _text(values, labels.get(name, ()), schema.field(name))
        else:
            numeric[name] = values
    if table == "packets":
        stored = {
            name: _numpy(rows.column(name))
            for name in rows.column_names
            if name in schema.names
            and not pa.types.is_fixed_size_binary(rows.column(name).type)
            and name not in _DICTIONARY_STR
        }
        numeric = replace_physical(stored, numeric)
    for name, values in numeric.items():
        arrays[name] = pa.array(values).cast(schema.field(name).type)
    columns = []
    for field in schema:
        if field.name in arrays:
            columns.append(pa.chunked_array([arrays[field.name]]))
        elif field.name in rows.column_names:
            columns.append(rows.column(field.name).cast(field.type))
        else:
            columns.append(pa.chunked_array([_default(field, n)]))
    return pa.Table.from_arrays(columns, schema=schema)


def rewrite_table(
    tx: Transaction,
    table: str,
    change: Change,
    *,
    reads: Sequence[str],
    labels: Mapping[str, Sequence[str]] | None = None,
) -> Rewritten:
    """Stage, in ``tx``, a replacement of every committed file of ``table`` (of a pack: a
    new pack of the same inputs).

    Each row group is read, its logical columns ``reads`` passed to
    ``change``, and the columns it returns (logical names; ``str`` columns as
    codes into ``labels[name]``, which is read after each call so it may grow)
    replace theirs; the row group is written as one row group of the
    replacement, with the table's stored schema and writer options. Nothing is
    visible until ``tx.commit_replacements()``.
    """
    done = Rewritten()
    names = labels if labels is not None else {}
    packs = {path: inputs for path, _, inputs in tx.lake.catalog.packs(table)}
    for rel in tx.lake.catalog.files(table):
        source = pq.ParquetFile(tx.lake.root / rel)
        schema = arrow_schema() if table == "packets" else source.schema_arrow
        month = month_of(rel)
        if rel in packs and month is not None:  # a new pack of the same inputs
            new_rel, path = tx.pack_target(table, *month)
            rows = _copy(source, path, schema, table, change, reads, names)
            tx.add(table, new_rel, rows, inputs=packs[rel])
            tx.remove(rel)
        else:
            new_rel, path = tx.replacement(rel)
            rows = _copy(source, path, schema, table, change, reads, names)
            tx.add(table, new_rel, rows, replaces=rel)
        done.files += 1
        done.rows += rows
        done.row_groups += source.num_row_groups
    return done


def _copy(
    source: pq.ParquetFile,
    path: Path,
    schema: pa.Schema,
    table: str,
    change: Change,
    reads: Sequence[str],
    labels: Mapping[str, Sequence[str]],
) -> int:
    rows = 0
    options = file_options(table)
    with pq.ParquetWriter(path, schema, **options) as writer:
        for i in range(source.num_row_groups):
            group = source.read_row_group(i)
            new = change(logical_columns(table, group, reads))
            out = _replaced(table, group, new, schema, labels)
            writer.write_table(out, row_group_size=max(out.num_rows, 1))
            rows += out.num_rows
    return rows
