"""Packs: each (sensor, UTC month)'s day table files merged into one (``teiten.store.pack``).

The seed scenario at a small scale is ingested twice in Asia/Tokyo: never packed
(``TEITEN_PACK_FILES=0``: a file per UTC day and table) and by default (packed at the
end of the ingest: a pack per month and table). With ``exact_rollup_rows = 1`` every
per-port question reads the day tables, and the two stores must answer alike:
packets and sources exactly (a pack's registers are the maximum of its files', as a
reader merges them), the port page's busiest sources within their bound. Then the
store changes: a second input, ``teiten pack``, ``teiten rollup`` and ``teiten
enrich``, and a packing that fails halfway.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

import teiten.store.pack
from teiten.app.portview import PortQuery, port_view
from teiten.app.sketches import pack_store
from teiten.cli.main import cli
from teiten.config import Settings, load_settings
from teiten.errors import StoreError
from teiten.simulate import SimulationResult, simulate
from teiten.sql import traffic
from teiten.store.arrow import DayTableWriter
from teiten.store.catalog import Catalog
from teiten.store.lake import Lake
from teiten.store.pack import PACKED_TABLES
from teiten.store.sketch import SKETCH_TABLES

Rows = list[dict[str, Any]]
ENV = {"TEITEN_CONFIG": "", "TEITEN_TZ": "Asia/Tokyo", "TEITEN_HOME_COUNTRY": "JP"}
UNPACKED = {"TEITEN_PACK_FILES": "0"}
SKETCH = {"TEITEN_EXACT_ROLLUP_ROWS": "1"}
TREND = ("trend", "23/tcp", "2323/tcp", "52869/tcp", "--split", "domestic")
PORTS = ("ports", "--top", "65536")
VIEW_PORTS = ("23/tcp", "2323/tcp", "52869/tcp")
MONTHS = ("2017-10", "2017-11", "2017-12")  # the UTC months of the scenario's days
# Port days busy in one UTC day's file and quiet in the other's: a pack keeps a busy and
# a quiet list of them, whose floors add up (``teiten.sql.portview.port_top_rows``).
SPLIT_DAYS = [("52869/tcp", "2017-12-07"), ("52869/tcp", "2017-12-13")]
NOVEMBER_FIRST = [(p, d) for p in ("23/tcp", "52869/tcp") for d in ("2017-11-01", "2017-11-02")]


def invoke(store: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "--data", str(store)], env={**ENV, **(env or {})})


def run(store: Path, *args: str, env: dict[str, str] | None = None) -> str:
    r = invoke(store, *args, env=env)
    assert r.exit_code == 0 and r.exception is None, (r.output, r.exception)
    return r.stdout


def rows(store: Path, *args: str, env: dict[str, str] | None = None) -> Rows:
    out: Rows = json.loads(run(store, *args, "--format", "json", env=env))
    assert out, args
    return out


def ingest(store: Path, *pcaps: Path, env: dict[str, str] | None = None) -> str:
    return run(store, "ingest", *map(str, pcaps), "--sensor-net", "203.0.113.0/24", env=env)


def copy(base: Path, to: Path) -> Path:
    shutil.copytree(base, to, ignore=shutil.ignore_patterns(".lock"))
    return to


def listed(store: Path, table: str) -> list[str]:
    with Lake(store) as lake:
        return lake.catalog.files(table)


def packs(store: Path, table: str) -> dict[str, list[int]]:
    """A table's packs: path → inputs."""
    with Lake(store) as lake:
        return {path: inputs for path, _, inputs in lake.catalog.packs(table)}


def on_disk(store: Path, table: str) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in (store / table).rglob("*.parquet"))


def prefixes(table: str) -> list[str]:
    """The packs' names of each month without their serial number."""
    return [f"{table}/sensor=sensor/date={m}-01/pack{m.replace('-', '')}" for m in MONTHS]


def strip(files: list[str]) -> list[str]:
    """Names without the serial number that makes each pack's name new."""
    return [f.rsplit("-", 1)[0] for f in files]


def settings(store: Path, **env: str) -> Settings:
    return load_settings(
        env=env, overrides={"data": str(store), "tz": "Asia/Tokyo", "home_country": "JP"}
    )


def answers(store: Path) -> dict[str, Rows]:
    """Trend and ports over every day, from the day tables."""
    return {"trend": rows(store, *TREND, env=SKETCH), "ports": rows(store, *PORTS, env=SKETCH)}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """A second capture: the smoke scenario (2017-10-31 and 2017-11-01, UTC)."""
    return simulate("smoke", tmp_path_factory.mktemp("smoke"), seed=1)


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult) -> Path:
    store = tmp_path_factory.mktemp("unpacked") / "store"
    ingest(store, *npa_small.pcaps, env=UNPACKED)
    return store


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult) -> Path:
    store = tmp_path_factory.mktemp("packed") / "store"
    (store.parent / "ingest.txt").write_text(ingest(store, *npa_small.pcaps))  # pack_files 8
    return store


@pytest.fixture(scope="module")
def expected(unpacked: Path) -> dict[str, Rows]:
    return answers(unpacked)


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult, smoke: SimulationResult
) -> Path:
    """Both captures, never packed."""
    store = tmp_path_factory.mktemp("both") / "store"
    ingest(store, *npa_small.pcaps, *smoke.pcaps, env=UNPACKED)
    return store


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The per-port statements built, by name (day tables: ``sketch_rows``, ``segment_rows``)."""
    seen: list[str] = []

    def spy(name: str, build: Callable[..., str]) -> Callable[..., str]:
        return lambda *args, **kwargs: seen.append(name) or build(*args, **kwargs)

    for name in ("port_series", "top_ports", "busy_port_days", "sketch_rows", "segment_rows"):
        monkeypatch.setattr(traffic, name, spy(name, getattr(traffic, name)))
    return seen


def assert_sketched(read: list[str]) -> None:
    assert read and set(read) <= {"sketch_rows", "segment_rows"}, read


# --- ingest packs ------------------------------------------------------------------


def test_ingest_packs_each_month_and_table(unpacked: Path, packed: Path) -> None:
    out = (packed.parent / "ingest.txt").read_text()
    assert f"packed {79 * len(PACKED_TABLES)} derived files by month" in out  # 79 UTC days
    for store in (unpacked, packed):
        with Lake(store) as lake:
            assert [r.id for r in lake.catalog.inputs()] == [1]
            assert lake.unsketched(SKETCH_TABLES) == []
    assert listed(packed, "port_hours") == listed(unpacked, "port_hours")
    assert not list((packed / ".staging").rglob("*.parquet"))
    for table in PACKED_TABLES:
        files = listed(unpacked, table)
        assert len(files) == 79 and packs(unpacked, table) == {}
        assert sorted({f.split("/")[2][5:12] for f in files}) == list(MONTHS)
        names = listed(packed, table)
        assert strip(names) == prefixes(table) and on_disk(packed, table) == names  # day files gone
        folders = sorted(p.name for p in (packed / table / "sensor=sensor").iterdir())
        assert folders == [f"date={m}-01" for m in MONTHS]  # their emptied folders too
        assert packs(packed, table) == {name: [1] for name in names}
        if table == "address_hours":  # the same rows, each once, by address then hour
            rows = [pa.concat_tables([pq.read_table(s / f) for f in listed(s, table)])
                    for s in (unpacked, packed)]  # fmt: skip
            assert sorted(rows[0].to_pylist(), key=str) == sorted(rows[1].to_pylist(), key=str)
            for f in listed(packed, table):
                t = pq.read_table(packed / f)
                key = [(r["dst_ip4"], r["hour"]) for r in t.to_pylist() if r["ip_version"] == 4]
                assert key == sorted(key) and key
            continue
        total = [
            sum(pc.sum(pq.read_table(s / f).column("packets")).as_py() for f in listed(s, table))
            for s in (unpacked, packed)
        ]
        if table == "port_tops":  # lists cut again when merged: fewer packets listed
            assert 0 < total[1] < total[0]
        else:
            assert total[1] == total[0] > 0, table


def test_packed_answers_equal_unpacked(
    unpacked: Path, packed: Path, expected: dict[str, Rows], read: list[str]
) -> None:
    got = answers(packed)
    assert_sketched(read)
    assert sum(r["sources"] for r in got["trend"]) > 1000 and len(got["ports"]) > 50
    assert got == expected  # sources exactly: the registers merge by maximum
    for top in (1, 5, 20):  # a ranking merges only its candidates (bounds by port_segments)
        assert rows(packed, "ports", "--top", str(top), env=SKETCH) == expected["ports"][:top]
    country = ("trend", "23/tcp", "445/tcp", "--split", "country")
    assert rows(packed, *country, env=SKETCH) == rows(unpacked, *country, env=SKETCH)


def test_packed_alerts_equal_unpacked(unpacked: Path, packed: Path, tmp_path: Path) -> None:
    alerts = [
        rows(copy(s, tmp_path / n), "detect", env=SKETCH)
        for n, s in (("u", unpacked), ("p", packed))
    ]
    assert {a["port"] for a in alerts[0]} >= {"23/tcp", "52869/tcp"}
    assert alerts[1] == alerts[0]


def same_page(reference: Path, store: Path, port: str, day: str | None = None) -> None:
    """The port page of ``store`` from its day tables: the fingerprints, countries and ASNs
    of the ``reference`` store's day tables, and each listed source's packets a lower bound
    at most ``floor`` below the exact count (the floor no lower than the reference's)."""
    query = PortQuery(first=day, last=day, top=10_000)
    exact = port_view(settings(reference), port, query)
    views = [port_view(settings(s, **SKETCH), port, query) for s in (reference, store)]
    assert exact["estimate"] is None and all(v["estimate"] is not None for v in views)
    for part in ("fingerprints", "countries", "asns"):
        assert views[1][part] == views[0][part] and views[0][part], part
    true = {r["src"]: r["packets"] for r in exact["sources"]}
    floors = [v["estimate"]["floor"] for v in views]
    assert floors[1] >= floors[0]  # a merged list may leave out more, never less
    for view, floor in zip(views, floors, strict=True):
        shown = {r["src"]: r["packets"] for r in view["sources"]}
        assert shown and set(shown) <= set(true)
        for src, packets in true.items():
            assert shown.get(src, 0) <= packets <= shown.get(src, 0) + floor, (src, floor)


@pytest.mark.parametrize(("port", "day"), [*((p, None) for p in VIEW_PORTS), *SPLIT_DAYS])
def test_packed_port_page(unpacked: Path, packed: Path, port: str, day: str | None) -> None:
    same_page(unpacked, packed, port, day)


# --- a second input, teiten pack -----------------------------------------------------


def test_a_later_input_adds_files_that_pack_takes_in(
    packed: Path, both: Path, smoke: SimulationResult, tmp_path: Path, read: list[str]
) -> None:
    store = copy(packed, tmp_path / "store")
    assert "packed" not in ingest(store, *smoke.pcaps)  # 2 files a table in Oct. and Nov.: < 8
    want = answers(both)
    with Lake(store) as lake:
        assert [r.id for r in lake.catalog.inputs()] == [1, 2]
        assert lake.unsketched(SKETCH_TABLES) == []
    old = {}
    for table in PACKED_TABLES:
        own = [f for f in listed(store, table) if "/pack" not in f]
        assert len(own) == 2 and all("/in000002-" in f for f in own), own
        old[table] = listed(store, table)[-3:]
        assert strip(old[table]) == prefixes(table)  # packs last
    read.clear()
    assert answers(store) == want
    assert_sketched(read)

    assert run(store, "pack").startswith("packed 28 files into 14 for 2 month(s), ")
    for table in PACKED_TABLES:
        names = sorted(listed(store, table))
        assert names == on_disk(store, table) and strip(names) == prefixes(table)
        assert names[2] == old[table][2]  # December untouched; October and November new
        assert names[0] != old[table][0] and names[1] != old[table][1]
        assert packs(store, table) == dict(zip(names, ([1, 2], [1, 2], [1]), strict=True))
    assert answers(store) == want
    for port, day in [*((p, None) for p in VIEW_PORTS), *SPLIT_DAYS, *NOVEMBER_FIRST]:
        same_page(both, store, port, day)
    assert run(store, "pack").strip() == "nothing to pack"


def test_nothing_to_pack(packed: Path, tmp_path: Path) -> None:
    store = copy(packed, tmp_path / "store")
    assert run(store, "pack").strip() == "nothing to pack"
    assert run(store, "pack", "--min-files", "2").strip() == "nothing to pack"
    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty", "pack").strip() == "nothing to pack"
    r = invoke(store, "pack", "--min-files", "1")
    assert r.exit_code == 1  # a usage error, as every command's (tests/integration/test_cli.py)
    assert "Invalid value for '--min-files'" in r.output and "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    r = invoke(tmp_path / "none", "pack")
    assert r.exit_code == 1 and "no data directory" in r.output


def test_pack_min_files(unpacked: Path, tmp_path: Path) -> None:
    store = copy(unpacked, tmp_path / "store")
    # October has 31 files of a table, November 30, December 18 (UTC days)
    assert run(store, "pack", "--min-files", "31").startswith("packed 217 files into 7 for 1 ")
    assert (
        strip([f for f in listed(store, "port_tops") if "/pack" in f]) == prefixes("port_tops")[:1]
    )
    assert run(store, "pack", "--min-files", "31").strip() == "nothing to pack"


# --- rebuilds pack again -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "packed_after"),
    [(("rollup",), {}, True), (("enrich",), {}, True), (("rollup",), UNPACKED, False)],
    ids=["rollup", "enrich", "rollup-unpacked"],
)
def test_rebuilds_pack_again(
    packed: Path, expected: dict[str, Rows], tmp_path: Path,
    args: tuple[str, ...], env: dict[str, str], packed_after: bool,
) -> None:  # fmt: skip
    store = copy(packed, tmp_path / "store")
    out = run(store, *args, env=env)
    if args == ("rollup",):
        assert f"packed into {15 if packed_after else 0} files for" in out
    for table in SKETCH_TABLES:
        files = listed(store, table)
        assert on_disk(store, table) == sorted(files)
        if packed_after:  # a pack a month again (the old ones gone: their names free)
            assert strip(files) == prefixes(table)
            assert not set(files) & set(listed(packed, table))  # new names
            assert packs(store, table) == {f: [1] for f in files}
        else:
            assert len(files) == 79 and packs(store, table) == {}
    assert answers(store) == expected


# --- a packing that fails -----------------------------------------------------------


def test_a_failed_write_leaves_the_files(
    unpacked: Path, expected: dict[str, Rows], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = copy(unpacked, tmp_path / "store")
    before = {t: listed(store, t) for t in PACKED_TABLES}
    write, staged = DayTableWriter.write, []

    def full(self: DayTableWriter, data: Any) -> None:
        stage = store / ".staging" / "rewrite"
        if list(stage.glob("port_groups/*/date=2017-11-01/pack*.parquet")):
            staged.extend(on_disk(stage, "port_groups"))
            raise OSError(28, "No space left on device")  # halfway through November
        write(self, data)

    monkeypatch.setattr(DayTableWriter, "write", full)
    with pytest.raises(OSError, match="No space"):
        pack_store(settings(store))
    monkeypatch.undo()
    assert strip(staged) == prefixes("port_groups")[:2]  # November's half written
    assert {t: listed(store, t) for t in PACKED_TABLES} == before
    assert all(on_disk(store, t) == sorted(before[t]) for t in PACKED_TABLES)
    assert not list((store / ".staging").rglob("*.parquet"))
    assert answers(store) == expected
    assert run(store, "pack").startswith("packed 553 files into 21 for 3 month(s)")
    assert answers(store) == expected


def test_a_failed_catalog_commit_leaves_the_files(
    unpacked: Path, expected: dict[str, Rows], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = copy(unpacked, tmp_path / "store")
    before = {t: listed(store, t) for t in PACKED_TABLES}

    def broken(*args: Any, **kwargs: Any) -> None:
        raise StoreError("database is locked")

    monkeypatch.setattr(Catalog, "replace", broken)
    with pytest.raises(StoreError):
        pack_store(settings(store))
    monkeypatch.undo()
    assert {t: listed(store, t) for t in PACKED_TABLES} == before
    for t in SKETCH_TABLES:  # published, not listed: never read
        assert [f for f in on_disk(store, t) if "/pack" not in f] == sorted(before[t])
        assert strip([f for f in on_disk(store, t) if "/pack" in f]) == prefixes(t)
    assert answers(store) == expected
    assert run(store, "pack").startswith("packed 553 files")  # the next writer tidies up
    assert all(strip(on_disk(store, t)) == prefixes(t) for t in SKETCH_TABLES)
    assert answers(store) == expected


def test_ingest_warns_when_packing_fails(
    npa_small: SimulationResult,
    expected: dict[str, Rows],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(teiten.store.pack, "pack_month", full)
    out = ingest(tmp_path / "store", *npa_small.pcaps)
    monkeypatch.undo()
    assert "warning: day tables not packed: [Errno 28] No space left on device" in out, out
    assert "packed" not in out.replace("not packed", "")
    assert all(len(listed(tmp_path / "store", t)) == 79 for t in SKETCH_TABLES)
    assert not any(packs(tmp_path / "store", t) for t in SKETCH_TABLES)
    assert answers(tmp_path / "store") == expected


# --- Spark -------------------------------------------------------------------------


@pytest.mark.spark
def test_spark_reads_packs(packed: Path, read: list[str]) -> None:
    spark = {**SKETCH, "TEITEN_SPARK_MASTER": "local[2]"}
    duck = rows(packed, *TREND, "--engine", "duckdb", env=SKETCH)
    assert rows(packed, *TREND, "--engine", "spark", env=spark) == duck
    assert_sketched(read)
