"""The port lists (``teiten.store.portlists``): ``port_tops`` (each port day's busiest
sources and its floor) and ``port_groups`` (per ASN, fingerprint bit and no fingerprint:
packets and registers), from ``port_hours`` rows and combined over a day file's parts,
checked against brute forces in plain Python; and as ``DaySketch`` writes them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sketch_data import (
    CN,
    JP,
    US,
    Registers,
    _decode,
    _encode,
    _estimate_of,
    _hour,
    _sources,
    _union,
    _v4_table,
)

from teiten.schema import PORT_HOURS
from teiten.schema.daytables import PORT_ASNS_KEPT, PORT_GROUPS, PORT_TOPS, PORT_TOPS_KEPT
from teiten.store import portlists
from teiten.store.arrow import bytes16_values
from teiten.store.portlists import OTHER_ASN, combine_groups, combine_tops, group_rows, top_rows
from teiten.store.registers import merge, source_registers
from teiten.store.rollup import schema, to_table
from teiten.store.sketch import DaySketch, SketchCut, local_days

BASE = _hour(2021, 6, 1, 0)
PORTS = (23, 80, 2323, 65535)
ASNS = (0, 7, 4134, 13335, 64512, 4294967294)
BITS = (0, 3, 17, 31)
Source = tuple[int, Any]  # (0, IPv4 integer) or (1, IPv6 bytes): the tie order of the lists
PortDay = tuple[int, int, int]  # day, proto, port
Group = tuple[int, int, int, int, int]  # day, proto, port, dim, key


def _hours(seed: int, rows: int, ports: int, days: int, v6: int) -> pa.Table:
    """Random ``port_hours`` rows: 300 IPv4 and ``v6`` IPv6 sources (some much busier),
    ``ports`` ports of both protocols over ``days`` UTC days, small packet counts (ties)
    and a few large ones, and random countries, ASNs and fingerprint bits per row."""
    rng = np.random.default_rng(seed)
    six = rng.integers(0, 256, (max(v6, 1), 16)).astype(np.uint8)
    six[:, 0], six[:, 15] = rng.choice([0x20, 0xFE], len(six)), np.arange(len(six))  # distinct
    pool = (rng.random(rows) ** 2 * (300 + v6)).astype(np.int64)  # skewed: repeated sources
    is6 = pool >= 300
    fp = np.zeros(rows, np.uint32)
    for bit in BITS:
        fp |= (rng.random(rows) < 0.3).astype(np.uint32) << np.uint32(bit)
    cols = {
        "hour": BASE + rng.integers(0, days, rows) * 24 + rng.integers(0, 24, rows),
        "proto": rng.choice([6, 17], rows).astype(np.uint8),
        "dst_port": rng.choice(PORTS[:ports], rows).astype(np.uint16),
        "ip_version": np.where(is6, 6, 4).astype(np.uint8),
        "src_ip4": np.where(is6, 0, _sources(300, seed)[np.minimum(pool, 299)]),
        "src_ip6": np.where(is6[:, None], six[np.maximum(pool - 300, 0)], 0),
        "src_cc": rng.choice([0, JP, US, CN], rows).astype(np.uint16),
        "src_asn": rng.choice(ASNS, rows).astype(np.uint32),
        "fp": fp,
        "packets": np.where(
            rng.random(rows) < 0.1, rng.integers(1, 10**6, rows), rng.integers(1, 4, rows)
        ),
    }
    return to_table(cols, PORT_HOURS)


def _days(table: pa.Table) -> np.ndarray[Any, Any]:
    return table.column("hour").to_numpy().astype(np.int64) // 24  # UTC days


def _with(table: pa.Table, name: str, values: Any) -> pa.Table:
    """``table`` with the column ``name`` replaced by ``values`` (its declared type)."""
    i = table.schema.get_field_index(name)
    field = table.schema.field(i)
    return table.set_column(i, field, pa.array(values, field.type))


def _source(r: dict[str, Any]) -> Source:
    return (0, r["src_ip4"]) if r["ip_version"] == 4 else (1, r["src_ip6"])


def _split(table: pa.Table, pieces: int, seed: int) -> list[pa.Table]:
    """The rows cut into parts at random (as the rollup spills), some maybe empty."""
    part = np.random.default_rng(seed).integers(0, pieces, table.num_rows)
    return [table.filter(pa.array(part == i)) for i in range(pieces)]


tables = st.builds(
    _hours,
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 600),
    ports=st.integers(1, len(PORTS)),
    days=st.integers(1, 3),
    v6=st.integers(0, 30),
)


# --- port_tops ------------------------------------------------------------------------


def _totals(table: pa.Table) -> dict[PortDay, dict[Source, list[int]]]:
    """Per port day and source: packets (summed), the max country and the max ASN."""
    out: dict[PortDay, dict[Source, list[int]]] = defaultdict(dict)
    for r, day in zip(table.to_pylist(), _days(table).tolist(), strict=True):
        t = out[(day, r["proto"], r["dst_port"])].setdefault(_source(r), [0, 0, 0])
        t[0] += r["packets"]
        t[1], t[2] = max(t[1], r["src_cc"]), max(t[2], r["src_asn"])
    return out


def _brute_tops(table: pa.Table, kept: int) -> list[tuple[Any, ...]]:
    out = []
    for pd, sources in sorted(_totals(table).items()):
        ranked = sorted(sources.items(), key=lambda kv: (-kv[1][0], kv[0]))
        floor = ranked[kept][1][0] if len(ranked) > kept else 0
        out += [(*pd, src, cc, asn, n, floor) for src, (n, cc, asn) in ranked[:kept]]
    return out


def _listed(tops: pa.Table) -> list[tuple[Any, ...]]:
    assert tops.schema.equals(schema(PORT_TOPS))
    rows = tops.to_pylist()
    for r in rows:  # IPv4: no IPv6 bytes; IPv6: IPv4 0
        assert r["src_ip6"] is None if r["ip_version"] == 4 else r["src_ip4"] == 0
        assert r["busy"] is False
    keys = ("day", "proto", "dst_port", "src_cc", "src_asn", "packets", "floor")
    return [(*(r[k] for k in keys[:3]), _source(r), *(r[k] for k in keys[3:])) for r in rows]


@settings(max_examples=40, deadline=None)
@given(table=tables, kept=st.sampled_from([1, 3, PORT_TOPS_KEPT]))
def test_top_rows_equal_a_brute_force(table: pa.Table, kept: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(portlists, "PORT_TOPS_KEPT", kept)
        got = top_rows(table, _days(table))
    assert _listed(got) == _brute_tops(table, kept)


def test_top_rows_ties_by_address_ipv4_first() -> None:
    ip6 = bytes.fromhex("20010db8" + "00" * 11 + "01")
    v4 = _v4_table(BASE, 23, np.array([9, 5, 7], np.uint32), JP, np.array([4, 4, 4]))
    v6 = _with(_with(v4.slice(0, 1), "ip_version", [6]), "src_ip4", [0])
    v6 = _with(v6, "src_ip6", [ip6])
    table = pa.concat_tables([v6, v4])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(portlists, "PORT_TOPS_KEPT", 3)
        got = top_rows(table, _days(table))
    assert [_source(r) for r in got.to_pylist()] == [(0, 5), (0, 7), (0, 9)]
    assert got.column("floor").to_pylist() == [4, 4, 4]  # the IPv6 source left out
    assert top_rows(table.slice(0, 0), np.zeros(0)).equals(schema(PORT_TOPS).empty_table())


@settings(max_examples=40, deadline=None)
@given(
    table=tables,
    pieces=st.integers(2, 3),
    seed=st.integers(0, 2**16),
    kept=st.sampled_from([3, PORT_TOPS_KEPT]),
)
def test_combine_tops_bounds_every_source(
    table: pa.Table, pieces: int, seed: int, kept: int
) -> None:
    """Listed packets (0 if absent) ≤ true packets ≤ listed + floor, for every source."""
    parts = _split(table, pieces, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(portlists, "PORT_TOPS_KEPT", kept)
        tops = [top_rows(p, _days(p)) for p in parts]
        got = combine_tops(tops)
        whole = top_rows(table, _days(table))
    listed: dict[PortDay, dict[Source, int]] = defaultdict(dict)
    floors: dict[PortDay, set[int]] = defaultdict(set)
    for day, proto, port, src, _, _, packets, floor in _listed(got):
        assert src not in listed[(day, proto, port)]
        listed[(day, proto, port)][src] = packets
        floors[(day, proto, port)].add(floor)
    totals = _totals(table)
    assert set(listed) == set(totals)
    for pd, sources in totals.items():
        assert len(listed[pd]) <= kept and len(floors[pd]) == 1
        floor = floors[pd].pop()
        for src, (packets, _, _) in sources.items():
            got_packets = listed[pd].get(src, 0)
            assert got_packets <= packets <= got_packets + floor, (pd, src)
        assert set(listed[pd]) <= set(sources)
    if not any(pa.compute.sum(t.column("floor")).as_py() for t in tops if t.num_rows):
        assert got.equals(whole)  # no part dropped a source: the exact lists


def test_combine_tops_of_one_part_or_none() -> None:
    table = _hours(1, 200, 2, 2, 5)
    tops = top_rows(table, _days(table))
    empty = top_rows(table.slice(0, 0), np.zeros(0))
    assert combine_tops([empty, tops, empty]) is tops
    assert combine_tops([]).equals(schema(PORT_TOPS).empty_table())


# --- port_groups ----------------------------------------------------------------------


def _brute_groups(table: pa.Table, kept: int) -> dict[Group, tuple[int, Registers]]:
    """Per group: packets and the union of its sources' registers; then each port day's
    ASNs beyond ``kept`` (fewest sources, then packets, then highest ASN) in OTHER_ASN."""
    reg, rank = source_registers(
        table.column("ip_version").to_numpy(),
        table.column("src_ip4").to_numpy(),
        bytes16_values(table.column("src_ip6")),
    )
    packets: dict[Group, int] = defaultdict(int)
    sources: dict[Group, list[Registers]] = defaultdict(list)
    rows = zip(table.to_pylist(), _days(table).tolist(), reg.tolist(), rank.tolist(), strict=True)
    for r, day, g, k in rows:
        fp = r["fp"]
        dims = [(1, r["src_asn"]), *((2, b) for b in range(32) if fp >> b & 1)]
        for dim, key in dims + ([(3, 0)] if fp == 0 else []):
            packets[(day, r["proto"], r["dst_port"], dim, key)] += r["packets"]
            sources[(day, r["proto"], r["dst_port"], dim, key)].append({g: k})
    regs = {key: _union(s) for key, s in sources.items()}
    asns = [key for key in packets if key[3] == 1]
    if len(asns) > kept:
        by_day: dict[PortDay, list[Group]] = defaultdict(list)
        for key in asns:
            by_day[key[:3]].append(key)
        for pd, keys in by_day.items():
            keys.sort(key=lambda g: (-_estimate_of(regs[g], packets[g]), -packets[g], g[4]))
            other = (*pd, 1, OTHER_ASN)
            for key in keys[kept:]:
                packets[other] += packets.pop(key)
                regs[other] = _union([regs.get(other, {}), regs.pop(key)])
    asn_keys: dict[PortDay, list[Group]] = defaultdict(list)
    for key in packets:
        if key[3] == 1:
            asn_keys[key[:3]].append(key)
    for keys in asn_keys.values():  # a port day's only ASN row, unknown: stored empty
        if len(keys) == 1 and keys[0][4] == 0:
            regs[keys[0]] = {}
    return {key: (packets[key], regs[key]) for key in packets}


def _check_groups(got: pa.Table, expected: dict[Group, tuple[int, Registers]]) -> None:
    assert got.schema.equals(schema(PORT_GROUPS))
    rows = got.to_pylist()
    keys = [(r["day"], r["proto"], r["dst_port"], r["dim"], r["key"]) for r in rows]
    assert keys == sorted(expected)
    for key, r in zip(keys, rows, strict=True):
        packets, registers = expected[key]
        assert (r["packets"], _decode(r["registers"])) == (packets, registers), key
        assert r["registers"] == _encode(registers) and r["busy"] is False
    m = merge(np.arange(len(rows)), got.column("packets").to_numpy(), got.column("registers"))
    assert m.sources.tolist() == [_estimate_of(expected[k][1], expected[k][0]) for k in keys]


@settings(max_examples=40, deadline=None)
@given(table=tables, kept=st.sampled_from([2, PORT_ASNS_KEPT]))
def test_group_rows_equal_a_brute_force(table: pa.Table, kept: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(portlists, "PORT_ASNS_KEPT", kept)
        got = group_rows(table, _days(table))
    _check_groups(got, _brute_groups(table, kept))


@settings(max_examples=30, deadline=None)
@given(table=tables)
def test_group_rows_without_an_as_source_equal_a_brute_force(table: pa.Table) -> None:
    """Every ASN unknown (no AS source): each port day's ASN row has its packets and no
    registers, found without sketching its sources."""
    table = _with(table, "src_asn", np.zeros(table.num_rows, np.uint32))
    _check_groups(group_rows(table, _days(table)), _brute_groups(table, PORT_ASNS_KEPT))


def _asn_day() -> pa.Table:
    """One port day of four ASNs: 10 (5 sources), 20, 30 and 40 (3 sources each; 20 with
    fewer packets, 30 and 40 tied)."""
    asn = np.array([10] * 5 + [20] * 3 + [30] * 3 + [40] * 3, np.uint32)
    packets = np.array([1] * 5 + [2] * 3 + [5] * 3 + [5] * 3)
    table = _v4_table(BASE, 23, np.arange(100, 114, dtype=np.uint32), JP, packets)
    order = table.column("src_ip4").to_numpy() - 100  # to_table sorts the rows
    return _with(table, "src_asn", asn[order])


def test_group_rows_keep_the_asns_with_most_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _asn_day()
    monkeypatch.setattr(portlists, "PORT_ASNS_KEPT", 2)
    got = [r for r in group_rows(table, _days(table)).to_pylist() if r["dim"] == 1]
    assert [(r["key"], r["packets"]) for r in got] == [(10, 5), (30, 15), (OTHER_ASN, 21)]
    expected = _brute_groups(table, 2)
    other = expected[(_days(table)[0], 6, 23, 1, OTHER_ASN)][1]
    assert _estimate_of(other) == 6 and _decode(got[2]["registers"]) == other


@settings(max_examples=40, deadline=None)
@given(table=tables, pieces=st.integers(2, 3), seed=st.integers(0, 2**16))
def test_combine_groups_equal_the_groups_of_all_rows(
    table: pa.Table, pieces: int, seed: int
) -> None:
    parts = [group_rows(p, _days(p)) for p in _split(table, pieces, seed)]
    whole = group_rows(table, _days(table))
    assert combine_groups(parts).equals(whole)
    assert combine_groups([parts[0].slice(0, 0), whole]) is whole


def test_combine_groups_of_none() -> None:
    assert combine_groups([]).equals(schema(PORT_GROUPS).empty_table())
    empty = group_rows(_asn_day().slice(0, 0), np.zeros(0))
    assert combine_groups([empty, empty]).equals(schema(PORT_GROUPS).empty_table())


def test_combine_groups_rank_asns_by_their_merged_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parts of two ASNs each (none folded): the combined port day keeps the two ASNs
    with most sources over both parts, each whole, as ``group_rows`` of all rows."""
    monkeypatch.setattr(portlists, "PORT_ASNS_KEPT", 2)
    table = _asn_day()
    asn = table.column("src_asn").to_numpy()
    a = table.filter(pa.array(np.isin(asn, [10, 20])))  # 10: 5 sources, 20: 3
    extra = _with(
        _v4_table(BASE, 23, np.arange(200, 203, dtype=np.uint32), JP, 1), "src_asn", [20] * 3
    )
    b = pa.concat_tables([table.filter(pa.array(asn == 30)), extra])  # 30: 3, 20: 3 more
    whole = pa.concat_tables([a, b])  # 20: 6 sources, 10: 5, 30: 3
    got = combine_groups([group_rows(a, _days(a)), group_rows(b, _days(b))])
    _check_groups(got, _brute_groups(whole, 2))


# --- through DaySketch ----------------------------------------------------------------


def test_day_sketch_writes_the_lists_busy_first() -> None:
    rng = np.random.default_rng(3)
    pool = _sources(400, 3)
    busy_parts = [
        _v4_table(BASE + rng.integers(0, 20, 150), 23, pool[:150], JP, rng.integers(1, 9, 150)),
        _v4_table(BASE + 30, 53, pool[150:250], US, rng.integers(1, 9, 100), proto=17),
        _v4_table(BASE + 5, 80, pool[250:260], CN, 3),
    ]
    hours = pa.concat_tables([*busy_parts, _hours(3, 400, 4, 2, 20)])
    hours = _with(hours, "src_asn", rng.choice(ASNS, hours.num_rows))
    hours = _with(hours, "fp", rng.integers(0, 4, hours.num_rows))
    sketch = DaySketch(SketchCut("Asia/Tokyo", JP))
    parts = _split(hours, 2, 3)
    for part in parts:
        sketch.add(part)
    tables = sketch.tables()
    segments = tables["port_segments"].to_pylist()
    busy = {(r["proto"], r["dst_port"], r["day"]) for r in segments if r["busy"]}
    assert len(busy) >= 2
    for name, declared in (("port_groups", PORT_GROUPS), ("port_tops", PORT_TOPS)):
        table = tables[name]
        assert table.schema.equals(schema(declared))
        rows = table.to_pylist()
        flags = [r["busy"] for r in rows]
        assert flags == [(r["proto"], r["dst_port"], r["day"]) in busy for r in rows]
        n = sum(flags)
        assert flags == [True] * n + [False] * (len(rows) - n)
        for part in (rows[:n], rows[n:]):
            if name == "port_groups":
                order = [(r["proto"], r["dst_port"], r["day"], r["dim"], r["key"]) for r in part]
                assert order == sorted(order) and len(set(order)) == len(order)
            else:
                order = [(r["proto"], r["dst_port"], r["day"], -r["packets"]) for r in part]
                assert order == sorted(order)  # most packets first in each port day
    days = [local_days(p.column("hour").to_numpy(), "Asia/Tokyo") for p in parts]
    lists = {
        "port_groups": combine_groups([group_rows(p, d) for p, d in zip(parts, days, strict=True)]),
        "port_tops": combine_tops([top_rows(p, d) for p, d in zip(parts, days, strict=True)]),
    }
    for name, want in lists.items():  # the same rows, marked and reordered
        got = _with(tables[name], "busy", [False] * tables[name].num_rows)
        assert sorted(got.to_pylist(), key=str) == sorted(want.to_pylist(), key=str)


def test_a_sole_unknown_asn_is_stored_empty_and_expanded() -> None:
    """A port day whose only ASN is unknown keeps its ASN row without registers (its
    sources are the port day's); ``expand`` puts them back from the fingerprint rows,
    per list when the rows come from several files."""
    table = _with(_asn_day(), "src_asn", np.zeros(14, np.uint32))
    fp = np.zeros(14, np.uint32)
    fp[:5] = 1 << 3  # five sources carry a fingerprint, nine none
    table = _with(table, "fp", fp)
    rows = group_rows(table, _days(table))
    asn = [r for r in rows.to_pylist() if r["dim"] == 1]
    assert [(r["key"], r["packets"], r["registers"]) for r in asn] == [(0, 41, b"")]
    no_fp = _brute_groups(_with(table, "fp", fp * 0), 64)  # every source: no fingerprint
    everyone = next(regs for key, (_, regs) in no_fp.items() if key[3] == 3)
    full = [r for r in portlists.expand(rows).to_pylist() if r["dim"] == 1]
    assert _decode(full[0]["registers"]) == everyone and _estimate_of(everyone) == 14
    # two files' rows of the same port day: each ASN row from its own file's sources
    other = _with(table, "src_ip4", table.column("src_ip4").to_numpy() + 1000)
    both = pa.concat_tables([rows, group_rows(other.slice(0, 3), _days(other.slice(0, 3)))])
    lists = np.array([0] * rows.num_rows + [1] * (both.num_rows - rows.num_rows))
    filled = [r for r in portlists.expand(both, lists).to_pylist() if r["dim"] == 1]
    assert [_estimate_of(_decode(r["registers"])) for r in filled] == [14, 3]
    assert portlists.expand(portlists.expand(rows)).equals(portlists.expand(rows))
