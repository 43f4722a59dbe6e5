"""Rollup rows of packet batches (teiten.store.rollup): the groups, the port rule, the bound."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import teiten.store.grouping as grouping_module
from teiten.schema import ADDRESS_HOURS, DECODE_ERRORS, HOUR_NS, PORT_HOURS, decode_error_code
from teiten.store.grouping import group_spans
from teiten.store.rollup import (
    PORT_KEY,
    Rollup,
    address_rows,
    group,
    merged_addresses,
    port_rows,
    to_table,
)

T0 = 1_700_000_000 * 10**9


def batch(n: int, seed: int = 1, v6: bool = True) -> dict[str, Any]:
    """Packet columns with few distinct values, so keys repeat."""
    rng = np.random.default_rng(seed)
    version = np.where(rng.random(n) < (0.2 if v6 else 0.0), 6, 4).astype(np.uint8)
    src6 = np.zeros((n, 16), np.uint8)
    src6[version == 6, 15] = rng.integers(1, 4, int((version == 6).sum()))
    src6[version == 6, 0] = 0x20
    dst6 = np.zeros((n, 16), np.uint8)
    dst6[version == 6, 15] = rng.integers(1, 3, int((version == 6).sum()))
    return {
        "ts": T0 + rng.integers(0, 3 * HOUR_NS, n),
        "ip_version": version,
        "proto": rng.choice(np.array([1, 6, 17], np.uint8), n),
        "dst_port": rng.choice(np.array([23, 80, 0], np.uint16), n),
        "src_ip4": np.where(version == 4, rng.integers(1, 6, n), 0).astype(np.uint32),
        "src_ip6": src6,
        "dst_ip4": np.where(version == 4, rng.integers(100, 104, n), 0).astype(np.uint32),
        "dst_ip6": dst6,
        "src_cc": rng.integers(0, 3, n).astype(np.int32),
        "src_asn": rng.integers(0, 2, n).astype(np.uint32),
        "fp": rng.integers(0, 4, n).astype(np.uint32),
        "is_outbound": rng.random(n) < 0.1,
        "decode_error": rng.choice(np.arange(len(DECODE_ERRORS), dtype=np.uint8), n),
    }


def _key(c: dict[str, Any], i: int, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(bytes(c[k][i]) if c[k].ndim == 2 else int(c[k][i]) for k in names)


def expected_ports(c: dict[str, Any]) -> Counter[tuple[Any, ...]]:
    """The port_hours rows, one packet at a time."""
    counted = {decode_error_code(n) for n in ("", "truncated_l4", "bad_tcp_header")}
    out: Counter[tuple[Any, ...]] = Counter()
    for i in range(len(c["ts"])):
        if c["is_outbound"][i] or c["proto"][i] not in (6, 17):
            continue
        if int(c["decode_error"][i]) not in counted:
            continue
        row = {**{k: c[k] for k in PORT_KEY if k != "hour"}, "hour": c["ts"] // HOUR_NS}
        out[_key(row, i, PORT_KEY)] += 1
    return out


def test_port_rows_count_what_the_port_rule_counts() -> None:
    c = batch(20_000)
    rows, packets = port_rows(c, np.arange(20_000, dtype=np.int64))
    got = Counter({_key(rows, i, PORT_KEY): int(p) for i, p in enumerate(packets)})
    assert len(got) == len(packets)  # one row per key
    assert got == expected_ports(c)
    assert 0 < packets.sum() < 20_000


def test_address_rows_are_the_distinct_inbound_destinations() -> None:
    c = batch(5_000)
    got = address_rows(c, np.arange(5_000, dtype=np.int64))
    names = tuple(col.name for col in ADDRESS_HOURS)
    keys = [_key(got, i, names) for i in range(len(got["hour"]))]
    want = {
        (
            int(c["ts"][i] // HOUR_NS),
            int(c["ip_version"][i]),
            int(c["dst_ip4"][i]),
            bytes(c["dst_ip6"][i]),
        )
        for i in range(5_000)
        if not c["is_outbound"][i]
    }
    assert len(keys) == len(set(keys)) and set(keys) == want


def test_rows_are_a_subset_of_the_batch() -> None:
    c = batch(1_000)
    some = np.arange(0, 1_000, 3, dtype=np.int64)
    _, packets = port_rows(c, some)
    rest = np.setdiff1d(np.arange(1_000), some)
    _, others = port_rows(c, rest)
    _, every = port_rows(c, np.arange(1_000, dtype=np.int64))
    assert packets.sum() + others.sum() == every.sum()


def test_group_sums_weights_and_keeps_first_values() -> None:
    cols = {"a": np.array([3, 1, 3, 2, 1], np.uint32), "b": np.array([0, 0, 0, 1, 0], np.uint8)}
    out, sums = group(cols, ("a", "b"), np.array([5, 1, 2, 7, 1], np.int64))
    assert out["a"].tolist() == [3, 1, 2] and sums.tolist() == [7, 2, 7]
    empty, none = group({"a": cols["a"][:0]}, ("a",))
    assert len(empty["a"]) == 0 and len(none) == 0


def _brute_groups(
    words: np.ndarray, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Groups by key in order of first appearance: first row, sum, least lo, greatest hi."""
    found: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(map(tuple, words.tolist())):
        if key not in found:
            found[key] = [i, 0, int(lo[i]), int(hi[i])]
        g = found[key]
        g[1] += int(weights[i])
        g[2], g[3] = min(g[2], int(lo[i])), max(g[3], int(hi[i]))
    rows = list(found.values())
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 3000),
    keys=st.integers(1, 4000),
    width=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_partitioned_grouping_equals_the_groups_in_order(
    n: int, keys: int, width: int, seed: int
) -> None:
    """Above PARTITION_ROWS rows are grouped in partitions of their hash: the same groups,
    sums and spans, in the same order (of first appearance), as one table gives."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, keys, n)
    words: npt.NDArray[np.uint64] = np.stack(
        [(ids * (j + 7919)) % (keys + j) for j in range(width)], axis=1
    ).astype(np.uint64)
    weights = rng.integers(1, 9, n).astype(np.int64)
    lo = rng.integers(0, 1000, n).astype(np.int64)
    hi = lo + rng.integers(0, 50, n)
    expected = _brute_groups(words, weights, lo, hi)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(grouping_module, "PARTITION_ROWS", 1)  # every call partitions
        m.setattr(grouping_module, "PARTITION_SIZE", 64)  # into many partitions
        first, sums, mins, maxs = group_spans(words, weights, (lo, hi))
        bare = group_spans(words)
    assert (first.tolist(), sums.tolist(), mins.tolist(), maxs.tolist()) == expected
    counts = _brute_groups(words, np.ones(n, np.int64), lo, hi)[1]
    assert bare[0].tolist() == expected[0] and bare[1].tolist() == counts
    assert len(bare[2]) == 0 and len(bare[3]) == 0


@pytest.mark.parametrize("v6", [True, False])
def test_rollup_merges_batches_and_spills_within_its_bound(v6: bool) -> None:
    rollup = Rollup(max_rows=300)
    batches = [batch(2_000, seed=s, v6=v6) for s in range(6)]
    spilled: list[pa.Table] = []
    for c in batches:
        t = rollup.add(7, c, np.arange(2_000, dtype=np.int64))
        if t is not None:
            spilled.append(t)
    tables = rollup.tables(7)
    assert spilled  # the bound made it write part of the day early
    total: Counter[tuple[Any, ...]] = Counter()
    for t in [*spilled, tables["port_hours"]]:
        assert t.schema == to_table(None, PORT_HOURS).schema
        for r in t.to_pylist():
            key = tuple(r[k] if k != "src_ip6" else (r[k] or bytes(16)) for k in PORT_KEY)
            total[key] += r["packets"]
    want: Counter[tuple[Any, ...]] = Counter()
    for c in batches:
        want.update(expected_ports(c))
    assert total == want
    assert rollup.tables(7)["port_hours"].num_rows == 0  # the day was handed out


def _address_keys(t: pa.Table) -> list[tuple[Any, ...]]:
    return [
        (r["ip_version"] == 6, r["dst_ip4"], r["dst_ip6"] or b"", r["hour"]) for r in t.to_pylist()
    ]


def test_tables_are_sorted_and_typed_as_declared() -> None:
    c = batch(3_000)
    rollup = Rollup()
    rollup.add(0, c, np.arange(3_000, dtype=np.int64))
    tables = rollup.tables(0)
    keys = _address_keys(tables["address_hours"])
    assert keys == sorted(keys)  # by address (IPv4 first), then hour
    for name, declared in (("port_hours", PORT_HOURS), ("address_hours", ADDRESS_HOURS)):
        t = tables[name]
        hours = t.column("hour").to_numpy()
        assert t.num_rows > 0
        assert name != "port_hours" or (np.diff(hours) >= 0).all()  # by hour
        assert t.column_names == [col.name for col in declared]
        v6 = t.column("ip_version").to_numpy() == 6
        column = "src_ip6" if name == "port_hours" else "dst_ip6"
        nulls = t.column(column).is_null().to_numpy(zero_copy_only=False)
        assert (nulls == ~v6).all()


def test_merged_addresses_keep_each_row_once_in_address_order() -> None:
    tables = [Rollup().tables(0) for _ in range(2)]
    parts = []
    for seed in (1, 2):
        rollup = Rollup()
        c = batch(2_000, seed=seed)
        rollup.add(0, c, np.arange(2_000, dtype=np.int64))
        parts.append(rollup.tables(0)["address_hours"])
    merged = merged_addresses([*parts, parts[0], tables[0]["address_hours"]])
    want = {tuple(r.values()) for p in parts for r in p.to_pylist()}
    assert merged.num_rows == len(want)
    assert {tuple(r.values()) for r in merged.to_pylist()} == want
    keys = _address_keys(merged)
    assert keys == sorted(keys)
