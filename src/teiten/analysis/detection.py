"""Detection: series → surges and sweeps → campaigns (pure), then stored state and webhooks.

:func:`find_alerts_in` computes the alerts of a window from the data alone:
it writes nothing and sends nothing, so a report may call it. Only
:func:`run_detection` (``teiten detect``) goes on to :func:`store_and_deliver`,
which merges the alerts into the catalog's alert state and POSTs webhooks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from teiten.analysis.alerts import (
    Alert,
    alert_from_row,
    alert_to_row,
    find_alerts,
    merge_alerts,
    read_stored_alerts,
)
from teiten.analysis.campaigns import link_campaigns
from teiten.analysis.series_matrix import daily_matrix
from teiten.analysis.surge import DEFAULT_PARAMS, SurgeParams
from teiten.analysis.window import Window, parse_date, resolve_window
from teiten.backcheck.store import stored_summary
from teiten.config import Settings
from teiten.store.alerts import AlertStore
from teiten.store.engine import open_engine


@dataclass
class Detected:
    """The alerts of one window, computed from the data (nothing stored, nothing sent)."""

    found: list[Alert]
    series: int
    window: tuple[str, str] | None
    tz: str


@dataclass
class DetectionResult:
    """What a detection run found and stored."""

    found: list[Alert]
    alerts: list[Alert]
    """Every stored alert after the run."""
    series: int
    window: tuple[str, str] | None
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _labels(window: Window) -> tuple[str, str]:
    days = window.buckets()
    return window.label(days[0]), window.label(days[-1])


def find_alerts_in(
    settings: Settings,
    *,
    first: str | None = None,
    last: str | None = None,
    params: SurgeParams = DEFAULT_PARAMS,
) -> Detected:
    """Surges, sweeps and campaigns of the window (default: all data), computed in memory.

    A pure read of the store: the same data and window give the same alerts.
    Each alert's evidence records the time zone its days were cut in (``tz``).
    """
    zone = str(settings.tz)
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, zone)
        if window is None:
            return Detected([], 0, None, zone)
        matrix = daily_matrix(engine, window, str(settings.home_country))
        found = find_alerts(matrix, params)
        link_campaigns(engine, found, window, str(settings.home_country))
    checked = stored_summary(settings)
    for a in found:
        a.evidence["tz"] = zone
        if checked is not None and a.campaign:  # what the back-check found about the sources
            a.evidence["backcheck"] = checked.sentence
    return Detected(found, int(matrix.sources.shape[0]), _labels(window), zone)


def store_and_deliver(
    settings: Settings, found: list[Alert]
) -> tuple[list[Alert], list[dict[str, Any]]]:
    """Merge alerts into the stored alert state and deliver webhooks (``teiten detect`` only).

    Which stored alert each found one continues is :func:`merge_alerts`; the
    store writes the result in one transaction. The found alerts get the id
    and state they were stored with (the webhooks name them). Returns every
    stored alert after the merge and the webhook deliveries.
    """
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    store = AlertStore(settings.data_dir / "catalog.sqlite")
    try:
        merge = merge_alerts([alert_from_row(r) for r in store.rows()], found)
        ids = store.save([alert_to_row(a) for a in merge.alerts], merge.ended, now)
        for a, m, i in zip(found, merge.alerts, ids, strict=True):
            a.id, a.state = i, m.state
        stored = [alert_from_row(r) for r in store.rows()]
        deliveries: list[dict[str, Any]] = []
        if settings.webhook_url:
            from teiten.analysis.payloads import sensor_addresses
            from teiten.export.webhook import deliver_alerts

            with open_engine(settings) as engine:  # bodies never name the sensor
                addresses = sensor_addresses(engine)
            deliveries = deliver_alerts(store, found, settings, now, addresses=addresses)
    finally:
        store.close()
    return stored, deliveries


def run_detection(
    settings: Settings,
    *,
    first: str | None = None,
    last: str | None = None,
    params: SurgeParams = DEFAULT_PARAMS,
) -> DetectionResult:
    """``teiten detect``: find the window's alerts, then store and deliver them."""
    detected = find_alerts_in(settings, first=first, last=last, params=params)
    if detected.window is None:
        return DetectionResult([], [], 0, None)
    stored, deliveries = store_and_deliver(settings, detected.found)
    return DetectionResult(detected.found, stored, detected.series, detected.window, deliveries)


def stored_alerts_for(settings: Settings, first: str, last: str, tz: str) -> list[Alert] | None:
    """Stored alerts whose rise overlaps the local days ``first``..``last`` (read only).

    None when no alert is stored for the window, or when the stored alerts were
    dated in another time zone than ``tz`` (their days would not be the report's).
    """
    alerts = read_stored_alerts(settings.data_dir / "catalog.sqlite")
    inside = [a for a in alerts if a.onset <= last and a.last >= first]
    if not inside or any(a.evidence.get("tz", "UTC") != tz for a in inside):
        return None
    return inside


def list_alerts(settings: Settings, *, since: str | None = None) -> list[dict[str, Any]]:
    """``teiten alerts``: stored alerts whose surge lasted until ``since`` or later."""
    from teiten.store.lake import Lake

    start = parse_date(since).isoformat() if since else ""
    with Lake(settings.data_dir):  # a missing folder or a file is a clear error
        alerts = read_stored_alerts(settings.data_dir / "catalog.sqlite")  # never writes
    return [alert_row(a) for a in alerts if a.last >= start]


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
