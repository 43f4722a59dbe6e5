"""The stored layout round-trips: any logical values → stored columns → SQL → same values."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.decode.batch import empty_columns
from teiten.schema import DECODE_ERRORS, PACKETS
from teiten.store.arrow import to_table
from teiten.store.layout import PACKED, logical_sql, stored_columns
from teiten.store.views import DUCKDB

_INTS = [c for c in PACKETS if c.dtype.startswith(("uint", "int"))]


def test_packed_fields_fit() -> None:
    narrowed = {"ip_version": 6, "decode_error": len(DECODE_ERRORS) - 1, "src_cc": 676}
    for p in PACKED:
        assert sum(bits for _, bits in p.fields) <= 63, p.name  # bit 63 stays clear
        for column, _, bits in p.shifts():
            dtype = next(c.dtype for c in PACKETS if c.name == column)
            biggest = narrowed.get(column, 1 if dtype == "bool" else None)
            if biggest is None:
                biggest = int(np.iinfo(np.dtype(dtype)).max)
            assert biggest < 1 << bits, column


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 40))
def test_roundtrip_through_sql(data: st.DataObject, n: int) -> None:
    c = empty_columns(n)
    for col in _INTS:
        if col.name in {"sensor", "input_id", "src_cc"}:
            continue
        info = np.iinfo(np.dtype(col.dtype))
        hi = min(info.max, {"ip_version": 15, "decode_error": 15}.get(col.name, info.max))
        lo = max(info.min, 0)
        c[col.name] = np.array(
            data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=col.dtype
        )
    c["src_cc"] = np.array(
        data.draw(st.lists(st.integers(0, 676), min_size=n, max_size=n)), np.int32
    )
    c["is_outbound"] = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    table = to_table(c)
    assert table.schema.names == [s.name for s in stored_columns()]
    exprs = logical_sql(DUCKDB.xor, DUCKDB.intdiv)
    con = duckdb.connect()
    con.register("t", table)
    names = [x.name for x in _INTS if x.name not in {"sensor", "input_id", "src_cc"}]
    names += ["is_outbound", "src_cc_code"]
    sql = "SELECT " + ", ".join(f"{exprs[k]} AS {k}" for k in names) + " FROM t"
    got = con.sql(sql).to_arrow_table()
    for k in names:
        want = c["src_cc" if k == "src_cc_code" else k].tolist()
        assert got.column(k).to_pylist() == want, k


def test_country_text_in_sql() -> None:
    exprs = logical_sql(DUCKDB.xor, DUCKDB.intdiv)
    con = duckdb.connect()
    lens = pa.array([((1 + 9 * 26 + 15) << 5), 0, (676 << 5)], pa.int64())  # JP, unknown, ZZ
    con.register("t", pa.table({"lens": lens}))
    got = con.sql(f"SELECT {exprs['src_cc']} AS cc FROM t").fetchall()
    assert [r[0] for r in got] == ["JP", "", "ZZ"]
