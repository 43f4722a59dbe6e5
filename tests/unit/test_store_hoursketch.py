"""teiten.store.hoursketch: hour sketches of parts merge as one sketch of all their rows;
packets per hour and segment exact, sources within the sketch's error."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from teiten.store import hoursketch
from teiten.store.registers import merge, row_registers
from teiten.store.sketch import port_day_keys, segment_codes

HOME = 392


def _port_hours(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "hour": pa.array(420000 + rng.integers(0, 30, n), pa.int32()),
            "proto": pa.array(rng.choice([6, 17], n), pa.uint8()),
            "dst_port": pa.array(rng.choice([23, 2323, 53], n), pa.uint16()),
            "ip_version": pa.array(np.full(n, 4), pa.uint8()),
            "src_ip4": pa.array(rng.integers(1, 5000, n), pa.uint32()),
            "src_ip6": pa.nulls(n, pa.binary(16)),
            "src_cc": pa.array(rng.choice([0, HOME, 840], n), pa.uint16()),
            "packets": pa.array(rng.integers(1, 4, n), pa.int64()),
        }
    )


def _rows(t: pa.Table) -> pa.Table:
    hours = t.column("hour").to_numpy().astype(np.int64)
    days = (hours // 24).astype(np.int32)
    seg = segment_codes(t.column("src_cc").to_numpy(), HOME)
    return hoursketch.hour_rows(t, days, seg, row_registers(t))


def _key(t: pa.Table) -> np.ndarray:  # type: ignore[type-arg]
    cols = [t.column(c).to_numpy().astype(np.int64) for c in ("proto", "dst_port", "hour", "seg")]
    return (
        (cols[0] == 17).astype(np.int64) << 60 | cols[1] << 40 | (cols[2] - 400000) << 4 | cols[3]
    )


def test_parts_merge_as_one_sketch_of_their_rows() -> None:
    a, b = _port_hours(4000, 1), _port_hours(3000, 2)
    merged = hoursketch.combine_hours([_rows(a), _rows(b)])
    whole = _rows(pa.concat_tables([a, b]))
    assert merged.num_rows == whole.num_rows
    assert merged.column("packets").equals(whole.column("packets"))
    m = merge(_key(merged), merged.column("packets").to_numpy(), merged.column("registers"))
    w = merge(_key(whole), whole.column("packets").to_numpy(), whole.column("registers"))
    assert (m.sources == w.sources).all()  # max of registers: the same sketch
    both = pa.concat_tables([a, b])
    seg = segment_codes(both.column("src_cc").to_numpy(), HOME)
    exact: dict[tuple[int, ...], set[int]] = {}
    for r, s in zip(both.to_pylist(), seg.tolist(), strict=True):
        exact.setdefault((r["proto"], r["dst_port"], r["hour"], s), set()).add(r["src_ip4"])
    got = dict(zip(_key(merged).tolist(), m.sources.tolist(), strict=True))
    for (proto, port, hour, s), sources in exact.items():
        k = int(proto == 17) << 60 | port << 40 | (hour - 400000) << 4 | s
        assert abs(got[k] - len(sources)) <= max(2, 0.05 * len(sources))


def test_kept_keeps_the_port_days_asked() -> None:
    rows = _rows(_port_hours(2000, 3))
    keys = port_day_keys(rows)
    wanted = np.unique(keys)[:2]
    kept = hoursketch.kept(rows, wanted)
    assert 0 < kept.num_rows < rows.num_rows
    assert set(port_day_keys(kept).tolist()) == set(wanted.tolist())
    assert kept.column("busy").to_pylist() == [True] * kept.num_rows
