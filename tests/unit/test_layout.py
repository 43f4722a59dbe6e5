"""The stored layout round-trips: any logical values → stored columns → SQL → same values."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.decode.batch import empty_columns
from teiten.schema import DECODE_ERRORS, PACKETS
from teiten.sql.dialect import DUCKDB
from teiten.sql.views import logical_columns
from teiten.store.arrow import to_table
from teiten.store.layout import (
    PACKED,
    from_physical,
    replace_physical,
    stored_columns,
    to_physical,
)

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
    exprs = logical_columns(DUCKDB)
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
    exprs = logical_columns(DUCKDB)
    con = duckdb.connect()
    lens = pa.array([((1 + 9 * 26 + 15) << 5), 0, (676 << 5)], pa.int64())  # JP, unknown, ZZ
    con.register("t", pa.table({"lens": lens}))
    got = con.sql(f"SELECT {exprs['src_cc']} AS cc FROM t").fetchall()
    assert [r[0] for r in got] == ["JP", "", "ZZ"]


def _random_columns(data: st.DataObject, n: int) -> dict[str, np.ndarray]:
    c = empty_columns(n)
    for col in _INTS:
        if col.name in {"sensor", "input_id", "src_cc"}:
            continue
        info = np.iinfo(np.dtype(col.dtype))
        hi = min(info.max, {"ip_version": 15, "decode_error": 15}.get(col.name, info.max))
        c[col.name] = np.array(
            data.draw(st.lists(st.integers(max(info.min, 0), hi), min_size=n, max_size=n)),
            dtype=col.dtype,
        )
    c["src_cc"] = np.array(
        data.draw(st.lists(st.integers(0, 676), min_size=n, max_size=n)), np.int32
    )
    return c


_NUMERIC = [c.name for c in _INTS if c.name not in {"sensor", "input_id"}] + ["src_cc"]


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(1, 30))
def test_numpy_form_of_the_layout_round_trips(data: st.DataObject, n: int) -> None:
    c = _random_columns(data, n)
    stored = to_physical(c)
    back = from_physical(stored, _NUMERIC)
    for k in _NUMERIC:
        assert back[k].tolist() == c[k].tolist(), k
    # replace some logical columns: the stored result is what storing them gives
    other = _random_columns(data, n)
    replaced = data.draw(st.lists(st.sampled_from(_NUMERIC[1:]), min_size=1, unique=True))
    new = {k: other[k] for k in replaced}
    changed = replace_physical(stored, new)
    want = to_physical({**c, **new})
    for k, v in changed.items():
        assert v.tolist() == want[k].tolist(), k
    unchanged = set(stored) - set(changed)
    assert all(stored[k].tolist() == want[k].tolist() for k in unchanged)
