"""``teiten ports`` and ``teiten trend``: rankings and series over a window of local dates."""

from __future__ import annotations

from typing import Any

from teiten.analysis.ports import top_ports
from teiten.analysis.series import parse_ports, trend
from teiten.analysis.window import resolve_window
from teiten.app.engine import open_engine
from teiten.config import Settings
from teiten.errors import ConfigError
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
