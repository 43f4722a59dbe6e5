"""Parquet writer options (``teiten.store.arrow.file_options``): each table's files carry
the encodings its columns are declared with; byte lengths read off a binary column's
offsets (``binary_lengths``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from teiten.pipeline.sessions import LOGINS_SCHEMA, SESSIONS_SCHEMA
from teiten.schema import TABLES, Column
from teiten.store.arrow import binary_lengths, write_file


def _value(t: pa.DataType, i: int) -> Any:
    """A value of type ``t`` for row ``i`` (few distinct strings, as sessions have)."""
    if pa.types.is_struct(t):
        return {t.field(k).name: _value(t.field(k).type, i) for k in range(t.num_fields)}
    if pa.types.is_list(t):
        return [_value(t.value_type, i)]
    if pa.types.is_fixed_size_binary(t):
        return None
    if pa.types.is_binary(t):
        return bytes([i % 251]) * 3
    if pa.types.is_string(t):
        return ("GET", "POST", "jp")[i % 3]
    if pa.types.is_boolean(t):
        return i % 2 == 0
    if pa.types.is_floating(t):
        return float(i)
    return i % 100


def _encodings(path: Path) -> dict[str, tuple[str, ...]]:
    meta = pq.ParquetFile(path).metadata.row_group(0)
    return {
        meta.column(k).path_in_schema: meta.column(k).encodings for k in range(meta.num_columns)
    }


@pytest.mark.parametrize(
    ("table", "schema"), [("sessions", SESSIONS_SCHEMA), ("logins", LOGINS_SCHEMA)]
)
def test_sessions_and_logins_files_use_their_declared_encodings(
    tmp_path: Path, table: str, schema: pa.Schema
) -> None:
    rows = [{f.name: _value(f.type, i) for f in schema} for i in range(300)]
    path = tmp_path / f"{table}.parquet"
    write_file(table, pa.Table.from_pylist(rows, schema=schema), path)
    got = _encodings(path)
    for leaf, encodings in got.items():
        c = _declaration(TABLES[table], leaf)
        assert ("RLE_DICTIONARY" in encodings) == (c.encoding == "dict"), (leaf, encodings)
        assert ("DELTA_BINARY_PACKED" in encodings) == (c.encoding == "delta"), (leaf, encodings)
    assert pq.read_table(path).to_pylist() == rows


def _declaration(columns: tuple[Column, ...], leaf: str) -> Column:
    """The declared column that gives the encoding of the Parquet leaf ``leaf``: a
    ``list_str``'s items follow the list, a struct's fields their own declaration."""
    names = [part for part in leaf.split(".") if part not in ("list", "element")]
    for depth, name in enumerate(names):
        column = next(c for c in columns if c.name == name)
        if column.dtype == "list_str" or depth == len(names) - 1:
            return column
        columns = column.fields
    raise AssertionError(leaf)


def test_nested_evidence_text_is_dictionary_encoded(tmp_path: Path) -> None:
    """The requests' methods, headers and SOAP fields repeat: their leaves are declared
    ``dict``; the body length and a honeypot's session id are not."""
    rows = [{f.name: _value(f.type, i) for f in SESSIONS_SCHEMA} for i in range(300)]
    path = tmp_path / "sessions.parquet"
    write_file("sessions", pa.Table.from_pylist(rows, schema=SESSIONS_SCHEMA), path)
    got = _encodings(path)
    for leaf in (
        "requests.list.element.method",
        "requests.list.element.headers.list.element.value",
        "requests.list.element.soap.args.list.element.name",
        "requests.list.element.signatures.list.element",
        "telnet.lines.list.element",
        "notes.list.element",
    ):
        assert "RLE_DICTIONARY" in got[leaf], leaf
    for leaf in ("requests.list.element.body_length", "honeypot.session", "id"):
        assert "RLE_DICTIONARY" not in got[leaf], leaf


@given(
    st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=30),
    st.integers(0, 30),
    st.booleans(),
    st.booleans(),
)
def test_binary_lengths_are_the_values_lengths(
    values: list[bytes | None], start: int, large: bool, chunked: bool
) -> None:
    """Sliced, large, chunked or with nulls: each value's length, 0 for a null."""
    array = pa.array(values, pa.large_binary() if large else pa.binary())[start:]
    column: pa.Array | pa.ChunkedArray = (
        pa.chunked_array([array[:2], array[2:]], array.type) if chunked else array
    )
    expected = [0 if v is None else len(v) for v in values[start:]]
    assert binary_lengths(column).tolist() == expected
