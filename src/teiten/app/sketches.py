"""``teiten rollup``: rebuild the day sketches of a store (``teiten.store.sketch``)."""

from __future__ import annotations

from dataclasses import dataclass

from teiten.config import Settings
from teiten.store.lake import Lake
from teiten.store.sketch import rebuild


@dataclass(frozen=True)
class SketchResult:
    """What a rebuild wrote."""

    zone: str
    files: int
    rows: int
    unrolled: int
    """Inputs with packets but no hourly rollup (stores older than the rollups): they
    get no sketch, so the per-port statements keep counting exactly."""


def rebuild_sketches(settings: Settings, zone: str | None = None) -> SketchResult:
    """Rebuild the ``port_days`` sketch of every input from its ``port_hours`` files, with
    days cut in ``zone`` (default: the store's day zone, else the ``tz`` setting), and
    make ``zone`` the store's day zone — all in one catalog commit.

    Adds the sketches to stores ingested before they existed, and moves a store's
    sketches to another zone, so series by day in that zone read them.
    """
    if zone is not None:
        zone = str(settings.replace(tz=zone).tz)  # checked as the tz setting is
    with Lake(settings.data_dir) as lake:
        lake.lock(wait=float(settings.lock_wait))
        chosen = zone or lake.day_zone() or str(settings.tz)
        with lake.rewriting() as tx:
            rows = rebuild(tx, chosen)
            files = len(tx.staged)
            tx.commit_replacements(day_zone=chosen)
        return SketchResult(chosen, files, rows, len(lake.unrolled()))
