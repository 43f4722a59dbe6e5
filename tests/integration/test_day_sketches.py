"""The day sketches (``port_sketches``) answer trend, ports and detect within their error.

The seed scenario at a small scale is ingested in Asia/Tokyo: every ``port_hours``
file gets its ``port_sketches`` sketch, and the store's day zone is Asia/Tokyo. With
``exact_rollup_rows = 1`` every per-port question over it reads the sketches; by
default (the store is small) it counts exactly. The two must agree: packets and rows
exactly, sources within the sketch's error. Questions the sketches cannot answer
(another zone, an ASN split, ``sources24``) keep counting exactly. Then the store
changes: ``teiten rollup --zone UTC``, a store whose sketches are gone (written
before they existed) and ``teiten enrich`` rebuild them.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from teiten.analysis.window import Window
from teiten.app.engine import open_engine
from teiten.cli.main import cli
from teiten.config import load_settings
from teiten.simulate import SimulationResult
from teiten.sql import traffic
from teiten.store.lake import Lake
from teiten.store.sketch import coverage

SKETCH = {"TEITEN_EXACT_ROLLUP_ROWS": "1"}
TREND_DOMESTIC = ("trend", "23/tcp", "2323/tcp", "52869/tcp", "--split", "domestic")
TREND_COUNTRY = ("trend", "23/tcp", "445/tcp", "--split", "country")
PORTS = ("ports", "--top", "65536")  # every port: the sets compare whole


def run(store: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {
        "TEITEN_CONFIG": "",
        "TEITEN_TZ": "Asia/Tokyo",
        "TEITEN_HOME_COUNTRY": "JP",
        "TEITEN_PACK_FILES": "0",
    }  # each day file's own tables (packs: test_packs.py)
    r = CliRunner().invoke(
        cli, [*args, "--data", str(store)], env={**base, **(env or {})}, catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    return r.stdout


def rows(store: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(run(store, *args, "--format", "json", env=env))
    assert out, args
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult) -> Path:
    """The seed scenario ingested with ``TEITEN_TZ=Asia/Tokyo`` (never written by the tests)."""
    store = tmp_path_factory.mktemp("sketches") / "store"
    args = ["ingest", *map(str, npa_small.pcaps), "--sensor-net", "203.0.113.0/24"]
    run(store, *args)
    return store


@pytest.fixture
def store(base: Path, tmp_path: Path) -> Path:
    """A copy of the base store that a test may change."""
    copy = tmp_path / "store"
    shutil.copytree(base, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


@pytest.fixture
def sketches(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Per per-port statement built, in order: whether it read the day sketches
    (``sketch_rows``, ``segment_rows``) or counted exactly (the exact per-port statements)."""
    seen: list[bool] = []

    def spy(build: Callable[..., str], sketched: bool) -> Callable[..., str]:
        def built(*args: Any, **kwargs: Any) -> str:
            seen.append(sketched)
            return build(*args, **kwargs)

        return built

    read_sketches = ("sketch_rows", "segment_rows")
    for name in ("port_series", "top_ports", "busy_port_days", *read_sketches):
        monkeypatch.setattr(traffic, name, spy(getattr(traffic, name), name in read_sketches))
    return seen


def close(exact: int, sketched: int) -> bool:
    """Sources from the sketches within their error of the exact count: the standard
    error is 1.04 / sqrt(4096) = 1.6 %, so 5 % is three of them; counts below ~40 are
    (nearly) exact, a few sources sharing a register, so 2 sources of slack there."""
    return abs(sketched - exact) <= max(2, 0.05 * exact)


def catalog_files(store: Path, table: str) -> list[str]:
    with Lake(store) as lake:
        return lake.catalog.files(table)


def day_file(rel: str) -> str:
    """An input's day file of a part file (``sensor=…/date=…/inNNNNNN``), any table."""
    return rel.split("/", 1)[1].rsplit("-", 1)[0]


def day_files(rels: list[str]) -> set[str]:
    return {day_file(r) for r in rels}


def day_zone(store: Path) -> str | None:
    with Lake(store) as lake:
        return lake.catalog.property("day_zone")


def zone_of_coverage(store: Path) -> str | None:
    with Lake(store) as lake:
        return coverage(lake).zone


# --- comparisons ----------------------------------------------------------------


def same_trend(exact: list[dict[str, Any]], approx: list[dict[str, Any]]) -> int:
    """Same rows in the same order and the same packets; sources :func:`close`. Returns
    how many rows' sources differ (the sketches were read, not the exact rows)."""
    assert [(r["port"], r["date"], r["segment"]) for r in approx] == [
        (r["port"], r["date"], r["segment"]) for r in exact
    ]
    assert [r["packets"] for r in approx] == [r["packets"] for r in exact]
    far = [
        (e, a) for e, a in zip(exact, approx, strict=True) if not close(e["sources"], a["sources"])
    ]
    assert not far
    assert sum(r["sources"] for r in exact) > 1000  # a real comparison, not of empty days
    return sum(e["sources"] != a["sources"] for e, a in zip(exact, approx, strict=True))


def same_ports(exact: list[dict[str, Any]], approx: list[dict[str, Any]]) -> int:
    """Same ports and packets, sources :func:`close`, and the same order wherever the exact
    sources of two ports differ by more than both errors."""
    by_port = {r["port"]: r for r in exact}
    assert sorted(by_port) == sorted(r["port"] for r in approx)
    assert len(approx) > 50
    for a in approx:
        e = by_port[a["port"]]
        assert a["packets"] == e["packets"], a
        assert close(e["sources"], a["sources"]), (e, a)
        assert close(e["domestic_sources"], a["domestic_sources"]), (e, a)
    order = [by_port[a["port"]]["sources"] for a in approx]
    for i, hi in enumerate(order):
        for lo in order[i + 1 :]:
            margin = max(2, 0.05 * hi) + max(2, 0.05 * lo)
            assert lo - hi <= margin, (hi, lo)  # a clearly bigger port never ranks lower
    return sum(by_port[a["port"]]["sources"] != a["sources"] for a in approx)


def same_alerts(exact: list[dict[str, Any]], approx: list[dict[str, Any]]) -> None:
    keys = ("kind", "port", "segment", "onset", "last", "state", "campaign")
    assert [{k: a[k] for k in keys} for a in approx] == [{k: a[k] for k in keys} for a in exact]
    for e, a in zip(exact, approx, strict=True):
        assert abs(a["ratio"] - e["ratio"]) <= 0.05 * e["ratio"], (e, a)
        assert abs(a["score"] - e["score"]) <= max(2, 0.05 * e["score"]), (e, a)


# --- ingest ---------------------------------------------------------------------


def test_ingest_writes_a_sketch_beside_every_hourly_rollup(base: Path) -> None:
    hours = catalog_files(base, "port_hours")
    days = catalog_files(base, "port_sketches")
    assert len(hours) >= 79  # a file per UTC day of the scenario at least
    # one sketch per input's day file, however many parts its hourly rollup has
    assert sorted(day_file(d) for d in days) == sorted(day_files(hours))
    on_disk = sorted(str(p.relative_to(base)) for p in (base / "port_sketches").rglob("*.parquet"))
    assert on_disk == sorted(days)
    assert day_zone(base) == "Asia/Tokyo"
    assert zone_of_coverage(base) == "Asia/Tokyo"
    # a sketch holds its day file's hourly rollup packets (all its parts), in fewer rows
    for d in days[:5] + days[-5:]:
        parts = [h for h in hours if day_file(h) == day_file(d)]
        ph = pa.concat_tables([pq.read_table(base / h) for h in parts])
        pd = pq.read_table(base / d)
        assert pc.sum(pd.column("packets")).as_py() == pc.sum(ph.column("packets")).as_py()
        assert 0 < pd.num_rows <= ph.num_rows


# --- the sketches answer within their error --------------------------------------


@pytest.mark.parametrize("args", [TREND_DOMESTIC, TREND_COUNTRY], ids=["domestic", "country"])
def test_trend_from_sketches(base: Path, sketches: list[bool], args: tuple[str, ...]) -> None:
    exact = rows(base, *args)
    assert sketches and not any(sketches)
    sketches.clear()
    approx = rows(base, *args, env=SKETCH)
    assert sketches and all(sketches)
    assert same_trend(exact, approx) > 0  # the sketches' estimates, not the exact count


def test_ports_from_sketches(base: Path, sketches: list[bool]) -> None:
    exact = rows(base, *PORTS)
    assert sketches == [False]
    approx = rows(base, *PORTS, env=SKETCH)
    assert sketches == [False, True]
    assert same_ports(exact, approx) > 0


def test_detect_from_sketches(base: Path, tmp_path: Path, sketches: list[bool]) -> None:
    found = {}
    for name, env in (("exact", {}), ("sketch", SKETCH)):
        copy = tmp_path / name  # detect stores its alerts: a store each
        shutil.copytree(base, copy, ignore=shutil.ignore_patterns(".lock"))
        sketches.clear()
        found[name] = rows(copy, "detect", env=env)
        assert sketches and all(s == (name == "sketch") for s in sketches), name
    assert {a["port"] for a in found["exact"]} >= {"23/tcp", "52869/tcp"}
    same_alerts(found["exact"], found["sketch"])


# --- questions the sketches cannot answer count exactly ------------------------------


@pytest.mark.parametrize(
    "args",
    [
        (*TREND_DOMESTIC, "--tz", "UTC"),  # days of another zone than the store's
        (*PORTS, "--tz", "UTC"),
        ("trend", "23/tcp", "--split", "asn"),
        ("trend", "23/tcp", "52869/tcp", "--measure", "sources24", "--measure", "sources"),
        (
            "trend",
            "23/tcp",
            "--by",
            "hour",
            "--split",
            "country",
            "--from",
            "2017-11-01",
            "--to",
            "2017-11-03",
        ),
    ],
    ids=["trend-utc", "ports-utc", "asn", "sources24", "hours-by-country"],
)
def test_exact_where_sketches_cannot_answer(
    base: Path, sketches: list[bool], args: tuple[str, ...]
) -> None:
    exact = rows(base, *args)
    approx = rows(base, *args, env=SKETCH)
    assert sketches and not any(sketches)
    assert approx == exact


# --- rebuilding the sketches ------------------------------------------------------


def test_rollup_moves_the_day_zone(store: Path, sketches: list[bool]) -> None:
    old = catalog_files(store, "port_sketches")
    out = run(store, "rollup", "--zone", "UTC")
    assert "day zone UTC" in out
    assert day_zone(store) == "UTC" and zone_of_coverage(store) == "UTC"
    new = catalog_files(store, "port_sketches")
    assert len(new) == len(day_files(catalog_files(store, "port_hours"))) == len(old)
    assert not set(new) & set(old)
    assert not any((store / rel).exists() for rel in old)
    assert all((store / rel).exists() for rel in new)
    utc = {"TEITEN_TZ": "UTC"}
    # UTC days now read the sketches...
    sketches.clear()
    approx = rows(store, *TREND_DOMESTIC, env={**utc, **SKETCH})
    assert sketches and all(sketches)
    assert same_trend(rows(store, *TREND_DOMESTIC, env=utc), approx) > 0
    assert same_ports(rows(store, *PORTS, env=utc), rows(store, *PORTS, env={**utc, **SKETCH})) > 0
    # ... and Tokyo days count exactly
    sketches.clear()
    assert rows(store, *TREND_DOMESTIC, env=SKETCH) == rows(store, *TREND_DOMESTIC)
    assert not any(sketches)


def test_rollup_adds_sketches_to_a_store_without_them(store: Path, sketches: list[bool]) -> None:
    gone = catalog_files(store, "port_sketches")
    with sqlite3.connect(store / "catalog.sqlite") as db:  # as written before the sketches
        db.execute("DELETE FROM files WHERE tbl = 'port_sketches'")
    db.close()
    for rel in gone:
        (store / rel).unlink()
    assert catalog_files(store, "port_sketches") == []
    assert zone_of_coverage(store) is None
    exact = rows(store, *TREND_DOMESTIC)
    assert rows(store, *TREND_DOMESTIC, env=SKETCH) == exact
    assert not any(sketches)

    out = run(store, "rollup")  # the store's zone (Asia/Tokyo)
    assert "day zone Asia/Tokyo" in out
    assert zone_of_coverage(store) == "Asia/Tokyo"
    assert len(catalog_files(store, "port_sketches")) == len(
        day_files(catalog_files(store, "port_hours"))
    )
    sketches.clear()
    approx = rows(store, *TREND_DOMESTIC, env=SKETCH)
    assert sketches and all(sketches)
    assert same_trend(exact, approx) > 0


def test_enrich_rebuilds_the_sketches(store: Path, sketches: list[bool]) -> None:
    old = catalog_files(store, "port_sketches")
    run(store, "enrich")
    new = catalog_files(store, "port_sketches")
    assert len(new) == len(old) and not set(new) & set(old)
    assert not any((store / rel).exists() for rel in old)
    assert zone_of_coverage(store) == "Asia/Tokyo"
    for args, same in ((TREND_COUNTRY, same_trend), (PORTS, same_ports)):
        sketches.clear()
        approx = rows(store, *args, env=SKETCH)
        assert sketches and all(sketches)
        assert same(rows(store, *args), approx) > 0


# --- Spark -----------------------------------------------------------------------


@pytest.mark.spark
def test_spark_reads_the_same_sketches(base: Path, sketches: list[bool]) -> None:
    spark_env = {**SKETCH, "TEITEN_SPARK_MASTER": "local[2]"}
    for args in (TREND_DOMESTIC, PORTS):
        sketches.clear()
        duck = rows(base, *args, "--engine", "duckdb", env=SKETCH)
        spark = rows(base, *args, "--engine", "spark", env=spark_env)
        assert sketches == [True, True]
        assert spark == duck


def test_a_ranking_merges_only_its_candidates_and_gives_the_same_answer(base: Path) -> None:
    totals = catalog_files(base, "port_segments")
    assert sorted(totals) == sorted(
        "port_segments/" + d.split("/", 1)[1] for d in catalog_files(base, "port_sketches")
    )
    every = rows(base, *PORTS, env=SKETCH)  # every port's registers merged
    for top in (1, 5, 20):
        assert rows(base, "ports", "--top", str(top), env=SKETCH) == every[:top]
    settings = load_settings(env={}, overrides={"data": str(base), "tz": "Asia/Tokyo"})
    window = Window.from_dates(dt.date(2017, 10, 1), dt.date(2017, 12, 18), "Asia/Tokyo")
    with open_engine(settings) as engine:  # the candidates of a top 5: a few ports, not all
        sql = traffic.port_candidates(engine.dialect, window, top=5)
        candidates = engine.query(sql).to_pylist()
    assert 5 <= len(candidates) < len(every) / 4
    top5 = {r["port"] for r in every[:5]}
    named = {f"{r['dst_port']}/{'tcp' if r['proto'] == 6 else 'udp'}" for r in candidates}
    assert top5 <= named
