"""``teiten detect``: series → surges and sweeps → campaigns → stored alert state → webhook."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from teiten.analysis.alerts import Alert, find_alerts
from teiten.analysis.campaigns import link_campaigns
from teiten.analysis.series_matrix import daily_matrix
from teiten.analysis.surge import DEFAULT_PARAMS, SurgeParams
from teiten.analysis.window import parse_date, resolve_window
from teiten.backcheck.store import stored_summary
from teiten.config import Settings
from teiten.store.alerts import AlertStore
from teiten.store.engine import open_engine


@dataclass
class DetectionResult:
    """What a detection run found and stored."""

    found: list[Alert]
    alerts: list[Alert]
    """Every stored alert after the run."""
    series: int
    window: tuple[str, str] | None
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def run_detection(
    settings: Settings,
    *,
    first: str | None = None,
    last: str | None = None,
    params: SurgeParams = DEFAULT_PARAMS,
) -> DetectionResult:
    """Detect over the window (default: all data), link campaigns, store and deliver alerts."""
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, str(settings.tz))
        if window is None:
            return DetectionResult([], [], 0, None)
        matrix = daily_matrix(engine, window, str(settings.home_country))
        found = find_alerts(matrix, params)
        link_campaigns(engine, found, window, str(settings.home_country))
    checked = stored_summary(settings)
    if checked is not None:  # what the back-check found about the sources
        for a in found:
            if a.campaign:
                a.evidence["backcheck"] = checked.sentence
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    store = AlertStore(settings.data_dir / "catalog.sqlite")
    try:
        stored = store.merge(found, now)
        deliveries: list[dict[str, Any]] = []
        if settings.webhook_url:
            from teiten.export.webhook import deliver_alerts

            deliveries = deliver_alerts(store, found, settings, now)
    finally:
        store.close()
    days = window.buckets()
    return DetectionResult(
        found,
        stored,
        int(matrix.sources.shape[0]),
        (window.label(days[0]), window.label(days[-1])),
        deliveries,
    )


def list_alerts(settings: Settings, *, since: str | None = None) -> list[dict[str, Any]]:
    """``teiten alerts``: stored alerts whose surge lasted until ``since`` or later."""
    from teiten.store.lake import Lake

    start = parse_date(since).isoformat() if since else ""
    with Lake(settings.data_dir):
        store = AlertStore(settings.data_dir / "catalog.sqlite")
        try:
            return [alert_row(a) for a in store.all() if a.last >= start]
        finally:
            store.close()


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
