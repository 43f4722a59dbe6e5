"""Hourly series from the hour sketches of busy port days (teiten.store.hoursketch) against
the exact rows: packets equal, sources within the sketch's error, and the exact rows read
wherever a port day is quiet in a file, the split needs countries, or the store lacks them."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from teiten.analysis import sketches
from teiten.app.ingest import ingest
from teiten.app.traffic import port_trend
from teiten.config import Settings, load_settings
from teiten.simulate import SimulationResult
from teiten.store.lake import Lake

WINDOW = ("2017-10-31", "2017-11-01")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, smoke: SimulationResult) -> Settings:
    settings = load_settings(
        env={},
        overrides={
            "data": str(tmp_path_factory.mktemp("hours") / "store"),
            "sensor_networks": ["203.0.113.0/24"],
            "tz": "Asia/Tokyo",
        },
    )
    ingest(list(smoke.pcaps), settings)
    return settings


def _trend(settings: Settings, port: str, split: str, calls: list[int]) -> list[dict[str, Any]]:
    return port_trend(settings, [port], first=WINDOW[0], last=WINDOW[1], by="hour", split=split)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = sketches.hour_series

    def spy(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sketches, "hour_series", spy)
    return seen


@pytest.mark.parametrize("split", ["none", "domestic"])
@pytest.mark.parametrize("port", ["23/tcp", "2323/tcp", "52869/tcp"])
def test_busy_ports_read_the_hour_sketches(
    store: Settings, port: str, split: str, calls: list[int]
) -> None:
    exact = _trend(store, port, split, calls)
    assert not calls  # few rows: exact
    sketched = _trend(store.replace(exact_rollup_rows=1), port, split, calls)
    assert calls  # the rows of the window are over exact_rollup_rows: the sketches
    assert [(r["hour"], r["segment"], r["packets"]) for r in sketched] == [
        (r["hour"], r["segment"], r["packets"]) for r in exact
    ]
    assert sum(r["packets"] for r in exact) > 0
    for a, b in zip(exact, sketched, strict=True):
        assert abs(b["sources"] - a["sources"]) <= max(2, 0.08 * a["sources"]), (a, b)
        assert (a["sources"] == 0) == (b["sources"] == 0)


def test_country_splits_stay_exact(store: Settings, calls: list[int]) -> None:
    _trend(store.replace(exact_rollup_rows=1), "23/tcp", "country", calls)
    assert not calls


def test_a_file_without_the_ports_hour_sketches_makes_the_series_exact(
    store: Settings, tmp_path: Path, calls: list[int]
) -> None:
    shutil.copytree(store.data_dir, tmp_path / "store")
    settings = store.replace(data=str(tmp_path / "store"), exact_rollup_rows=1)
    with Lake(settings.data_dir) as lake:
        path = lake.files("port_hour_segments")[0]
    rows = pq.read_table(path)
    kept = rows.filter(pc.not_equal(rows.column("dst_port"), 23))
    assert kept.num_rows < rows.num_rows
    pq.write_table(kept, path)  # as if port 23 had been quiet in that file
    exact = _trend(store, "23/tcp", "none", calls)
    assert _trend(settings, "23/tcp", "none", calls) == exact and not calls
    _trend(settings, "2323/tcp", "none", calls)
    assert calls  # the other ports still read them


def test_a_store_without_hour_sketches_reads_the_exact_rows(
    store: Settings, tmp_path: Path, calls: list[int]
) -> None:
    shutil.copytree(store.data_dir, tmp_path / "store")
    settings = store.replace(data=str(tmp_path / "store"), exact_rollup_rows=1)
    catalog = sqlite3.connect(settings.data_dir / "catalog.sqlite")
    with catalog:  # as if ingested before the hour sketches existed
        catalog.execute("DELETE FROM files WHERE tbl = 'port_hour_segments'")
    catalog.close()
    exact = _trend(store, "23/tcp", "none", calls)
    assert _trend(settings, "23/tcp", "none", calls) != [] and not calls
    with Lake(settings.data_dir) as lake:
        assert lake.unsketched(("port_hour_segments",))
    from teiten.app.sketches import rebuild_sketches

    rebuild_sketches(settings)  # teiten rollup adds them
    sketched = _trend(settings, "23/tcp", "none", calls)
    assert calls and [r["packets"] for r in sketched] == [r["packets"] for r in exact]
