"""Which statements read the rollups: spans of whole UTC hours only (``traffic.hourly``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from teiten.analysis.window import Window
from teiten.schema import HOUR_NS
from teiten.sql import traffic
from teiten.sql.dialect import DUCKDB, SPARK

FIRST, LAST = dt.date(2024, 3, 1), dt.date(2024, 4, 30)  # across the US and EU DST changes


@pytest.mark.parametrize(
    "tz", ["UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin", "Australia/Sydney"]
)
@pytest.mark.parametrize("by", ["day", "hour"])
def test_whole_hour_zones_read_the_rollups(tz: str, by: str) -> None:
    w = Window.from_dates(FIRST, LAST, tz, by)
    assert traffic.hourly(w)
    for d in (DUCKDB, SPARK):
        assert "FROM port_hours_raw" in traffic.top_ports(d, w, home=1, top=5)
        assert "FROM address_hours_raw" in traffic.active_addresses(d, w)


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide"])
def test_zones_off_the_hour_read_the_packets(tz: str) -> None:
    w = Window.from_dates(FIRST, LAST, tz)
    assert not traffic.hourly(w)
    sql = traffic.port_series(DUCKDB, w, [("tcp", 23)], split="domestic", home=1)
    assert "FROM packets_raw" in sql and "_hours_raw" not in sql


def test_a_window_cut_mid_hour_reads_the_packets() -> None:
    w = Window.from_dates(FIRST, LAST, "UTC")
    cut = Window(w.start_ns + HOUR_NS // 2, w.end_ns, ZoneInfo("UTC"))
    assert traffic.hourly(w) and not traffic.hourly(cut)
    assert "FROM packets_raw" in traffic.busy_port_days(DUCKDB, cut, home=1, min_sources=2)


def test_slices_read_the_rollups_on_whole_hours_only() -> None:
    start = Window.from_dates(FIRST, FIRST, "Asia/Tokyo").start_ns
    whole = traffic.Slice("tcp", 23, "domestic", start, start + 24 * HOUR_NS, 1)
    half = traffic.Slice("tcp", 23, "domestic", start + HOUR_NS // 2, start + 24 * HOUR_NS, 1)
    assert "FROM port_hours_raw" in traffic.slice_busiest_sources(DUCKDB, whole, limit=3)
    assert "sum(packets)" in traffic.slice_busiest_sources(DUCKDB, whole, limit=3)
    assert "FROM packets_raw" in traffic.slice_busiest_sources(DUCKDB, half, limit=3)
    assert "decode_error IN" in half.where()  # the port rule, as in every per-port statement


def test_the_benchmark_switch_forces_the_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    w = Window.from_dates(FIRST, LAST, "UTC")
    monkeypatch.setattr(traffic, "USE_ROLLUPS", False)
    assert not traffic.hourly(w)
    assert "FROM packets_raw" in traffic.top_ports(DUCKDB, w, home=1, top=5)
