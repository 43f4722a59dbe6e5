"""The day sketches (``teiten.store.sketch``): local days, ``port_sketches`` and
``port_segments`` rows (their sparse and dense register bytes), busy-first tables and
their byte-cut row groups, one sketch per day file, and the lake's sketch properties.
The registers themselves (hashing, merging, the estimator) are tested in
``test_store_registers.py``."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
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
    _v4,
    _v4_table,
)

from teiten.decode.batch import empty_columns
from teiten.enrich.country import country_code
from teiten.errors import StoreError
from teiten.schema import PORT_HOURS
from teiten.schema.daytables import (
    PORT_SEGMENTS,
    PORT_SKETCHES,
    ROLLUP_ROW_GROUP_BYTES,
    SKETCH_BUSY_SOURCES,
    SKETCH_DENSE_BYTES,
)
from teiten.store import sketch as sketch_module
from teiten.store.arrow import write_file
from teiten.store.catalog import Catalog
from teiten.store.lake import NS_PER_DAY, Lake
from teiten.store.registers import encode, source_registers
from teiten.store.rollup import schema, to_table
from teiten.store.sketch import (
    SEGMENTS,
    DaySketch,
    SketchCut,
    combine,
    day_rows,
    local_days,
    segment_codes,
    segment_rows,
    sketch_tables,
)
from teiten.store.writers import PacketWriter

EPOCH = dt.date(1970, 1, 1)
ZONES = ["UTC", "Asia/Tokyo", "America/New_York"]


# --- local_days ------------------------------------------------------------------


def _zone_day(hour: int, zone: str) -> int:
    """The local day of a UTC hour number, computed by zoneinfo alone."""
    local = dt.datetime.fromtimestamp(hour * 3600, dt.UTC).astimezone(ZoneInfo(zone))
    return (local.date() - EPOCH).days


def test_local_days_utc_and_tokyo() -> None:
    day = (dt.date(2017, 11, 1) - EPOCH).days
    hours = np.array([_hour(2017, 11, 1, h) for h in range(24)], np.int32)
    assert local_days(hours, "UTC").tolist() == [day] * 24
    tokyo = local_days(hours, "Asia/Tokyo")
    assert tokyo.dtype == np.int32
    # +9: UTC 00..14 are local day d, UTC 15..23 are local day d + 1
    assert tokyo.tolist() == [day] * 15 + [day + 1] * 9
    assert tokyo.tolist() == [_zone_day(int(h), "Asia/Tokyo") for h in hours]
    assert local_days(np.zeros(0, np.int32), "Asia/Tokyo").tolist() == []


@pytest.mark.parametrize("change", [dt.date(2017, 3, 12), dt.date(2017, 11, 5)])
def test_local_days_new_york_across_dst(change: dt.date) -> None:
    start = _hour(change.year, change.month, change.day, 0) - 24
    hours = np.arange(start, start + 72, dtype=np.int32)[::-1]  # unsorted, repeated below
    hours = np.concatenate([hours, hours[::3]])
    got = local_days(hours, "America/New_York")
    expected = [_zone_day(int(h), "America/New_York") for h in hours]
    assert got.tolist() == expected
    # the day starts at 05:00 UTC in winter and at 04:00 UTC in summer
    first, second = (5, 4) if change.month == 3 else (4, 5)  # UTC hour of local midnight
    day = (change - EPOCH).days
    before = _hour(change.year, change.month, change.day, 0)
    after = before + 24
    ny = "America/New_York"
    assert local_days(np.array([before + first - 1, before + first]), ny).tolist() == [
        day - 1,
        day,
    ]
    assert local_days(np.array([after + second - 1, after + second]), ny).tolist() == [
        day,
        day + 1,
    ]


# --- port_hours tables -------------------------------------------------------------

HourRow = tuple[int, int, int, int, int, str | None, int, int]
"""hour, proto, port, ip version, src4, src6, country, packets."""


def _table(rows: list[HourRow]) -> pa.Table:
    """A ``port_hours`` table of rows (which may repeat a key: a table of two inputs)."""
    cols: dict[str, npt.NDArray[Any]] = {
        "hour": np.array([r[0] for r in rows], np.int32),
        "proto": np.array([r[1] for r in rows], np.uint8),
        "dst_port": np.array([r[2] for r in rows], np.uint16),
        "ip_version": np.array([r[3] for r in rows], np.uint8),
        "src_ip4": np.array([r[4] for r in rows], np.uint32),
        "src_ip6": np.array(
            [list(ipaddress.IPv6Address(r[5] or "::").packed) for r in rows], np.uint8
        ).reshape(-1, 16),
        "src_cc": np.array([r[6] for r in rows], np.uint16),
        "src_asn": np.zeros(len(rows), np.uint32),
        "fp": np.zeros(len(rows), np.uint32),
        "packets": np.array([r[7] for r in rows], np.int64),
    }
    return to_table(cols, PORT_HOURS)


def _port_hours() -> pa.Table:
    """A hand-made ``port_hours`` table: two UTC days, Tokyo day edges, IPv6 rows."""
    h0 = _hour(2017, 11, 1, 0)
    rows: list[HourRow] = [
        (h0 + 1, 6, 23, 4, 0x01020304, None, JP, 3),
        (h0 + 1, 6, 23, 4, 0x01020305, None, JP, 1),
        (h0 + 2, 6, 23, 4, 0x01020304, None, JP, 2),
        (h0 + 14, 6, 23, 4, 0x01020304, None, JP, 5),
        (h0 + 15, 6, 23, 4, 0x01020304, None, JP, 7),  # Tokyo: the next day
        (h0 + 15, 17, 23, 4, 0x01020304, None, JP, 1),  # UDP: another group
        (h0 + 16, 6, 2323, 4, 0x0A000001, None, US, 4),
        (h0 + 16, 6, 2323, 4, 0x0A000002, None, 0, 6),
        (h0 + 20, 6, 2323, 6, 0, "2001:db8::10", US, 9),
        (h0 + 21, 6, 2323, 6, 0, "2001:db8::10", US, 1),
        (h0 + 23, 6, 2323, 6, 0, "2001:db8::11", US, 2),
        (h0 + 5, 17, 53, 4, 0xC6336417, None, CN, 11),
    ]
    rng = np.random.default_rng(1)
    for i in range(300):  # enough sources that some share a register
        rows.append((h0 + int(rng.integers(0, 24)), 6, 445, 4, 0x0B000000 + i, None, CN, i + 1))
    return _table(rows)


SketchKey = tuple[int, int, int, int]


def _brute_days(table: pa.Table, zone: str) -> dict[SketchKey, tuple[int, Registers]]:
    """Per (local day, proto, port, country): the packets and the max rank per register,
    by Python dictionaries over the rows."""
    rows = table.to_pylist()
    version = np.array([r["ip_version"] for r in rows], np.uint8)
    src4 = np.array([r["src_ip4"] for r in rows], np.uint32)
    src6 = np.array([list(r["src_ip6"] or bytes(16)) for r in rows], np.uint8).reshape(-1, 16)
    reg, rank = source_registers(version, src4, src6)
    packets: dict[SketchKey, int] = defaultdict(int)
    registers: dict[SketchKey, Registers] = defaultdict(dict)
    for r, g, k in zip(rows, reg.tolist(), rank.tolist(), strict=True):
        key = (_zone_day(r["hour"], zone), r["proto"], r["dst_port"], r["src_cc"])
        packets[key] += r["packets"]
        registers[key][g] = max(registers[key].get(g, 0), k)
    return {key: (packets[key], registers[key]) for key in packets}


def _check_day_rows(hours: pa.Table, zone: str) -> pa.Table:
    days = day_rows(hours, zone)
    assert days.schema.equals(schema(PORT_SKETCHES))
    expected = _brute_days(hours, zone)
    keys = [(r["day"], r["proto"], r["dst_port"], r["src_cc"]) for r in days.to_pylist()]
    assert keys == sorted(expected)  # one row per group, sorted by day, proto, port, country
    for row in days.to_pylist():
        packets, registers = expected[(row["day"], row["proto"], row["dst_port"], row["src_cc"])]
        assert row["packets"] == packets
        assert _decode(row["registers"]) == registers
        assert row["registers"] == _encode(registers)  # sparse or dense, whichever is shorter
        assert row["busy"] is False
    return days


@pytest.mark.parametrize("zone", ZONES)
def test_day_rows_equal_a_brute_force_grouping(zone: str) -> None:
    hours = _port_hours()
    assert hours.column("src_ip6").null_count == hours.num_rows - 3
    days = _check_day_rows(hours, zone)
    assert pa.compute.sum(days.column("packets")).as_py() == sum(range(1, 301)) + 52
    assert days.num_rows < 12  # 300 sources of port 445 in one or two rows
    if zone == "Asia/Tokyo":  # port 23 from 1.2.3.4 on two Tokyo days
        tcp23 = [r for r in days.to_pylist() if r["proto"] == 6 and r["dst_port"] == 23]
        assert sorted({r["day"] for r in tcp23}) == [17471, 17472]
        assert [len(_decode(r["registers"])) for r in tcp23] == [2, 1]
    if zone == "UTC":
        assert set(days.column("day").to_pylist()) == {17471}


_HOUR0 = _hour(2017, 3, 11, 0)  # New York's clocks change the next day

hour_rows = st.lists(
    st.tuples(
        st.integers(_HOUR0, _HOUR0 + 71),
        st.sampled_from([6, 17]),
        st.sampled_from([0, 23, 2323, 65535]),
        st.sampled_from([4, 4, 6]),
        st.integers(0, 40),  # few sources: repeated in other hours, ports and countries
        st.sampled_from([0, JP, US, 65535]),
        st.integers(1, 10**9),
    ),
    min_size=1,
    max_size=120,
)


def _rows_of(drawn: list[tuple[int, int, int, int, int, int, int]]) -> list[HourRow]:
    out: list[HourRow] = []
    for hour, proto, port, version, source, cc, packets in drawn:
        src6 = f"2001:db8::{source:x}" if version == 6 else None
        src4 = 0 if version == 6 else 0x0A000000 + source * 7919
        out.append((hour, proto, port, version, src4, src6, cc, packets))
    return out


@settings(max_examples=150, deadline=None)
@given(drawn=hour_rows, zone=st.sampled_from(ZONES))
def test_day_rows_property(
    drawn: list[tuple[int, int, int, int, int, int, int]], zone: str
) -> None:
    _check_day_rows(_table(_rows_of(drawn)), zone)


def test_day_rows_types_and_empty() -> None:
    days = day_rows(_port_hours(), "UTC")
    types = {f.name: str(f.type) for f in days.schema}
    assert types == {
        "busy": "bool",
        "day": "int32",
        "proto": "uint8",
        "dst_port": "uint16",
        "src_cc": "uint16",
        "packets": "int64",
        "registers": "binary",
    }
    empty = day_rows(to_table(None, PORT_HOURS), "Asia/Tokyo")
    assert empty.num_rows == 0
    assert empty.schema.equals(days.schema)


def _distinct_register_sources(k: int, seed: int = 4) -> npt.NDArray[np.uint32]:
    """``k`` IPv4 sources of ``k`` different registers."""
    rng = np.random.default_rng(seed)
    pool = np.unique(rng.integers(0, 2**32, 40_000, dtype=np.uint64).astype(np.uint32))
    reg, _ = source_registers(*_v4(pool.tolist()))
    _, first = np.unique(reg, return_index=True)
    assert len(first) >= k
    return pool[np.sort(first[:k])]


def test_day_rows_sparse_up_to_1365_registers_dense_from_1366() -> None:
    assert SKETCH_DENSE_BYTES == 4096 and 3 * 1365 < 4096 <= 3 * 1366
    sources = _distinct_register_sources(1366 + 1365 + 3)
    h = _hour(2017, 11, 1, 3)
    parts = [
        _v4_table(h, 1365, sources[:1365], JP),  # 1,365 registers set: 4,095 bytes sparse
        _v4_table(h + 1, 1365, sources[:1365], JP, 2),  # the same sources again
        _v4_table(h, 1366, sources[1365 : 1365 + 1366], JP),  # 1,366: dense
        _v4_table(h, 3, sources[-3:], JP),  # 3: sparse, 9 bytes
    ]
    # more sources than registers, still 1,365 registers: sparse
    pool = np.unique(np.random.default_rng(8).integers(0, 2**32, 20_000).astype(np.uint32))
    reg, _ = source_registers(*_v4(pool.tolist()))
    chosen = np.unique(reg)[:1365]
    shared = pool[np.isin(reg, chosen)]
    assert len(shared) > 2 * 1365
    parts.append(_v4_table(h, 7, shared, US))
    hours = pa.concat_tables(parts)
    days = _check_day_rows(hours, "UTC")
    sizes = {r["dst_port"]: len(r["registers"]) for r in days.to_pylist()}
    assert sizes == {3: 9, 7: 4095, 1365: 4095, 1366: 4096}
    # encode() itself at the boundary
    for count, size in ((1365, 4095), (1366, 4096), (4096, 4096), (1, 3)):
        regs = np.arange(count, dtype=np.uint16)
        got = encode(np.array([0]), regs, np.full(count, 2, np.uint8))
        assert len(got[0].as_py()) == size
        assert _decode(got[0].as_py()) == dict.fromkeys(range(count), 2)


# --- port_segments --------------------------------------------------------------


def test_segment_codes() -> None:
    assert SEGMENTS == {1: "domestic", 2: "foreign", 3: "unknown"}
    cc = np.array([JP, US, 0, CN, JP, 65535], np.uint16)
    assert segment_codes(cc, JP).tolist() == [1, 2, 3, 2, 1, 2]
    assert segment_codes(cc, US).tolist() == [2, 1, 3, 2, 2, 2]
    assert segment_codes(np.zeros(0, np.uint16), JP).tolist() == []


def _brute_segments(days: pa.Table, home: int) -> list[tuple[Any, ...]]:
    """(proto, port, day, seg, packets, sources) and the merged bytes, by dictionaries."""
    packets: dict[tuple[int, int, int, int], int] = defaultdict(int)
    parts: dict[tuple[int, int, int, int], list[Registers]] = defaultdict(list)
    for r in days.to_pylist():
        seg = 1 if r["src_cc"] == home else 3 if r["src_cc"] == 0 else 2
        key = (r["proto"], r["dst_port"], r["day"], seg)
        packets[key] += r["packets"]
        parts[key].append(_decode(r["registers"]))
    out: list[tuple[Any, ...]] = []
    for key in sorted(packets):
        union = _union(parts[key])
        out.append((*key, packets[key], _estimate_of(union, packets[key]), _encode(union)))
    return out


def _segment_tuples(segments: pa.Table) -> list[tuple[Any, ...]]:
    names = ("proto", "dst_port", "day", "seg", "packets", "sources", "registers")
    return [tuple(r[n] for n in names) for r in segments.to_pylist()]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
@pytest.mark.parametrize("home", [JP, US, CN])
def test_segment_rows_equal_a_brute_force_merge(zone: str, home: int) -> None:
    days = day_rows(_port_hours(), zone)
    segments = segment_rows(days, home)
    assert segments.schema.equals(schema(PORT_SEGMENTS))
    assert _segment_tuples(segments) == _brute_segments(days, home)
    assert not any(segments.column("busy").to_pylist())
    seg445 = 1 if home == CN else 2
    rows445 = [r for r in _segment_tuples(segments) if r[1] == 445]
    assert {r[3] for r in rows445} == {seg445}
    assert sum(r[5] for r in rows445) in range(290, 311)  # 300 sources, each in one hour
    empty = segment_rows(days.slice(0, 0), home)
    assert empty.num_rows == 0 and empty.schema.equals(segments.schema)


@settings(max_examples=100, deadline=None)
@given(drawn=hour_rows, zone=st.sampled_from(ZONES), home=st.sampled_from([JP, US, 0]))
def test_segment_rows_property(
    drawn: list[tuple[int, int, int, int, int, int, int]], zone: str, home: int
) -> None:
    hours = _table(_rows_of(drawn))
    # two files' sketches of the same hours: merged, they count each source once
    days = pa.concat_tables(
        [day_rows(hours, zone), day_rows(hours.slice(0, len(drawn) // 2), zone)]
    )
    assert _segment_tuples(segment_rows(days, home)) == _brute_segments(days, home)


# --- sketch_tables: busy port days first --------------------------------------------


def _busy_hours() -> tuple[pa.Table, set[tuple[int, int, int]]]:
    """Port days with many and few sources over two Tokyo days; the busy ones."""
    rng = np.random.default_rng(21)
    pool = _sources(2_000, 21)
    day_a, day_b = _hour(2017, 11, 1, 0), _hour(2017, 11, 2, 0)  # UTC 00:00: Tokyo 09:00
    parts = [
        _v4_table(day_a + rng.integers(0, 10, 150), 23, pool[:150], rng.choice([JP, US], 150)),
        _v4_table(day_b + 1, 23, pool[:20], JP),  # port 23 on day B: quiet
        _v4_table(day_a + 2, 80, pool[200:210], US),  # quiet
        _v4_table(day_b + 3, 53, pool[300:400], CN, proto=17),  # UDP 53: busy
        _v4_table(day_b + 4, 445, pool[500:530], JP, 5),  # 30 + 30 + 10 sources:
        _v4_table(day_b + 5, 445, pool[530:560], US, 5),  # no segment busy,
        _v4_table(day_b + 6, 445, pool[560:570], 0, 5),  # the port is
        _v4_table(day_b + 7, 8080, pool[600 : 600 + SKETCH_BUSY_SOURCES - 6], 0),  # quiet
    ]
    a = (dt.date(2017, 11, 1) - EPOCH).days
    busy = {(6, 23, a), (17, 53, a + 1), (6, 445, a + 1)}
    return pa.concat_tables(parts), busy


def _port_day_keys(table: pa.Table) -> list[tuple[int, int, int]]:
    return [(r["proto"], r["dst_port"], r["day"]) for r in table.to_pylist()]


def _without_busy(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted(tuple(v for k, v in r.items() if k != "busy") for r in table.to_pylist())


def test_sketch_tables_busy_first_in_both_tables() -> None:
    hours, busy = _busy_hours()
    cut = SketchCut("Asia/Tokyo", JP)
    tables = sketch_tables(hours, cut)
    assert sorted(tables) == [
        "port_groups", "port_hour_segments", "port_segments", "port_sketches", "port_tops"
    ]  # fmt: skip
    hourly = set(_port_day_keys(tables["port_hour_segments"]))
    # every day of the ports of the SKETCH_BUSY_PORTS busiest port days: here all of them
    assert hourly == set(_port_day_keys(tables["port_sketches"])) > busy
    sketches, segments = tables["port_sketches"], tables["port_segments"]
    for table, declared in ((sketches, PORT_SKETCHES), (segments, PORT_SEGMENTS)):
        types = [(f.name, f.type) for f in table.schema]
        assert types == [(f.name, f.type) for f in schema(declared)]
    # the same rows as day_rows and segment_rows, in another order
    days = day_rows(hours, cut.zone)
    assert _without_busy(sketches) == _without_busy(days)
    assert _without_busy(segments) == _without_busy(segment_rows(days, cut.home))
    # busy: the port days whose segments' sources reach SKETCH_BUSY_SOURCES
    sums: dict[tuple[int, int, int], int] = defaultdict(int)
    for key, r in zip(_port_day_keys(segments), segments.to_pylist(), strict=True):
        sums[key] += r["sources"]
    assert {k for k, s in sums.items() if s >= SKETCH_BUSY_SOURCES} == busy
    assert set(sums) - busy == {(6, 23, 17472), (6, 80, 17471), (6, 8080, 17472)}
    for table, cc_or_seg in ((sketches, "src_cc"), (segments, "seg")):
        flags = table.column("busy").to_pylist()
        keys = _port_day_keys(table)
        assert flags == [k in busy for k in keys]
        n = sum(flags)
        assert flags == [True] * n + [False] * (len(flags) - n)  # busy rows first
        for part in (slice(0, n), slice(n, None)):
            rows = table.to_pylist()[part]
            order = [(r["proto"], r["dst_port"], r["day"], r[cc_or_seg]) for r in rows]
            assert order == sorted(order)  # each part by protocol, port, day, country
    for name in ("port_groups", "port_tops"):  # the port lists: the same busy port days
        flags = tables[name].column("busy").to_pylist()
        assert flags == [k in busy for k in _port_day_keys(tables[name])]
        n = sum(flags)
        assert n and flags == [True] * n + [False] * (len(flags) - n)


def test_only_the_busiest_port_days_are_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most SKETCH_BUSY_PORTS port days of a file are busy: those with most sources."""
    hours, busy = _busy_hours()
    segments = segment_rows(day_rows(hours, "Asia/Tokyo"), JP)
    sums: dict[tuple[int, int, int], int] = defaultdict(int)
    for key, r in zip(_port_day_keys(segments), segments.to_pylist(), strict=True):
        sums[key] += r["sources"]
    ranked = sorted(busy, key=lambda k: -sums[k])
    assert len(ranked) >= 3 and sums[ranked[0]] > sums[ranked[1]] > sums[ranked[2]]
    monkeypatch.setattr(sketch_module, "SKETCH_BUSY_PORTS", 2)
    tables = sketch_tables(hours, SketchCut("Asia/Tokyo", JP))
    hourly = tables.pop("port_hour_segments")  # every day of those two port days' ports
    assert {k[:2] for k in _port_day_keys(hourly)} == {k[:2] for k in ranked[:2]}
    for table in tables.values():
        flagged = {
            k
            for k, b in zip(_port_day_keys(table), table.column("busy").to_pylist(), strict=True)
            if b
        }
        assert flagged == set(ranked[:2])


def test_sketch_tables_of_no_rows() -> None:
    hours, _ = _busy_hours()
    empty = sketch_tables(hours.slice(0, 0), SketchCut("UTC", JP))
    assert empty["port_sketches"].num_rows == empty["port_segments"].num_rows == 0
    assert empty["port_sketches"].schema.equals(schema(PORT_SKETCHES))
    assert empty["port_segments"].schema.equals(schema(PORT_SEGMENTS))


def test_sketch_tables_keep_the_declared_schema() -> None:
    hours, _ = _busy_hours()
    tables = sketch_tables(hours, SketchCut("UTC", JP))
    assert tables["port_sketches"].schema.equals(schema(PORT_SKETCHES))
    assert tables["port_segments"].schema.equals(schema(PORT_SEGMENTS))


def test_sketch_tables_home_moves_rows_between_segments() -> None:
    hours, _ = _busy_hours()
    jp = sketch_tables(hours, SketchCut("UTC", JP))["port_segments"]
    us = sketch_tables(hours, SketchCut("UTC", US))["port_segments"]

    def by_segment(table: pa.Table) -> dict[tuple[int, int, int], tuple[int, int, bytes]]:
        return {
            (r["dst_port"], r["day"], r["seg"]): (r["packets"], r["sources"], r["registers"])
            for r in table.to_pylist()
        }

    seg_jp, seg_us = by_segment(jp), by_segment(us)
    a = (dt.date(2017, 11, 1) - EPOCH).days
    # only JP and US sources on ports 23 and 445: domestic and foreign swap
    for port, day in ((23, a), (23, a + 1), (445, a + 1)):
        for s in (1, 2):
            assert seg_jp.get((port, day, s)) == seg_us.get((port, day, 3 - s))
        assert seg_jp.get((port, day, 3)) == seg_us.get((port, day, 3))
    assert seg_jp[(445, a + 1, 1)][:2] == (150, 30)  # 30 JP sources, 5 packets each
    assert seg_jp[(445, a + 1, 3)][:2] == seg_us[(445, a + 1, 3)][:2] == (50, 10)
    assert 0 < seg_jp[(23, a, 1)][1] < 150 and (23, a + 1, 2) not in seg_jp
    # CN sources are foreign to both
    assert seg_jp[(53, a + 1, 2)] == seg_us[(53, a + 1, 2)]
    assert jp.column("busy").to_pylist() == us.column("busy").to_pylist()


# --- one sketch per input's day file: its rollup parts combined --------------------


def test_day_sketch_of_parts_equals_the_sketch_of_their_rows() -> None:
    """Parts that share sources, ports and countries (a rollup spilled mid-day) give the
    same tables as one part of all their rows: packets summed, registers merged."""
    hours, _ = _busy_hours()
    rng = np.random.default_rng(5)
    cut = SketchCut("Asia/Tokyo", JP)
    whole = sketch_tables(hours, cut)
    for pieces in (2, 3, 7):
        sketch = DaySketch(cut)
        order = rng.permutation(hours.num_rows)
        for chunk in np.array_split(order, pieces):
            sketch.add(hours.take(pa.array(chunk)))
        got = sketch.tables()
        for table in ("port_sketches", "port_segments"):
            assert got[table].equals(whole[table]), (table, pieces)


def test_combine_merges_rows_of_the_same_day_port_and_country() -> None:
    hours, _ = _busy_hours()
    half = hours.num_rows // 2
    a, b = day_rows(hours.slice(0, half), "UTC"), day_rows(hours.slice(half), "UTC")
    assert combine([a]) is a
    assert combine([]).num_rows == 0
    both = combine([a, day_rows(hours.slice(0, 0), "UTC"), b])
    assert both.equals(day_rows(hours, "UTC"))
    assert both.num_rows < a.num_rows + b.num_rows  # some groups were in both halves


def test_packet_writer_writes_one_sketch_per_day_file(tmp_path: Path) -> None:
    """A day whose hourly rollup spills into parts still gets one sketch file, equal to
    the sketch of all its rollup rows."""
    with Lake(tmp_path / "store", create=True) as lake:
        lake.lock()
        with lake.begin("spill.pcap", 1, "hash-spill", "s1") as tx:
            assert tx.input_id is not None
            cut = SketchCut("UTC", JP)
            writer = PacketWriter(lake, tx.input_id, "s1", row_group_rows=64, cut=cut)
            writer.rollup.max_rows = 100  # spill the day's rollup every few batches
            day0 = 17440 * NS_PER_DAY
            for i in range(6):
                c = _packets(day0 + np.arange(80, dtype=np.int64) * 10**9 + i * 3600 * 10**9)
                c["dst_port"][:] = np.arange(80) % 7 + 20
                writer.write(c)
            writer.close()
            tx.commit(records=480, packets=480, malformed={}, skipped={}, enrichment="t")
        hours = lake.catalog.files("port_hours")
        sketches = lake.catalog.files("port_sketches")
        assert len(hours) > 1 and len(sketches) == 1 == len(lake.catalog.files("port_segments"))
        rollup = pa.concat_tables([pq.read_table(lake.root / h) for h in hours])
        expected = sketch_tables(rollup.select([c.name for c in PORT_HOURS]), cut)
        stored = pq.read_table(lake.root / sketches[0])
        assert stored.equals(expected["port_sketches"])


def _staged_by_writer(root: Path, threads: int) -> list[tuple[str, pa.Table]]:
    """The files one writer stages for a spilling two-day input, in staging order."""
    with Lake(root, create=True) as lake:
        lake.lock()
        with lake.begin("two-days.pcap", 1, "hash-two", "s1") as tx:
            assert tx.input_id is not None
            cut = SketchCut("UTC", JP)
            writer = PacketWriter(lake, tx.input_id, "s1", row_group_rows=64, cut=cut,
                                  threads=threads)  # fmt: skip
            writer.rollup.max_rows = writer.sources.max_rows = 150  # spill now and then
            day0 = 17440 * NS_PER_DAY
            for i in range(8):  # the last batches cross into the next day
                ts = day0 + (np.arange(90, dtype=np.int64) * 10**9 + i * 4 * 3600 * 10**9)
                c = _packets(ts)
                c["dst_port"][:] = np.arange(90) % 11 + 20
                writer.write(c)
            writer.close()
            return [(f.path, pq.read_table(tx.stage / f.path)) for f in tx.staged]


def test_a_writer_with_threads_stages_the_same_files_in_the_same_order(tmp_path: Path) -> None:
    one = _staged_by_writer(tmp_path / "one", 1)
    two = _staged_by_writer(tmp_path / "two", 2)
    assert [path for path, _ in one] == [path for path, _ in two]
    tables = [path.split("/")[0] for path, _ in one]
    assert tables.count("port_hours") > 2 and tables.count("source_ports") > 2  # spilled
    assert tables.count("packets") == 2 == tables.count("port_sketches")  # two days
    for (path, a), (_, b) in zip(one, two, strict=True):
        assert a.equals(b), path


# --- write_file: row groups cut by registers bytes ----------------------------------


def _sketch_file_table(table: str, busy_rows: int, quiet_rows: int, seed: int) -> pa.Table:
    """Rows of a sketch table with registers of random sizes (busy ones larger)."""
    rng = np.random.default_rng(seed)
    n = busy_rows + quiet_rows
    big = np.where(rng.random(busy_rows) < 0.5, 4096, 3 * rng.integers(100, 1366, busy_rows))
    sizes = np.concatenate([big, 3 * rng.integers(1, 200, quiet_rows)])
    blobs = [rng.integers(0, 256, int(s), dtype=np.uint8).tobytes() for s in sizes]
    values: dict[str, Any] = {
        "busy": np.arange(n) < busy_rows,
        "day": np.full(n, 17471, np.int32),
        "proto": np.full(n, 6, np.uint8),
        "dst_port": np.arange(n) % 65536,
        "src_cc": rng.integers(0, 900, n),
        "seg": rng.integers(1, 4, n),
        "packets": rng.integers(1, 10**6, n),
        "sources": rng.integers(1, 10**4, n),
        "registers": blobs,
    }
    target = schema(PORT_SKETCHES if table == "port_sketches" else PORT_SEGMENTS)
    return pa.Table.from_arrays([pa.array(values[f.name], f.type) for f in target], schema=target)


@pytest.mark.parametrize("table", ["port_sketches", "port_segments"])
@pytest.mark.parametrize(("busy_rows", "quiet_rows"), [(120, 4000), (0, 3000), (90, 0), (1, 1)])
def test_write_file_cuts_row_groups_by_registers_bytes(
    tmp_path: Path, table: str, busy_rows: int, quiet_rows: int
) -> None:
    data = _sketch_file_table(table, busy_rows, quiet_rows, busy_rows + quiet_rows)
    path = tmp_path / "part.parquet"
    write_file(table, data, path)
    back = pq.read_table(path)
    assert back.schema.remove_metadata().equals(data.schema)
    assert back.num_rows == data.num_rows
    for name in data.schema.names:
        assert back.column(name).equals(data.column(name)), name
    meta = pq.ParquetFile(path).metadata
    groups = [pq.ParquetFile(path).read_row_group(g) for g in range(meta.num_row_groups)]
    assert sum(g.num_rows for g in groups) == data.num_rows
    flags = [set(g.column("busy").to_pylist()) for g in groups]
    assert all(len(f) == 1 for f in flags)  # a group holds busy rows or quiet rows
    kinds = [f.pop() for f in flags]
    assert kinds == sorted(kinds, reverse=True)  # busy groups first
    for busy, target in zip((True, False), ROLLUP_ROW_GROUP_BYTES[table], strict=True):
        part = [g for g, k in zip(groups, kinds, strict=True) if k is busy]
        sizes = [[len(b) for b in g.column("registers").to_pylist()] for g in part]
        largest = max((max(s) for s in sizes), default=0)
        for i, s in enumerate(sizes):
            assert sum(s) <= target + largest, (busy, i, sum(s), target)
            if i < len(sizes) - 1:  # all but the last hold about the target
                assert sum(s) > target - largest, (busy, i, sum(s), target)
        total = sum(map(sum, sizes))
        pairs = zip(
            data.column("registers").to_pylist(), data.column("busy").to_pylist(), strict=True
        )
        assert total == sum(len(b) for b, k in pairs if k is busy)
        if total == 0:
            assert sizes == []
        if total > 2 * target:
            assert len(sizes) >= total // (target + largest)
        if total and total <= target:
            assert len(sizes) == 1
    if busy_rows >= 100 and quiet_rows >= 1000:  # several small busy groups, then the tail
        assert kinds.count(True) >= 3 and kinds.count(False) >= 1


def test_write_file_of_no_rows(tmp_path: Path) -> None:
    empty = schema(PORT_SEGMENTS).empty_table()
    write_file("port_segments", empty, tmp_path / "e.parquet")
    back = pq.read_table(tmp_path / "e.parquet")
    assert back.num_rows == 0 and back.schema.remove_metadata().equals(empty.schema)


# --- catalog properties, the day zone, the home country and the packet span --------


def test_catalog_properties(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    try:
        assert catalog.property("day_zone") is None
        catalog.set_property("day_zone", "Asia/Tokyo")
        assert catalog.property("day_zone") == "Asia/Tokyo"
        catalog.set_property("day_zone", "UTC")
        catalog.set_property("other", "x")
        assert catalog.property("day_zone") == "UTC" and catalog.property("other") == "x"
    finally:
        catalog.close()
    reopened = Catalog(tmp_path / "catalog.sqlite", writable=False)
    try:
        assert reopened.property("day_zone") == "UTC"
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("name", "other", "first", "second"),
    [("day_zone", "sketch_home", "Asia/Tokyo", "UTC"), ("sketch_home", "day_zone", "JP", "US")],
)
def test_lake_sketch_properties_are_set_once(
    tmp_path: Path, name: str, other: str, first: str, second: str
) -> None:
    with Lake(tmp_path / "store", create=True) as lake:
        get = getattr(lake, name)
        assert get() is None
        with pytest.raises(StoreError, match="lock"):
            get(second)
        assert lake.catalog.property(name) is None
        lake.lock()
        assert get(first) == first
        assert get(second) == first
        assert get() == first
        assert getattr(lake, other)() is None  # a property of its own
    with Lake(tmp_path / "store") as reader:
        assert getattr(reader, name)() == first
        assert getattr(reader, name)(second) == first  # set: no lock needed, nothing changes
        assert reader.catalog.property(name) == first


def _packets(ts: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]:
    c = empty_columns(len(ts))
    c["ts"] = ts.astype(np.int64)
    c["ip_version"][:] = 4
    c["src_ip4"] = np.arange(len(ts), dtype=np.uint32) + 0x01000000
    c["proto"][:] = 6
    c["dst_port"][:] = 23
    c["src_cc"][:] = country_code("JP")
    return c


def _ingest(lake: Lake, name: str, batches: list[npt.NDArray[np.int64]]) -> None:
    with lake.begin(name, 1, f"hash-{name}", "s1") as tx:
        assert tx.input_id is not None
        writer = PacketWriter(lake, tx.input_id, "s1", row_group_rows=16)
        for ts in batches:
            writer.write(_packets(ts))
        writer.close()
        n = sum(len(b) for b in batches)
        tx.commit(records=n, packets=n, malformed={}, skipped={}, enrichment="test")


def test_lake_packet_span_from_footers(tmp_path: Path) -> None:
    day0 = 17440  # 2017-10-01
    rng = np.random.default_rng(2)

    def times(day: int, n: int) -> npt.NDArray[np.int64]:  # unsorted, with ns digits
        return day * NS_PER_DAY + 3_600_000_000_000 + rng.integers(0, 20 * 3600 * 10**9, n)

    with Lake(tmp_path / "store", create=True) as lake:
        assert lake.packet_span() is None
        lake.lock()
        first, middle = times(day0 + 1, 50), times(day0 + 2, 50)
        _ingest(lake, "a.pcap", [first[:25], middle, first[25:]])
        last, earliest = times(day0 + 5, 40), times(day0, 30)
        _ingest(lake, "b.pcap", [last])
        span = lake.packet_span()
        assert span == (int(first.min()) // 1000 * 1000, int(last.max()) // 1000 * 1000)
        tail = times(day0 + 5, 10)
        _ingest(lake, "c.pcap", [earliest, tail])
        later = lake.packet_span()
    with Lake(tmp_path / "store") as reader:
        assert reader.packet_span() == later
    assert later is not None
    # the first day's file of another input; the last day in two inputs' files
    assert later[0] == int(earliest.min()) // 1000 * 1000
    assert later[0] % 1000 == 0 and later[0] <= int(earliest.min()) < later[0] + 1000
    assert later[1] == max(int(last.max()), int(tail.max())) // 1000 * 1000
