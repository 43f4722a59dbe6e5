"""Charts of ``trend`` rows for ``teiten trend --chart`` and the demo, offline (PNG or SVG).

The figures look like the report's (:mod:`teiten.report.style`): one line per
port and segment, the year and time zone on the date axis, a vertical line at
each onset, and partial edge days (less than a whole local day of data)
hatched so that they do not read as a collapse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from teiten.analysis.window import local_midnight_ns
from teiten.errors import ConfigError

CHART_SUFFIXES = (".png", ".svg")
FULL_DAY_SLACK_NS = 3_600 * 1_000_000_000
"""A day whose data misses more than this (an hour) is partial."""


def partial_days(span_ns: tuple[int, int] | None, dates: Sequence[str], tz: str) -> list[str]:
    """The days of ``dates`` (local ``YYYY-MM-DD`` in ``tz``) the data covers only in part.

    ``span_ns`` is the first and last packet time; a day is partial when the data
    span misses more than :data:`FULL_DAY_SLACK_NS` of it (a capture that starts
    at 09:00 local time, or a window day with no capture at all).
    """
    if span_ns is None:
        return list(dates)
    zone = ZoneInfo(tz)
    out = []
    for text in dates:
        day = dt.date.fromisoformat(text)
        start = local_midnight_ns(day, zone)
        end = local_midnight_ns(day + dt.timedelta(days=1), zone)
        covered = min(end, span_ns[1]) - max(start, span_ns[0])
        if covered < end - start - FULL_DAY_SLACK_NS:
            out.append(text)
    return out


def series_lines(
    rows: Sequence[dict[str, Any]], measure: str = "packets"
) -> tuple[list[str], dict[str, list[float]]]:
    """Buckets and one series per ``"PORT SEGMENT"`` key (``"PORT"`` when unsplit)."""
    key = "date" if rows and "date" in rows[0] else "hour"
    dates = sorted({str(r[key]) for r in rows})
    index = {d: i for i, d in enumerate(dates)}
    lines: dict[str, list[float]] = {}
    for r in rows:
        name = str(r["port"]) if r["segment"] == "all" else f"{r['port']} {r['segment']}"
        lines.setdefault(name, [0.0] * len(dates))[index[str(r[key])]] += float(r[measure])
    return dates, lines


def trend_chart(
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    title: str = "",
    measure: str = "packets",
    onsets: Sequence[str] = (),
    partial: Sequence[str] = (),
    tz: str = "UTC",
    lang: str = "en",
) -> Path:
    """Draw one line per (port, segment) of ``trend`` rows; the format follows the suffix."""
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise ConfigError(f"chart file must end in .png or .svg: {path}")
    from teiten.report.style import figure_style, series_figure

    dates, lines = series_lines(rows, measure)
    ports = list(dict.fromkeys(str(r["port"]) for r in rows))
    with figure_style(lang) as plt:
        fig = series_figure(
            plt, dates, lines, lang=lang, tz=tz, onsets=onsets, partial=partial,
            measure=measure, ports=ports, title=title, size=(10, 4.2),
        )  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        png = path.suffix.lower() == ".png"
        fig.savefig(path, dpi=110, metadata={"Software": None} if png else {"Date": None})
        plt.close(fig)
    return path
