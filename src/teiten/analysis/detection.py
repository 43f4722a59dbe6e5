"""Detection: daily series → surges and sweeps → campaigns, computed from the data alone.

:func:`detect` writes nothing and sends nothing, so a report may call it; the
``teiten detect`` use case (``teiten.app.detect``) goes on to store the alert
state and deliver webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teiten.analysis.alerts import Alert, find_alerts
from teiten.analysis.campaigns import link_campaigns
from teiten.analysis.series_matrix import daily_matrices
from teiten.analysis.surge import DEFAULT_PARAMS, SurgeParams
from teiten.analysis.window import Window
from teiten.engine import Engine


@dataclass
class Detected:
    """The alerts of one window, computed from the data (nothing stored, nothing sent)."""

    found: list[Alert]
    series: int
    window: tuple[str, str] | None
    tz: str


def labels(window: Window) -> tuple[str, str]:
    """The first and last local day of a window."""
    days = window.buckets()
    return window.label(days[0]), window.label(days[-1])


def detect(
    engine: Engine,
    window: Window,
    home_country: str,
    *,
    params: SurgeParams = DEFAULT_PARAMS,
    backcheck: str | None = None,
) -> Detected:
    """Surges, sweeps and campaigns of the window.

    Each alert's evidence records the time zone its days were cut in (``tz``)
    and, for campaign alerts, ``backcheck``: what the back-check found about
    the sources (a sentence), when given.
    """
    zone = window.tz.key
    found: list[Alert] = []
    series = 0
    for matrix in daily_matrices(engine, window, home_country):  # rows are alone: in parts
        found.extend(find_alerts(matrix, params))
        series += int(matrix.sources.shape[0])
    found.sort(key=lambda a: (a.onset, a.port, a.segment))  # as find_alerts orders them
    link_campaigns(engine, found, window, home_country)
    for a in found:
        a.evidence["tz"] = zone
        if backcheck is not None and a.campaign:
            a.evidence["backcheck"] = backcheck
    return Detected(found, series, labels(window), zone)


def alert_row(a: Alert) -> dict[str, Any]:
    """The documented fields of an alert, for tables and JSON."""
    return {
        "id": a.id,
        "kind": a.kind,
        "port": a.port,
        "segment": a.segment,
        "onset": a.onset,
        "last": a.last,
        "ratio": a.ratio,
        "score": a.score,
        "state": a.state,
        "campaign": a.campaign,
    }
