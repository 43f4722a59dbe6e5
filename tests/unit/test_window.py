from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from teiten.analysis.window import Window, check_span, offset_changes, parse_date
from teiten.errors import ConfigError
from teiten.sql.dialect import DUCKDB
from teiten.sql.expressions import local_bucket

NS = 10**9


def _bucket(window: Window, ts_ns: int) -> int:
    bucket = local_bucket(DUCKDB, window.offsets(), window.size_ns, "t")
    sql = f"SELECT {bucket} AS b FROM (SELECT {ts_ns}::BIGINT AS t)"
    return int(duckdb.connect().execute(sql).fetchall()[0][0])


def test_utc_days() -> None:
    w = Window.from_dates(dt.date(2017, 10, 1), dt.date(2017, 10, 3), "UTC")
    assert [w.label(b) for b in w.buckets()] == ["2017-10-01", "2017-10-02", "2017-10-03"]
    assert w.end_ns - w.start_ns == 3 * 86400 * NS


def test_jst_day_cut_at_local_midnight() -> None:
    w = Window.from_dates(dt.date(2017, 11, 1), dt.date(2017, 11, 2), "Asia/Tokyo")
    # 2017-10-31 15:00 UTC is 2017-11-01 00:00 JST
    t = int(dt.datetime(2017, 10, 31, 15, 0, tzinfo=dt.UTC).timestamp()) * NS
    assert w.start_ns == t
    assert w.label(_bucket(w, t)) == "2017-11-01"
    assert w.label(_bucket(w, t - 1)) == "2017-10-31"


def test_dst_change_inside_window() -> None:
    w = Window.from_dates(dt.date(2017, 10, 28), dt.date(2017, 10, 30), "Europe/Berlin")
    changes = offset_changes(w.start_ns, w.end_ns, w.tz)
    assert [c[1] // 3600 // NS for c in changes] == [2, 1]
    assert changes[1][0] == int(dt.datetime(2017, 10, 29, 1, 0, tzinfo=dt.UTC).timestamp()) * NS
    # 23:30 local on the 29th (after the change, UTC+1) is 22:30 UTC
    t = int(dt.datetime(2017, 10, 29, 22, 30, tzinfo=dt.UTC).timestamp()) * NS
    assert w.label(_bucket(w, t)) == "2017-10-29"
    assert w.label(_bucket(w, t + 3600 * NS)) == "2017-10-30"


def test_hours() -> None:
    w = Window.from_dates(dt.date(2017, 11, 1), dt.date(2017, 11, 1), "UTC", by="hour")
    assert len(w.buckets()) == 24 and w.label(w.buckets()[5]) == "2017-11-01T05:00"


def test_errors() -> None:
    with pytest.raises(ConfigError, match="not a date"):
        parse_date("1 Nov")
    with pytest.raises(ConfigError, match="before"):
        Window.from_dates(dt.date(2017, 11, 2), dt.date(2017, 11, 1), "UTC")


@pytest.mark.parametrize(
    ("first", "last", "says"),
    [
        (dt.date(2017, 1, 1), dt.date(7880, 1, 20), "outside the dates a window may cover"),
        (dt.date(1, 1, 1), dt.date(2017, 1, 1), "outside the dates a window may cover"),
        (dt.date(2000, 1, 1), dt.date(2030, 1, 1), "10,959 days long; at most 7,305"),
    ],
)
def test_windows_beyond_reason_are_refused(first: dt.date, last: dt.date, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        check_span(first, last)


def test_twenty_years_is_a_window() -> None:
    check_span(dt.date(2000, 1, 1), dt.date(2019, 12, 31))
    w = Window.from_dates(dt.date(2000, 1, 1), dt.date(2019, 12, 31), "Europe/Berlin")
    assert len(w.buckets()) == 7_305 and len(w.offsets()) == 41
