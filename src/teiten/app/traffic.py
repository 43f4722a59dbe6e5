"""``teiten ports`` and ``teiten trend``: rankings and series over a window of local dates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teiten.analysis.ports import top_ports
from teiten.analysis.series import parse_ports, trend
from teiten.analysis.window import data_span, parse_date, resolve_window
from teiten.app.engine import open_engine
from teiten.config import Settings
from teiten.errors import ConfigError
from teiten.report.charts import partial_days, series_lines, trend_chart
from teiten.sql.traffic import SPLITS


def port_ranking(
    settings: Settings, *, first: str | None = None, last: str | None = None, top: int = 20
) -> list[dict[str, Any]]:
    """``teiten ports``: the top ports over a window of local dates (default: all data)."""
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, str(settings.tz))
        if window is None:
            return []
        return top_ports(engine, window, top=top, home_country=str(settings.home_country))


def port_trend(
    settings: Settings,
    ports: list[str],
    *,
    first: str | None = None,
    last: str | None = None,
    by: str = "day",
    split: str = "none",
    measures: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """``teiten trend``: series for ports over a window of local dates (default: all data)."""
    parsed = parse_ports(ports)
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, str(settings.tz), by)
        if window is None:
            return []
        return trend(
            engine,
            parsed,
            window,
            split=split,
            home_country=str(settings.home_country),
            measures=measures,
        )


def stored_alerts(settings: Settings, ports: Sequence[str]) -> list[dict[str, Any]]:
    """The stored alerts on ``ports`` (none when nothing was ever detected; read only)."""
    if not (settings.data_dir / "catalog.sqlite").is_file():
        return []
    from teiten.app import detect  # the detector's imports, only for a chart's onsets

    wanted = {p.lower() for p in ports}
    return [a for a in detect.list_alerts(settings) if str(a["port"]).lower() in wanted]


def stored_onsets(settings: Settings, ports: Sequence[str], first: str, last: str) -> list[str]:
    """Onsets of the stored alerts on ``ports`` between ``first`` and ``last`` (read only)."""
    return sorted(
        {
            str(a["onset"])
            for a in stored_alerts(settings, ports)
            if first <= str(a["onset"])[:10] <= last
        }
    )


def trend_figure(
    settings: Settings,
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    measure: str = "packets",
    onsets: Sequence[str] | None = None,
) -> Path:
    """``teiten trend --chart``: ``rows`` drawn with the store's partial days marked.

    Onsets are the given dates, or else those of the stored alerts on the charted
    ports; the axis names the ``tz`` setting the rows were cut in.
    """
    dates, _ = series_lines(rows, measure)
    ports = list(dict.fromkeys(str(r["port"]) for r in rows))
    tz = str(settings.tz)
    if onsets is None:
        onsets = stored_onsets(settings, ports, dates[0][:10], dates[-1][:10]) if dates else []
    else:
        onsets = [parse_date(o).isoformat() for o in onsets]
    partial: list[str] = []
    if dates and "T" not in dates[0]:
        with open_engine(settings) as engine:
            partial = partial_days(data_span(engine), dates, tz)
    title = f"{', '.join(p.upper() for p in ports)}: {measure}"
    return trend_chart(
        rows, path, title=title, measure=measure, onsets=onsets, partial=partial, tz=tz
    )
