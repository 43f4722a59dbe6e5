"""The day sketches (``teiten.store.sketch``): registers, local days, ``port_days`` rows,
the estimator (Python and SQL twins) and the catalog's ``day_zone`` property."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from teiten.errors import StoreError
from teiten.schema import PORT_DAYS, PORT_HOURS, SKETCH_REGISTERS
from teiten.sql.expressions import register_sums, sketch_sources
from teiten.store.catalog import Catalog
from teiten.store.lake import Lake
from teiten.store.rollup import to_table
from teiten.store.sketch import (
    STANDARD_ERROR,
    day_rows,
    day_totals,
    estimate,
    local_days,
    source_registers,
)

EPOCH = dt.date(1970, 1, 1)


def _v4(addresses: list[int]) -> tuple[Any, Any, Any]:
    n = len(addresses)
    return (
        np.full(n, 4, np.uint8),
        np.asarray(addresses, np.uint32),
        np.zeros((n, 16), np.uint8),
    )


def _v6(addresses: list[str]) -> tuple[Any, Any, Any]:
    n = len(addresses)
    src6 = np.array([list(ipaddress.IPv6Address(a).packed) for a in addresses], np.uint8)
    return np.full(n, 6, np.uint8), np.zeros(n, np.uint32), src6


# --- source_registers ----------------------------------------------------------


def test_source_registers_deterministic_and_in_range() -> None:
    rng = np.random.default_rng(11)
    addrs = rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32)
    version, src4, src6 = _v4(addrs.tolist())
    reg, rank = source_registers(version, src4, src6)
    again_reg, again_rank = source_registers(version.copy(), src4.copy(), src6.copy())
    assert reg.dtype == np.uint16 and rank.dtype == np.uint8
    assert np.array_equal(reg, again_reg) and np.array_equal(rank, again_rank)
    assert int(reg.max()) < 4096 and int(rank.min()) >= 1 and int(rank.max()) <= 53
    # a hash: 20,000 sources reach almost every one of the 4,096 registers
    assert len(np.unique(reg)) > 4000
    # ranks are geometric: about half the sources have rank 1
    assert 0.45 < float(np.mean(rank == 1)) < 0.55
    # the same address alone gives the same register as within a batch
    one_reg, one_rank = source_registers(*_v4([int(addrs[7])]))
    assert (int(one_reg[0]), int(one_rank[0])) == (int(reg[7]), int(rank[7]))


def test_source_registers_ipv4_and_ipv6_differ() -> None:
    # 1.2.3.4 as IPv4, and IPv6 addresses whose bytes hold the same integer
    v4 = _v4([0x01020304, 0])
    v6 = _v6(["::102:304", "::", "::ffff:1.2.3.4"])
    reg4, rank4 = source_registers(*v4)
    reg6, rank6 = source_registers(*v6)
    pairs4 = list(zip(reg4.tolist(), rank4.tolist(), strict=True))
    pairs6 = list(zip(reg6.tolist(), rank6.tolist(), strict=True))
    assert pairs6[0] != pairs4[0] and pairs6[1] != pairs4[1] and pairs6[2] != pairs4[0]
    # the hash reads both halves of an IPv6 address
    hi, lo = _v6(["2001:db8::1", "2001:db8::2"]), _v6(["2001:db8::1", "2001:db9::1"])
    assert len(set(zip(*(a.tolist() for a in source_registers(*hi)), strict=True))) == 2
    assert len(set(zip(*(a.tolist() for a in source_registers(*lo)), strict=True))) == 2
    rng = np.random.default_rng(3)
    many = [str(ipaddress.IPv6Address(int(x) << 64)) for x in rng.integers(1, 2**62, 5000)]
    reg, rank = source_registers(*_v6(many))
    assert len(np.unique(reg)) > 2700 and int(reg.max()) < 4096 and int(rank.min()) >= 1


# --- local_days ------------------------------------------------------------------


def _zone_day(hour: int, zone: str) -> int:
    """The local day of a UTC hour number, computed by zoneinfo alone."""
    local = dt.datetime.fromtimestamp(hour * 3600, dt.UTC).astimezone(ZoneInfo(zone))
    return (local.date() - EPOCH).days


def _hour(y: int, m: int, d: int, h: int) -> int:
    return int(dt.datetime(y, m, d, h, tzinfo=dt.UTC).timestamp()) // 3600


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
    assert (
        local_days(np.array([before + first - 1, before + first]), "America/New_York").tolist()[1]
        == day
    )
    assert local_days(np.array([before + first - 1]), "America/New_York").tolist() == [day - 1]
    assert local_days(
        np.array([after + second - 1, after + second]), "America/New_York"
    ).tolist() == [
        day,
        day + 1,
    ]


# --- day_rows --------------------------------------------------------------------


def _port_hours() -> pa.Table:
    """A hand-made ``port_hours`` table: two UTC days, Tokyo day edges, IPv6 rows."""
    h0 = _hour(2017, 11, 1, 0)
    rows: list[tuple[int, int, int, int, int, str | None, int, int]] = [
        # hour, proto, port, version, src4, src6, cc, packets
        (h0 + 1, 6, 23, 4, 0x01020304, None, 392, 3),
        (h0 + 1, 6, 23, 4, 0x01020305, None, 392, 1),
        (h0 + 2, 6, 23, 4, 0x01020304, None, 392, 2),
        (h0 + 14, 6, 23, 4, 0x01020304, None, 392, 5),
        (h0 + 15, 6, 23, 4, 0x01020304, None, 392, 7),  # Tokyo: the next day
        (h0 + 15, 17, 23, 4, 0x01020304, None, 392, 1),  # UDP: another group
        (h0 + 16, 6, 2323, 4, 0x0A000001, None, 840, 4),
        (h0 + 16, 6, 2323, 4, 0x0A000002, None, 0, 6),
        (h0 + 20, 6, 2323, 6, 0, "2001:db8::10", 840, 9),
        (h0 + 21, 6, 2323, 6, 0, "2001:db8::10", 840, 1),
        (h0 + 23, 6, 2323, 6, 0, "2001:db8::11", 840, 2),
        (h0 + 5, 17, 53, 4, 0xC6336417, None, 156, 11),
    ]
    rng = np.random.default_rng(1)
    for i in range(300):  # enough sources that some share a register
        rows.append((h0 + int(rng.integers(0, 24)), 6, 445, 4, 0x0B000000 + i, None, 156, i + 1))
    cols: dict[str, npt.NDArray[Any]] = {
        "hour": np.array([r[0] for r in rows], np.int32),
        "proto": np.array([r[1] for r in rows], np.uint8),
        "dst_port": np.array([r[2] for r in rows], np.uint16),
        "ip_version": np.array([r[3] for r in rows], np.uint8),
        "src_ip4": np.array([r[4] for r in rows], np.uint32),
        "src_ip6": np.array(
            [list(ipaddress.IPv6Address(r[5] or "::").packed) for r in rows], np.uint8
        ),
        "src_cc": np.array([r[6] for r in rows], np.uint16),
        "src_asn": np.zeros(len(rows), np.uint32),
        "fp": np.zeros(len(rows), np.uint32),
        "packets": np.array([r[7] for r in rows], np.int64),
    }
    return to_table(cols, PORT_HOURS)


def _brute(table: pa.Table, zone: str) -> list[tuple[int, ...]]:
    rows = table.to_pylist()
    version = np.array([r["ip_version"] for r in rows], np.uint8)
    src4 = np.array([r["src_ip4"] for r in rows], np.uint32)
    src6 = np.array([list(r["src_ip6"] or bytes(16)) for r in rows], np.uint8).reshape(-1, 16)
    reg, rank = source_registers(version, src4, src6)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(lambda: [0, 0])
    for r, g, k in zip(rows, reg.tolist(), rank.tolist(), strict=True):
        key = (_zone_day(r["hour"], zone), r["proto"], r["dst_port"], r["src_cc"], g)
        groups[key][0] = max(groups[key][0], k)
        groups[key][1] += r["packets"]
    return sorted((*k, v[0], v[1]) for k, v in groups.items())


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_day_rows_equal_a_brute_force_grouping(zone: str) -> None:
    hours = _port_hours()
    assert hours.column("src_ip6").null_count == hours.num_rows - 3
    days = day_rows(hours, zone)
    names = [c.name for c in PORT_DAYS]
    assert days.schema.names == names
    got = [tuple(r[n] for n in names) for r in days.to_pylist()]
    expected = _brute(hours, zone)
    assert got == expected  # same groups, and sorted by (day, proto, port, cc, reg)
    assert sum(r[-1] for r in got) == pa.compute.sum(hours.column("packets")).as_py()
    assert len(got) < hours.num_rows  # some rows merged
    if zone == "Asia/Tokyo":  # port 23 from 1.2.3.4 on two Tokyo days
        tcp23 = [r for r in got if r[1] == 6 and r[2] == 23]
        assert sorted({r[0] for r in tcp23}) == [17471, 17472]
    if zone == "UTC":
        assert {r[0] for r in got} == {17471}


def test_day_rows_types_and_empty() -> None:
    days = day_rows(_port_hours(), "UTC")
    types = {c.name: str(days.schema.field(c.name).type) for c in PORT_DAYS}
    assert types == {
        "day": "int32",
        "proto": "uint8",
        "dst_port": "uint16",
        "src_cc": "uint16",
        "reg": "uint16",
        "rank": "uint8",
        "packets": "int64",
    }
    empty = day_rows(to_table(None, PORT_HOURS), "Asia/Tokyo")
    assert empty.num_rows == 0
    assert empty.schema.equals(days.schema)
    assert empty.schema.names == [c.name for c in PORT_DAYS]


# --- the estimator -------------------------------------------------------------


def _merged(addresses: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
    """The merged registers (max rank per register, 0 unset) of IPv4 sources."""
    reg, rank = source_registers(*_v4(addresses.tolist()))
    merged = np.zeros(SKETCH_REGISTERS, np.int64)
    np.maximum.at(merged, reg.astype(np.int64), rank.astype(np.int64))
    return merged


def _summary(merged: npt.NDArray[np.int64]) -> tuple[int, float]:
    set_ = merged[merged > 0]
    return len(set_), float(np.sum(np.power(2.0, -set_.astype(np.float64))))


def _sources(n: int, seed: int) -> npt.NDArray[np.uint32]:
    rng = np.random.default_rng(seed)
    out = np.unique(rng.integers(0, 2**32, int(n * 1.01) + 10, dtype=np.uint64).astype(np.uint32))
    rng.shuffle(out)
    return out[:n]


@pytest.mark.parametrize("n", [1, 5, 50, 500, 5_000, 50_000, 500_000])
def test_estimate_within_the_standard_error(n: int) -> None:
    assert math.isclose(STANDARD_ERROR, 1.04 / 64)
    for seed in (1, 2):
        addresses = _sources(n, seed * 1000 + n)
        assert len(addresses) == n
        nonzero, harmonic = _summary(_merged(addresses))
        got = estimate(nonzero, harmonic)
        if n <= 5:
            assert got == n
        assert abs(got - n) <= 5 * STANDARD_ERROR * n, (n, seed, got)
        packets = 3 * n
        bounded = estimate(nonzero, harmonic, packets)
        assert nonzero <= bounded <= packets
        assert bounded == got  # the bound did not bind


def test_estimate_is_clamped_between_registers_and_packets() -> None:
    nonzero, harmonic = _summary(_merged(_sources(50_000, 9)))
    assert nonzero == SKETCH_REGISTERS
    assert estimate(nonzero, harmonic, packets=10_000) == 10_000
    assert estimate(nonzero, harmonic, packets=nonzero) == nonzero
    # a made-up sketch whose raw estimate lies below its registers set
    assert estimate(10, 10.0) == 10
    assert estimate(0, 0.0) == 0
    assert estimate(1, 0.5, packets=1) == 1


def test_sql_estimator_equals_the_python_twin() -> None:
    groups: dict[int, npt.NDArray[np.int64]] = {
        0: np.zeros(SKETCH_REGISTERS, np.int64),  # no sources
        1: _merged(_sources(1, 21)),
        2: _merged(_sources(37, 22)),
        3: _merged(_sources(900, 23)),
        4: _merged(_sources(12_000, 24)),
        5: _merged(_sources(300_000, 25)),
    }
    g = np.concatenate([np.full(SKETCH_REGISTERS, k, np.int64) for k in groups])
    r = np.concatenate(list(groups.values()))
    keep = (r > 0) | (np.arange(len(r)) % 3 == 0)  # some unset registers listed, some not
    # BIGINT ranks, as port_days_raw casts them (the stored uint8 would not negate)
    table = pa.table({"g": g[keep], "r": r[keep]})
    con = duckdb.connect()
    try:
        con.register("regs", table)
        inner = (
            f"SELECT g, {register_sums('r', 's')}, 1000000000000 AS packets FROM regs GROUP BY g"
        )
        sql = f"SELECT g, {sketch_sources('s', 'packets')} AS est FROM ({inner}) ORDER BY g"
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    expected = [(k, estimate(*_summary(m), 10**12)) for k, m in groups.items()]
    assert rows == expected
    assert [e for _, e in expected][:2] == [0, 1] and expected[-1][1] > 250_000


# --- catalog properties and the day zone ---------------------------------------


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


def test_lake_day_zone_is_set_once(tmp_path: Path) -> None:
    with Lake(tmp_path / "store", create=True) as lake:
        assert lake.day_zone() is None
        with pytest.raises(StoreError, match="lock"):
            lake.day_zone("UTC")
        assert lake.catalog.property("day_zone") is None
        lake.lock()
        assert lake.day_zone("Asia/Tokyo") == "Asia/Tokyo"
        assert lake.day_zone("UTC") == "Asia/Tokyo"
        assert lake.day_zone() == "Asia/Tokyo"
    with Lake(tmp_path / "store") as reader:
        assert reader.day_zone() == "Asia/Tokyo"
        assert reader.day_zone("UTC") == "Asia/Tokyo"  # set: no lock needed, nothing changes


# --- port_day_totals --------------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
def test_day_totals_merge_countries_per_day_and_port(zone: str) -> None:
    hours = _port_hours()
    days = day_rows(hours, zone)
    totals = day_totals(days)
    got = {(r["day"], r["proto"], r["dst_port"]): r for r in totals.to_pylist()}
    sources: dict[tuple[int, int, int], set[tuple[int, str]]] = defaultdict(set)
    packets: dict[tuple[int, int, int], int] = defaultdict(int)
    day = local_days(hours.column("hour").to_numpy(), zone)
    for i, r in enumerate(hours.to_pylist()):
        key = (int(day[i]), r["proto"], r["dst_port"])
        sources[key].add((r["src_ip4"], r["src_ip6"] or b""))
        packets[key] += r["packets"]
    assert set(got) == set(sources)
    for key, found in got.items():
        assert found["packets"] == packets[key]
        n = len(sources[key])  # few sources: nearly exact (linear-counting range)
        assert abs(found["sources"] - n) <= max(2, 0.03 * n), (key, found, n)
    assert totals.schema.names == ["day", "proto", "dst_port", "packets", "sources"]
    assert day_totals(day_rows(hours.slice(0, 0), zone)).num_rows == 0


def test_day_totals_estimate_many_sources_like_the_merged_registers() -> None:
    rng = np.random.default_rng(5)
    n = 40_000
    cols: dict[str, npt.NDArray[Any]] = {
        "hour": np.full(n, _hour(2017, 11, 1, 3), np.int32),
        "proto": np.full(n, 6, np.uint8),
        "dst_port": np.full(n, 23, np.uint16),
        "ip_version": np.full(n, 4, np.uint8),
        "src_ip4": rng.choice(2**32 - 1, n, replace=False).astype(np.uint32),
        "src_ip6": np.zeros((n, 16), np.uint8),
        "src_cc": rng.integers(1, 50, n).astype(np.uint16),  # spread over countries
        "src_asn": np.zeros(n, np.uint32),
        "fp": np.zeros(n, np.uint32),
        "packets": np.ones(n, np.int64),
    }
    totals = day_totals(day_rows(to_table(cols, PORT_HOURS), "UTC")).to_pylist()
    assert len(totals) == 1
    merged = _merged(cols["src_ip4"])
    assert totals[0]["sources"] == estimate(*_summary(merged), n)
    assert abs(totals[0]["sources"] / n - 1) < 5 * STANDARD_ERROR
