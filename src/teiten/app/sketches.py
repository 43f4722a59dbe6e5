"""``teiten rollup`` and ``teiten pack``: rebuild and pack the day tables of a store
(``teiten.store.sketch``, ``teiten.store.pack``)."""

from __future__ import annotations

from dataclasses import dataclass

from teiten.config import Settings
from teiten.enrich.country import country_code
from teiten.store.lake import DAY_ZONE, SKETCH_HOME, Lake
from teiten.store.pack import Packed, pack
from teiten.store.sketch import SketchCut, rebuild
from teiten.store.sourceports import build_missing


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
    packed: Packed
    """The packs the rebuilt files went into (``teiten.store.pack``)."""
    sourced: int = 0
    """Inputs ingested before ``source_ports`` existed that got it (from their packets)."""


def rebuild_sketches(
    settings: Settings, zone: str | None = None, home: str | None = None
) -> SketchResult:
    """Rebuild the day sketches of every input from its ``port_hours`` files, with days cut
    in ``zone`` (default: the store's day zone, else the ``tz`` setting) and ``home``'s
    sources as the domestic segment (default: the store's, else the ``home_country``
    setting), and make them the store's — all in one catalog commit.

    Adds the sketches to stores ingested before they existed, and moves a store's
    sketches to another zone or home country, so the questions asked in those read them.
    Inputs ingested before ``source_ports`` existed get it from their packets
    (``teiten.store.sourceports.build_missing``), in the same commit.
    """
    if zone is not None:
        zone = str(settings.replace(tz=zone).tz)  # checked as the tz setting is
    if home is not None:
        home = str(settings.replace(home_country=home).home_country)  # and so the country
    with Lake(settings.data_dir) as lake:
        lake.lock(wait=float(settings.lock_wait))
        chosen = zone or lake.day_zone() or str(settings.tz)
        country = home or lake.sketch_home() or str(settings.home_country)
        unsourced = lake.unsourced()
        with lake.rewriting() as tx:
            rows = rebuild(tx, SketchCut(chosen, country_code(country)))
            files = len(tx.staged)
            build_missing(tx, unsourced)
            tx.commit_replacements(properties={DAY_ZONE: chosen, SKETCH_HOME: country})
        packed = pack_lake(lake, int(settings.pack_files))
        unrolled = len(lake.unrolled())
        return SketchResult(chosen, country, files, rows, unrolled, packed, len(unsourced))


def pack_lake(lake: Lake, min_files: int) -> Packed:
    """Pack the day tables of every month with ``min_files`` files of one at least
    (``teiten.store.pack``; 0: none), cut as the store's; nothing before the store has
    day tables (its day zone and home country). The lake's writer lock is held."""
    zone, home = lake.day_zone(), lake.sketch_home()
    if not min_files or zone is None or home is None:
        return Packed()
    return pack(lake, SketchCut(zone, country_code(home)), min_files=min_files)


def pack_store(settings: Settings, min_files: int = 2) -> Packed:
    """``teiten pack``: :func:`pack_lake` under the writer lock, in one catalog commit."""
    with Lake(settings.data_dir) as lake:
        lake.lock(wait=float(settings.lock_wait))
        return pack_lake(lake, min_files)
