"""Report and trend charts: which lines, axis labels, onset and partial-day marks they hold."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from teiten.errors import ConfigError
from teiten.report import style
from teiten.report.charts import partial_days, series_lines, trend_chart
from teiten.report.model import Chart
from teiten.simulate import SimulationResult

NS = 1_000_000_000


def _days(first: str, n: int) -> list[str]:
    start = dt.date.fromisoformat(first)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(n)]


SEED_DAYS = _days("2017-10-01", 79)  # the seed's window, 2017-10-01 to 2017-12-18
TELNET = {
    "23/tcp domestic": [10] * 31 + [900] * 48,
    "23/tcp foreign": [300] * 79,
    "2323/tcp domestic": [2] * 31 + [150] * 48,
    "2323/tcp foreign": [40] * 79,
}


@pytest.fixture
def drawn() -> Iterator[Any]:
    """Figures drawn in a test, closed afterwards."""
    figures: list[Any] = []
    yield figures
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


def _figure(drawn: list[Any], lang: str, dates: list[str], lines: Any, **kw: Any) -> Any:
    with style.figure_style(lang) as plt:
        fig = style.series_figure(plt, dates, lines, lang=lang, tz="Asia/Tokyo", **kw)
        fig.canvas.draw()
    drawn.append(fig)
    return fig.axes[0]


def _lines(ax: Any) -> dict[str, Any]:
    return {str(ln.get_gid()): ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("line ")}


def test_one_line_per_port_and_segment_in_japanese(drawn: list[Any]) -> None:
    ax = _figure(
        drawn, "ja", SEED_DAYS, TELNET, onsets=["2017-11-01"], ports=["23/tcp", "2323/tcp"]
    )
    lines = _lines(ax)
    assert sorted(lines) == sorted(f"line {k}" for k in TELNET)
    labels = {ln.get_label() for ln in lines.values()}
    assert labels == {"23/TCP 国内", "23/TCP 国外", "2323/TCP 国内", "2323/TCP 国外"}
    # never summed: each line holds its own port's numbers
    assert list(lines["line 23/tcp domestic"].get_ydata()) == TELNET["23/tcp domestic"]
    assert list(lines["line 2323/tcp domestic"].get_ydata()) == TELNET["2323/tcp domestic"]
    # one colour per port, one dash per segment
    assert lines["line 23/tcp domestic"].get_color() == lines["line 23/tcp foreign"].get_color()
    assert lines["line 23/tcp domestic"].get_color() != lines["line 2323/tcp domestic"].get_color()
    assert (
        lines["line 23/tcp domestic"].get_linestyle()
        != lines["line 23/tcp foreign"].get_linestyle()
    )
    assert ax.get_xlabel() == "日付（Asia/Tokyo）" and ax.get_ylabel() == "パケット数（件/日）"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["23/TCP 国内", "23/TCP 国外", "2323/TCP 国内", "2323/TCP 国外"]


def test_axis_shows_the_year_at_the_start_and_at_year_changes(drawn: list[Any]) -> None:
    ax = _figure(drawn, "en", SEED_DAYS, {"52869/tcp": list(range(79))})
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "2017-10-01" and "11-01" in ticks and "12-15" in ticks
    assert all(t.count("-") == 1 for t in ticks[1:])  # no year repeated within one year
    assert ax.get_xlabel() == "Date (Asia/Tokyo)"
    days = _days("2017-12-20", 30)
    ax = _figure(drawn, "en", days, {"52869/tcp": [1] * 30})
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("2017-") and "2018-01-01" in ticks
    assert [t for t in ticks if t.count("-") == 2] == [ticks[0], "2018-01-01"]


def test_onset_is_a_vertical_line_named_with_its_date(drawn: list[Any]) -> None:
    import matplotlib.dates as mdates

    ax = _figure(drawn, "en", SEED_DAYS, TELNET, onsets=["2017-11-01", "2017-10-28", "2016-01-01"])
    onsets = {
        str(ln.get_gid()): ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("onset")
    }
    assert sorted(onsets) == ["onset 2017-10-28", "onset 2017-11-01"]  # outside the window: none
    x = float(mdates.date2num(dt.datetime(2017, 11, 1)))  # type: ignore[no-untyped-call]
    assert list(onsets["onset 2017-11-01"].get_xdata()) == [x, x]
    texts = {t.get_text() for t in ax.texts}
    assert {"onset 2017-11-01", "onset 2017-10-28"} <= texts
    ax = _figure(drawn, "ja", SEED_DAYS, TELNET)
    assert not [ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("onset")]
    assert not ax.texts


def test_partial_days_are_hatched_and_named_in_the_legend(drawn: list[Any]) -> None:
    partial = [SEED_DAYS[0], SEED_DAYS[-1]]
    ax = _figure(drawn, "ja", SEED_DAYS, TELNET, partial=partial)
    spans = sorted(str(p.get_gid()) for p in ax.patches if str(p.get_gid()).startswith("partial"))
    assert spans == ["partial 2017-10-01", "partial 2017-12-18"]
    assert all(p.get_hatch() for p in ax.patches if str(p.get_gid()).startswith("partial"))
    assert "24時間未満のデータの日" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = _figure(drawn, "en", SEED_DAYS, TELNET)
    assert not [p for p in ax.patches if str(p.get_gid()).startswith("partial")]
    assert len(ax.get_legend().get_texts()) == 4


def test_partial_days_from_the_data_span() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    first = int(dt.datetime(2017, 10, 1, tzinfo=dt.UTC).timestamp()) * NS  # 09:00 JST
    last = int(dt.datetime(2017, 10, 4, 23, 59, 59, tzinfo=tokyo).timestamp()) * NS
    days = _days("2017-10-01", 6)
    assert partial_days((first, last), days, "Asia/Tokyo") == [
        "2017-10-01",  # 15 h of data
        "2017-10-05",  # no data at all
        "2017-10-06",
    ]
    assert partial_days((first, last), days[:4], "UTC") == ["2017-10-04"]  # ends 15:00 UTC
    assert partial_days(None, days[:2], "UTC") == days[:2]


def test_report_chart_keeps_lines_of_the_model(tmp_path: Path) -> None:
    chart = Chart(3, "segments", ["23/tcp", "2323/tcp"], SEED_DAYS, dict(TELNET), "2017-11-01")
    png, svg = style.series_chart(chart, tmp_path / "fig3", "en", "Asia/Tokyo")
    assert png.read_bytes().startswith(b"\x89PNG")
    ids = {e.get("id") for e in ET.parse(svg).iter() if e.get("id")}
    assert {f"line {k}" for k in TELNET} <= ids and "onset 2017-11-01" in ids
    text = svg.read_text(encoding="utf-8")
    assert "Date (Asia/Tokyo)" in text and "2323/TCP foreign" in text


def test_trend_rows_become_one_line_per_port_and_segment(tmp_path: Path) -> None:
    rows = [
        {"port": p, "date": d, "segment": s, "packets": n}
        for p, s, d, n in [
            ("23/tcp", "domestic", "2017-10-31", 5), ("23/tcp", "domestic", "2017-11-01", 50),
            ("23/tcp", "foreign", "2017-10-31", 7), ("23/tcp", "foreign", "2017-11-01", 8),
            ("2323/tcp", "domestic", "2017-10-31", 1), ("2323/tcp", "domestic", "2017-11-01", 9),
        ]
    ]  # fmt: skip
    dates, lines = series_lines(rows)
    assert dates == ["2017-10-31", "2017-11-01"]
    assert lines == {
        "23/tcp domestic": [5, 50],
        "23/tcp foreign": [7, 8],
        "2323/tcp domestic": [1, 9],
    }
    svg = trend_chart(
        rows, tmp_path / "t.svg", onsets=["2017-11-01"], partial=["2017-10-31"], tz="UTC"
    )
    ids = {e.get("id") for e in ET.parse(svg).iter() if e.get("id")}
    assert {
        "line 23/tcp domestic",
        "line 2323/tcp domestic",
        "onset 2017-11-01",
        "partial 2017-10-31",
    } <= ids
    with pytest.raises(ConfigError, match=r"\.png or \.svg"):
        trend_chart(rows, tmp_path / "t.pdf")


def test_trend_chart_command_marks_onsets_partial_days_and_zone(
    tmp_path: Path, smoke: SimulationResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teiten.app import detect as detection
    from teiten.cli.main import cli

    def run(*args: str) -> Any:
        env = {"TEITEN_CONFIG": ""}
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    data = str(tmp_path / "store")
    assert (
        run("ingest", str(smoke.pcap), "--data", data, "--sensor-net", "203.0.113.0/24").exit_code
        == 0
    )
    chart = tmp_path / "telnet.svg"
    base = (
        "trend",
        "23/tcp",
        "2323/tcp",
        "--data",
        data,
        "--split",
        "domestic",
        "--tz",
        "Asia/Tokyo",
    )
    r = run(*base, "--chart", str(chart), "--onset", "2017-11-01")
    assert r.exit_code == 0, r.output
    root = ET.parse(chart)
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    lines = {i for i in ids if i and i.startswith("line ")}
    assert lines == {"line 23/tcp domestic", "line 23/tcp foreign", "line 2323/tcp domestic",
                     "line 2323/tcp foreign"}  # fmt: skip
    assert "onset 2017-11-01" in ids
    # the capture starts at 00:00 UTC, 09:00 in Tokyo: the first local day is partial
    assert "partial 2017-10-31" in ids and "partial 2017-11-01" not in ids
    assert "Date (Asia/Tokyo)" in chart.read_text(encoding="utf-8")
    # without --onset, the onsets of stored alerts on these ports are marked
    stored = [
        {"port": "2323/tcp", "onset": "2017-11-01"},
        {"port": "80/tcp", "onset": "2017-10-31"},
    ]
    monkeypatch.setattr(detection, "list_alerts", lambda settings, since=None: stored)
    (Path(data) / "catalog.sqlite").touch()
    assert run(*base, "--chart", str(chart)).exit_code == 0
    ids = {e.get("id") for e in ET.parse(chart).iter() if e.get("id")}
    assert {i for i in ids if i and i.startswith("onset")} == {"onset 2017-11-01"}
    r = run(*base, "--chart", str(chart), "--onset", "Nov 1")
    assert r.exit_code == 1 and "not a date" in r.output
    r = run(*base, "--onset", "2017-11-01")
    assert r.exit_code == 1 and "--chart" in r.output
