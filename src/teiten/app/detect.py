"""``teiten detect`` and ``teiten alerts``: find the window's alerts, keep their state,
deliver them.

:func:`find_alerts_in` is a pure read (a report may call it);
:func:`store_and_deliver` merges alerts into the catalog's alert state and
POSTs webhooks, and only :func:`run_detection` calls it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from teiten.analysis.alerts import (
    Alert,
    alert_from_row,
    alert_to_row,
    merge_alerts,
    read_stored_alerts,
)
from teiten.analysis.detection import Detected, alert_row, detect
from teiten.analysis.payloads import sensor_addresses
from teiten.analysis.surge import DEFAULT_PARAMS, SurgeParams
from teiten.analysis.window import parse_date, resolve_window
from teiten.app.backcheck import stored_summary
from teiten.app.engine import open_engine
from teiten.config import Settings
from teiten.export.webhook import Webhook, deliver_alerts
from teiten.store.alerts import AlertStore
from teiten.store.lake import Lake


@dataclass
class DetectionResult:
    """What a detection run found and stored."""

    found: list[Alert]
    alerts: list[Alert]
    """Every stored alert after the run."""
    series: int
    window: tuple[str, str] | None
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def webhook_of(settings: Settings) -> Webhook:
    """The webhook the settings name (``webhook_url`` empty: none)."""
    return Webhook(
        str(settings.webhook_url),
        str(settings.webhook_secret),
        int(settings.webhook_retries),
        tuple(settings.sensor_networks),
    )


def find_alerts_in(
    settings: Settings,
    *,
    first: str | None = None,
    last: str | None = None,
    params: SurgeParams = DEFAULT_PARAMS,
) -> Detected:
    """Surges, sweeps and campaigns of the window (default: all data), computed in memory.

    A pure read of the store: the same data and window give the same alerts.
    """
    zone = str(settings.tz)
    checked = stored_summary(settings)
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, zone)
        if window is None:
            return Detected([], 0, None, zone)
        return detect(
            engine,
            window,
            str(settings.home_country),
            params=params,
            backcheck=checked.sentence if checked is not None else None,
        )


def store_and_deliver(
    settings: Settings, found: list[Alert]
) -> tuple[list[Alert], list[dict[str, Any]]]:
    """Merge alerts into the stored alert state and deliver webhooks (``teiten detect`` only).

    Which stored alert each found one continues is
    :func:`~teiten.analysis.alerts.merge_alerts`; the store writes the result
    in one transaction. The found alerts get the id and state they were stored
    with (the webhooks name them). Returns every stored alert after the merge
    and the webhook deliveries.
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
            with open_engine(settings) as engine:  # bodies never name the sensor
                addresses = sensor_addresses(engine)
            hook = webhook_of(settings)
            deliveries = deliver_alerts(store, found, hook, now, addresses=addresses)
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
    start = parse_date(since).isoformat() if since else ""
    with Lake(settings.data_dir):  # a missing folder or a file is a clear error
        alerts = read_stored_alerts(settings.data_dir / "catalog.sqlite")  # never writes
    return [alert_row(a) for a in alerts if a.last >= start]
