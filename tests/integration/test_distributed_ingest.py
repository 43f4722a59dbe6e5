"""Distributed ingest on Spark (``local[2]``) stores exactly what a local ingest stores.

The set: the simulator's smoke capture cut into three captures, three small
captures of tests/data (one of them twice, under another name), a Cowrie log
and a file that is not a capture. Every view is compared row by row on DuckDB,
and so is the catalog. Then: running again is all duplicates; a capture broken
between its admission and its task fails alone; an interrupted commit leaves
no listed partial input and the next run completes; without pyspark the run
is one line and leaves no input registered.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import teiten.app.ingest as app_ingest
from teiten.app.engine import scope
from teiten.app.ingest import ingest
from teiten.cli.ingest import summary
from teiten.cli.main import cli
from teiten.config import Settings, load_settings
from teiten.engine import connect
from teiten.errors import ConfigError
from teiten.pipeline import IngestResult, InputPlan, StagedInput
from teiten.simulate import SimulationResult
from teiten.store.catalog import Catalog
from teiten.store.lake import Lake

pytestmark = pytest.mark.spark

DATA = Path(__file__).parent.parent / "data"
MASTER = "local[2]"


def _split_pcap(path: Path, parts: int, folder: Path) -> list[Path]:
    """Cut a classic pcap into ``parts`` captures of whole records, each with the header."""
    data = path.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    header, at, records = data[:24], 24, []
    while at + 16 <= len(data):
        size = struct.unpack_from(order + "I", data, at + 8)[0]
        records.append(data[at : at + 16 + size])
        at += 16 + size
    assert at == len(data) and len(records) >= parts
    step = -(-len(records) // parts)
    out = []
    for i in range(parts):
        piece = folder / f"{path.stem}-{i + 1}.pcap"
        piece.write_bytes(header + b"".join(records[i * step : (i + 1) * step]))
        out.append(piece)
    return out


def _settings(root: Path) -> Settings:
    return load_settings(
        env={},
        overrides={
            "data": str(root),
            "sensor_networks": ["203.0.113.0/24"],
            "sensor": "tokyo-1",
            "spark_master": MASTER,
        },
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, smoke: SimulationResult) -> list[Path]:
    folder = tmp_path_factory.mktemp("inputs")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    pieces = _split_pcap(smoke.pcaps[0], 3, folder)
    again = folder / "same-as-eth_ipv4.pcap"
    shutil.copyfile(DATA / "eth_ipv4.pcap", again)
    return [
        *pieces,
        DATA / "eth_ipv4.pcap",
        DATA / "eth_ipv6.pcap",
        DATA / "mixed.pcapng",
        again,
        DATA / "cowrie" / "cowrie.json",
        DATA / "README.md",
    ]


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, inputs: list[Path]
) -> dict[str, tuple[Settings, IngestResult]]:
    root = tmp_path_factory.mktemp("stores")
    out = {}
    for name, spark in (("local", False), ("spark", True)):
        settings = _settings(root / name)
        out[name] = (settings, ingest(inputs, settings, spark=spark))
    return out


VIEWS = "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"


def _rows(settings: Settings, sql: str) -> list[tuple[str, ...]]:
    """A query's rows on DuckDB, sorted, as text (the data folder's path made ``DATA``)."""
    root = str(settings.data_dir)
    with Lake(settings.data_dir) as lake:
        engine = connect("duckdb", lake, scope(settings.replace(engine="duckdb")))
        try:
            rows = engine.query(sql).to_pylist()
        finally:
            engine.close()
    return sorted(tuple(repr(v).replace(root, "DATA") for v in r.values()) for r in rows)


def _views(settings: Settings) -> dict[str, list[tuple[str, ...]]]:
    """Every view's rows (the stored tables' too, with their file names)."""
    with Lake(settings.data_dir) as lake:
        engine = connect("duckdb", lake, scope(settings.replace(engine="duckdb")))
        try:
            names = engine.query(VIEWS).column(0).to_pylist()
        finally:
            engine.close()
    return {name: _rows(settings, f"SELECT * FROM {name}") for name in names}


def _catalog(settings: Settings) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The catalog's inputs (without times) and listed files, in order."""
    with sqlite3.connect(settings.data_dir / "catalog.sqlite") as db:
        inputs = db.execute(
            "SELECT id, path, size, sha256, sensor, status, records, packets, malformed,"
            " skipped, enrichment, message FROM inputs ORDER BY id"
        ).fetchall()
        files = db.execute(
            "SELECT input_id, tbl, path, rows FROM files ORDER BY input_id, tbl, path"
        ).fetchall()
    return inputs, files


def _lines(result: IngestResult) -> list[str]:
    """The summary a command prints, without its timings."""
    return [re.sub(r"in [0-9.]+s.*", "in …", line) for line in summary(result)]


def test_spark_stores_exactly_what_a_local_ingest_stores(
    stores: dict[str, tuple[Settings, IngestResult]],
) -> None:
    (local, _), (spark, _) = stores["local"], stores["spark"]
    views = _views(local)
    assert views["packets"] and views["sessions"] and views["logins"]
    assert _views(spark) == views
    assert _catalog(spark) == _catalog(local)


def test_spark_reports_what_a_local_ingest_reports(
    stores: dict[str, tuple[Settings, IngestResult]],
) -> None:
    (_, local), (_, spark) = stores["local"], stores["spark"]
    assert [r.status for r in spark.inputs] == [
        *["ingested"] * 6, "duplicate", "ingested", "failed"
    ]  # fmt: skip
    assert "already ingested as input 4" in spark.inputs[6].message
    assert _lines(spark) == _lines(local)
    assert not spark.error


def test_running_again_is_all_duplicates(
    stores: dict[str, tuple[Settings, IngestResult]], inputs: list[Path]
) -> None:
    settings, _ = stores["spark"]
    before = _catalog(settings)
    again = ingest(inputs[:-1], settings, spark=True)
    assert [r.status for r in again.inputs] == ["duplicate"] * (len(inputs) - 1)
    assert again.packets == 0
    assert _catalog(settings) == before


@pytest.fixture
def copies(tmp_path: Path, inputs: list[Path]) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    out = []
    for p in inputs[:-1]:
        if p.name != "same-as-eth_ipv4.pcap":
            out.append(folder / p.name)
            shutil.copyfile(p, out[-1])
    return out


def test_a_capture_broken_after_its_admission_fails_alone(
    tmp_path: Path,
    copies: list[Path],
    stores: dict[str, tuple[Settings, IngestResult]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = copies[1]
    real = app_ingest._run_tasks

    def run_tasks(lake: Lake, plans: list[InputPlan], *rest: Any) -> dict[int, StagedInput]:
        broken.write_bytes(b"no longer a capture")  # the executor finds it so
        return real(lake, plans, *rest)

    monkeypatch.setattr(app_ingest, "_run_tasks", run_tasks)
    settings = _settings(tmp_path / "store")
    result = ingest(copies, settings, spark=True)
    assert [r.path for r in result.failed] == [str(broken)]
    assert "not a pcap or pcapng file" in result.failed[0].message
    assert sum(r.status == "ingested" for r in result.inputs) == len(copies) - 1
    assert not result.error
    inputs, files = _catalog(settings)
    status = {row[1]: row[5] for row in inputs}
    assert status[str(broken)] == "failed"
    broken_id = next(row[0] for row in inputs if row[1] == str(broken))
    assert [f for f in files if f[0] == broken_id] == []
    assert not any((settings.data_dir / ".staging").rglob("*.parquet"))
    # What the others stored is what the local ingest stored of them.
    local_packets = _views(stores["local"][0])["packets"]
    assert 0 < len(_views(settings)["packets"]) < len(local_packets)


class Interrupted(BaseException):
    """The driver killed (as ``KeyboardInterrupt`` would, but pytest's own stays its own)."""


def test_an_interrupted_run_lists_no_partial_input_and_the_next_run_completes(
    tmp_path: Path,
    copies: list[Path],
    stores: dict[str, tuple[Settings, IngestResult]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Catalog.commit
    calls: list[int] = []

    def commit(self: Catalog, input_id: int, *args: Any, **kwargs: Any) -> None:
        calls.append(input_id)
        if len(calls) == 2:  # the driver dies inside the second input's commit
            raise Interrupted
        real(self, input_id, *args, **kwargs)

    monkeypatch.setattr(Catalog, "commit", commit)
    settings = _settings(tmp_path / "store")
    with pytest.raises(Interrupted):
        ingest(copies, settings, spark=True)
    inputs, files = _catalog(settings)
    assert [row[5] for row in inputs] == ["done", *["failed"] * (len(copies) - 1)]
    assert {f[0] for f in files} == {inputs[0][0]}
    first = "SELECT * FROM packets WHERE input_id = 1"  # the first capture in both stores
    assert _rows(settings, first) == _rows(stores["local"][0], first) != []
    monkeypatch.setattr(Catalog, "commit", real)

    result = ingest(copies, settings, spark=True)
    assert [r.status for r in result.inputs] == ["duplicate", *["ingested"] * (len(copies) - 1)]
    local = _views(stores["local"][0])
    now = _views(settings)
    for name in ("packets", "logins"):  # (session ids name their inputs, which differ)
        assert len(now[name]) == len(local[name]) > 0
    assert len(now["sessions"]) == len(local["sessions"])
    assert not any((settings.data_dir / ".staging").rglob("*.parquet"))


def test_without_pyspark_the_run_is_one_line_and_registers_nothing_for_good(
    tmp_path: Path, copies: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import teiten.engine.spark as spark_engine

    def no_pyspark(master: str) -> Any:
        raise ConfigError("engine 'spark' needs pyspark: pip install -e '.[spark]'")

    monkeypatch.setattr(spark_engine, "session", no_pyspark)
    data = tmp_path / "store"
    args = ["ingest", *map(str, copies[:2]), "--engine", "spark", "--data", str(data)]
    r = CliRunner().invoke(cli, args, env={"TEITEN_CONFIG": ""})
    assert r.exit_code == 1
    assert "needs pyspark" in r.output and "Traceback" not in r.output
    inputs, files = _catalog(_settings(data))
    assert [row[5] for row in inputs] == ["failed", "failed"] and files == []


def test_a_task_writes_only_its_staging_folder_and_opens_no_catalog(tmp_path: Path) -> None:
    from teiten.pipeline import IngestOptions
    from teiten.pipeline.detached import stage_detached
    from teiten.pipeline.identity import quick_key

    capture = DATA / "eth_ipv4.pcap"
    options = IngestOptions.of(_settings(tmp_path))
    size = capture.stat().st_size
    plan = InputPlan(str(capture), 7, size, quick_key(capture, size))
    staged = stage_detached(str(tmp_path), options, plan)
    assert staged.error == "" and staged.result.packets == 13
    assert staged.sha256 == hashlib.sha256(capture.read_bytes()).hexdigest()
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert written == sorted(f".staging/000007/{f.path}" for f in staged.files)
    assert {f.table for f in staged.files} >= {"packets", "sessions"}
    assert [p.name for p in tmp_path.iterdir()] == [".staging"]  # no catalog.sqlite, no lock

    broken = tmp_path / "gone.pcap"
    failed = stage_detached(str(tmp_path), options, replace(plan, path=str(broken), input_id=8))
    assert failed.error_kind == "input" and "gone.pcap" in failed.error
    assert failed.files == [] and not (tmp_path / ".staging" / "000008").exists()


def test_a_failed_spark_job_fails_every_input_of_the_run_in_one_line(
    tmp_path: Path, copies: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The task's Python worker dies (as on a lost executor): Spark aborts the job.
    monkeypatch.setattr(app_ingest, "stage_detached", lambda root, options, plan: os._exit(3))
    settings = _settings(tmp_path / "store")
    result = ingest(copies[:2], settings, spark=True)
    assert [r.status for r in result.inputs] == ["failed", "failed"]
    message = result.inputs[0].message
    assert message.startswith("the Spark job failed: ") and "\n" not in message
    inputs, files = _catalog(settings)
    assert [row[5] for row in inputs] == ["failed", "failed"] and files == []
    # The session is still good for the next run.
    monkeypatch.undo()
    again = ingest(copies[:2], settings, spark=True)
    assert [r.status for r in again.inputs] == ["ingested", "ingested"]
