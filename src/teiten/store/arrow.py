"""Conversion of packet batches to Arrow tables, with the schema derived from teiten.schema."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.schema import PACKETS, Column


def arrow_type(c: Column) -> pa.DataType:
    """The Arrow type a declared column is stored as."""
    if c.dtype == "str":
        return pa.dictionary(pa.int32(), pa.string())
    if c.dtype == "bytes16":
        return pa.binary(16)
    if c.dtype == "bool":
        return pa.bool_()
    return pa.from_numpy_dtype(np.dtype(c.dtype))


def arrow_schema(columns: tuple[Column, ...] = PACKETS) -> pa.Schema:
    """The Arrow schema of a declared table."""
    return pa.schema([pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in columns])


def _dictionary(codes: npt.NDArray[np.int32], labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(labels, pa.string()))


def _bytes16(values: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> pa.Array:
    n = values.shape[0]
    if not valid.any():
        return pa.nulls(n, pa.binary(16))
    flat = pa.py_buffer(np.ascontiguousarray(values).reshape(-1))
    mask = pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.binary(16), n, [mask, flat], null_count=int(n - valid.sum()))


def to_table(
    columns: dict[str, npt.NDArray[Any]],
    labels: dict[str, list[str]],
    schema: pa.Schema | None = None,
) -> pa.Table:
    """An Arrow table of the declared packet columns (primitive columns are not copied).

    ``str`` columns are int32 codes into ``labels[name]``.
    """
    schema = schema or arrow_schema()
    is_v6 = columns["ip_version"] == 6
    arrays: list[pa.Array] = []
    for c in PACKETS:
        v = columns[c.name]
        if c.dtype == "str":
            arrays.append(_dictionary(v, labels[c.name]))
        elif c.dtype == "bytes16":
            arrays.append(_bytes16(v, is_v6))
        else:
            arrays.append(pa.array(v))
    return pa.Table.from_arrays(arrays, schema=schema)
