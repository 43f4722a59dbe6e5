"""``teiten rollup``: rebuild the day sketches of a store (``teiten.store.sketch``)."""

from __future__ import annotations

from dataclasses import dataclass

from teiten.config import Settings
from teiten.enrich.country import country_code
from teiten.store.lake import DAY_ZONE, SKETCH_HOME, Lake
from teiten.store.sketch import SketchCut, rebuild


@dataclass(frozen=True)
class SketchResult:
    """What a rebuild wrote."""

    zone: str
    home: str
    files: int
    rows: int
    unrolled: int
    """Inputs with packets but no hourly rollup (stores older than the rollups): they
    get no sketch, so the per-port statements keep counting exactly."""


def rebuild_sketches(
    settings: Settings, zone: str | None = None, home: str | None = None
) -> SketchResult:
    """Rebuild the day sketches of every input from its ``port_hours`` files, with days cut
    in ``zone`` (default: the store's day zone, else the ``tz`` setting) and ``home``'s
    sources as the domestic segment (default: the store's, else the ``home_country``
    setting), and make them the store's — all in one catalog commit.

    Adds the sketches to stores ingested before they existed, and moves a store's
    sketches to another zone or home country, so the questions asked in those read them.
    """
    if zone is not None:
        zone = str(settings.replace(tz=zone).tz)  # checked as the tz setting is
    if home is not None:
        home = str(settings.replace(home_country=home).home_country)  # and so the country
    with Lake(settings.data_dir) as lake:
        lake.lock(wait=float(settings.lock_wait))
        chosen = zone or lake.day_zone() or str(settings.tz)
        country = home or lake.sketch_home() or str(settings.home_country)
        with lake.rewriting() as tx:
            rows = rebuild(tx, SketchCut(chosen, country_code(country)))
            files = len(tx.staged)
            tx.commit_replacements(properties={DAY_ZONE: chosen, SKETCH_HOME: country})
        return SketchResult(chosen, country, files, rows, len(lake.unrolled()))
