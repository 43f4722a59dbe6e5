"""What the dashboard's overview says about the store itself: how much it holds and how well.

Read from the catalog (inputs, their packets, what ingest skipped or flagged)
and from the footers of the quarantine files the catalog lists (how many
packets were set aside), plus the data span from the packet files' statistics.
Nothing here scans the packets.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from teiten.analysis.window import NS, data_span
from teiten.app.engine import open_engine
from teiten.config import Settings
from teiten.store.catalog import Catalog, InputRecord
from teiten.store.lake import Lake
from teiten.store.paths import quarantine_table

RECENT_DAYS = 7
"""Days of data the overview ranks ports over when no window is asked for."""


def _local(ts_ns: int | float | None, zone: ZoneInfo, unit: int = NS) -> str | None:
    if ts_ns is None:
        return None
    return dt.datetime.fromtimestamp(ts_ns / unit, zone).isoformat(timespec="seconds")


def _quarantined(settings: Settings, catalog: Catalog) -> int:
    """Rows of the committed quarantine files, from their Parquet footers."""
    import pyarrow.parquet as pq

    total = 0
    for rel in catalog.files(quarantine_table("packets")):
        try:
            total += pq.read_metadata(settings.data_dir / rel).num_rows
        except OSError:
            continue  # a file gone missing is the store check's business, not the overview's
    return total


def _counts(records: list[InputRecord]) -> dict[str, Any]:
    done = [r for r in records if r.status == "done"]
    return {
        "inputs": len(done),
        "inputs_failed": sum(1 for r in records if r.status == "failed"),
        "inputs_ingesting": sum(1 for r in records if r.status == "ingesting"),
        "packets": sum(r.packets for r in done),
        "skipped": sum(sum(r.skipped.values()) for r in done),
        "malformed": sum(sum(r.malformed.values()) for r in done),
        "last_ingest": max((r.finished for r in done if r.finished), default=None),
    }


def store_health(settings: Settings) -> dict[str, Any]:
    """The store at a glance: ``inputs`` (done), ``inputs_failed``, ``inputs_ingesting``,
    ``packets``, ``skipped`` and ``malformed`` (as ingest counted them), ``quarantined``
    packets, ``first_packet`` and ``last_packet`` (local time in the ``tz`` setting, None
    when empty), ``last_ingest`` (when the latest input was committed)."""
    zone = ZoneInfo(str(settings.tz))
    with Lake(settings.data_dir) as lake:  # a missing folder or a file is a clear error
        out = _counts(lake.catalog.inputs())
        out["quarantined"] = _quarantined(settings, lake.catalog)
    span = None
    if out["inputs"]:
        with open_engine(settings) as engine:
            span = data_span(engine)
    out["first_packet"] = _local(span[0] if span else None, zone)
    out["last_packet"] = _local(span[1] if span else None, zone)
    out["last_ingest"] = _local(out["last_ingest"], zone, unit=1)
    return out


def recent_days(settings: Settings, days: int = RECENT_DAYS) -> tuple[str, str] | None:
    """The last ``days`` local dates that hold data (``first``, ``last``), None when empty."""
    with open_engine(settings) as engine:
        span = data_span(engine)
    if span is None:
        return None
    last = dt.datetime.fromtimestamp(span[1] / NS, ZoneInfo(str(settings.tz))).date()
    first_data = dt.datetime.fromtimestamp(span[0] / NS, ZoneInfo(str(settings.tz))).date()
    first = max(first_data, last - dt.timedelta(days=days - 1))
    return first.isoformat(), last.isoformat()
