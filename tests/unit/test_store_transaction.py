"""The lake's one write protocol: stage, publish, list in one catalog transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from teiten.app.backcheck import load_probes, store_probes
from teiten.backcheck.model import Probe, to_table
from teiten.config import load_settings
from teiten.decode.batch import empty_columns
from teiten.schema import LOGINS, ROLLUPS, SESSIONS
from teiten.store.arrow import table_schema
from teiten.store.budget import QUARANTINE
from teiten.store.lake import NS_PER_DAY, Lake
from teiten.store.paths import part_path
from teiten.store.sketch import SketchCut
from teiten.store.transaction import Transaction
from teiten.store.writers import PacketWriter, TableWriter

DAY0 = 17440  # 2017-10-01


def _packets(n: int, day: int = DAY0) -> dict[str, np.ndarray]:
    c = empty_columns(n)
    c["ts"] = (day * NS_PER_DAY + np.arange(n) * 1_000_000).astype(np.int64)
    c["ip_version"][:] = 4
    c["src_ip4"] = np.arange(n, dtype=np.uint32) + 0x01000000
    c["proto"][:] = 6
    c["dst_port"][:] = 23
    return c


def _rows(columns: tuple, n: int, ts_column: str, day: int = DAY0) -> pa.Table:
    schema = table_schema(columns)
    values: dict[str, list[object]] = {}
    for f in schema:
        if f.name == ts_column:
            values[f.name] = [day * NS_PER_DAY + i for i in range(n)]
        elif pa.types.is_list(f.type):
            values[f.name] = [[] for _ in range(n)]
        elif pa.types.is_string(f.type):
            values[f.name] = [f"v{i}" for i in range(n)]
        elif pa.types.is_fixed_size_binary(f.type):
            values[f.name] = [None] * n
        elif pa.types.is_binary(f.type):
            values[f.name] = [b""] * n
        elif pa.types.is_boolean(f.type):
            values[f.name] = [False] * n
        elif pa.types.is_struct(f.type) or pa.types.is_list(f.type):
            values[f.name] = [None] * n
        else:
            values[f.name] = [4] * n
    return pa.table(values, schema=schema)


def _stage_every_table(lake: Lake, tx: Transaction) -> None:
    assert tx.input_id is not None
    w = PacketWriter(lake, tx.input_id, "s1", row_group_rows=64, cut=SketchCut("UTC", 1))
    w.write(_packets(100))
    w.close()
    for table, columns, ts in (("sessions", SESSIONS, "ts_first"), ("logins", LOGINS, "ts")):
        t = TableWriter(lake, tx.input_id, "s1", table, table_schema(columns), ts)
        t.write(_rows(columns, 3, ts))
        t.close()
    probe = Probe("198.51.100.7", 52869)
    tx.write("probes", "s1", DAY0, to_table([probe]))


def _parquet_on_disk(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*.parquet")
        if ".staging" not in p.relative_to(root).parts
    }


def _listed(lake: Lake) -> set[str]:
    tables = ("packets", "sessions", "logins", "probes", "packets_quarantine", *ROLLUPS)
    return {p for t in tables for p in lake.catalog.files(t)}


def test_every_table_of_an_input_is_listed_in_one_commit(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        with lake.begin("x.pcap", 1, "h", "s1") as tx:
            _stage_every_table(lake, tx)
            assert _listed(lake) == set() and _parquet_on_disk(tmp_path) == set()
            files = tx.commit(records=100, packets=100, malformed={}, skipped={}, enrichment="test")
        assert tx.input_id is not None
        for table in ("packets", "sessions", "logins", "probes", *ROLLUPS):
            assert lake.catalog.files(table) == [part_path(table, "s1", DAY0, tx.input_id)]
        assert {f[0] for f in files} == {"packets", "sessions", "logins", "probes", *ROLLUPS}
        assert _parquet_on_disk(tmp_path) == _listed(lake)
        assert not tx.stage.exists()
        assert [r.status for r in lake.catalog.inputs()] == ["done"]


def test_an_exception_before_commit_lists_nothing_and_leaves_no_stray_file(
    tmp_path: Path,
) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        with pytest.raises(RuntimeError, match="crash"), lake.begin("x", 1, "h", "s1") as tx:
            _stage_every_table(lake, tx)
            tx.publish()  # the files are in place, not listed yet
            assert len(_parquet_on_disk(tmp_path)) == 4 + len(ROLLUPS)
            raise RuntimeError("crash")
        assert _listed(lake) == set()
        assert [(r.status, r.message) for r in lake.catalog.inputs()] == [("failed", "crash")]
        lake.unlock()
        lake.lock()  # the next writer's cleanup
        assert _parquet_on_disk(tmp_path) == set()
        assert not (tmp_path / ".staging").exists() or not any((tmp_path / ".staging").iterdir())


def test_a_refused_catalog_commit_lists_none_of_the_files(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        with lake.begin("a", 1, "same", "s1") as tx:
            tx.write("probes", "s1", DAY0, to_table([Probe("198.51.100.7", 80)]))
            tx.commit(records=1, packets=0, malformed={}, skipped={}, enrichment="")
        with pytest.raises(sqlite3.IntegrityError), lake.begin("b", 1, "", "s1") as tx:
            _stage_every_table(lake, tx)
            # the same content hash as a done input: the input row's update fails,
            # and the files inserted before it in the transaction go with it
            tx.commit(records=1, packets=0, malformed={}, skipped={}, enrichment="", sha256="same")
        assert len(_listed(lake)) == 1
        lake.unlock()
        lake.lock()
        assert _parquet_on_disk(tmp_path) == _listed(lake)


def test_quarantined_rows_take_the_same_path_format(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        with lake.begin("x", 1, "h", "s1") as tx:
            assert tx.input_id is not None
            w = PacketWriter(lake, tx.input_id, "s1")
            c = _packets(4)
            c["ts"][2:] = 5  # 1970: implausible
            w.write(c)
            w.close()
            tx.commit(records=4, packets=4, malformed={}, skipped={}, enrichment="")
        assert lake.catalog.files("packets_quarantine") == [
            part_path("packets", "s1", QUARANTINE, tx.input_id)
        ]
    assert (
        part_path("logins", "s", QUARANTINE, 7, 2)
        == "quarantine/logins/sensor=s/in000007-002.parquet"
    )
    assert (
        part_path("probes", "s", DAY0, 7) == "probes/sensor=s/date=2017-10-01/in000007-000.parquet"
    )


def test_back_check_runs_go_through_the_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added: list[str] = []
    real = Transaction.add

    def spy(
        self: Transaction, table: str, rel: str, rows: int, replaces: str | None = None
    ) -> None:
        added.append(table)
        real(self, table, rel, rows, replaces)

    monkeypatch.setattr(Transaction, "add", spy)
    settings = load_settings(env={}, overrides={"data": str(tmp_path / "d")})
    input_id = store_probes(settings, [Probe("198.51.100.7", 52869)], "test")
    assert added == ["probes"] and input_id == 1
    assert [p.target for p in load_probes(settings)] == ["198.51.100.7"]
