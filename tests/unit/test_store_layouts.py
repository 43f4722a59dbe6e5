"""File layouts in the catalog: recorded at commit, filled in by the next writer, and
read by the DuckDB engine to match columns by name only where layouts differ."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from test_lake import DAY0, _ingest

from teiten.app.engine import open_engine
from teiten.config import load_settings
from teiten.store.arrow import layout_of
from teiten.store.lake import Lake


def _store(tmp_path: Path) -> Path:
    """Two inputs: two days, then a third."""
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        _ingest(lake, [DAY0, DAY0 + 1])
        _ingest(lake, [DAY0 + 2], n=30)
    return tmp_path


def _view_sql(store: Path, view: str) -> str:
    settings = load_settings(env={}, overrides={"data": str(store)})
    with open_engine(settings) as engine:
        row = engine.query(f"SELECT sql FROM duckdb_views() WHERE view_name = '{view}'")
        return str(row.column("sql")[0].as_py())


def test_commit_records_each_files_layout(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with Lake(store) as lake:
        for table in ("packets", "port_hours", "address_hours"):
            files = lake.files(table)
            assert len(files) == 3, table
            assert lake.catalog.layouts(table) == {layout_of(files[0])}
        assert lake.catalog.layouts("packets") != lake.catalog.layouts("port_hours")
    assert "union_by_name" not in _view_sql(store, "packets_stored")


def test_differing_layouts_are_read_by_name(tmp_path: Path) -> None:
    """A file with another layout (a column more, as a later release might write) makes
    the engine match columns by name, and both files' rows are read."""
    store = _store(tmp_path)
    with Lake(store) as lake:
        rel = lake.catalog.files("address_hours")[-1]
    path = store / rel
    table = pq.read_table(path)
    wider = table.append_column("extra", pa.array([1] * table.num_rows, pa.int32()))
    pq.write_table(wider, path)
    with sqlite3.connect(store / "catalog.sqlite") as db:
        db.execute("UPDATE files SET layout = ? WHERE path = ?", (layout_of(path), rel))
    assert "union_by_name = true" in _view_sql(store, "address_hours_stored")
    settings = load_settings(env={}, overrides={"data": str(store)})
    with open_engine(settings) as engine:
        days = engine.query("SELECT DISTINCT hour // 24 AS d FROM address_hours_raw ORDER BY d")
    assert days.column("d").to_pylist() == [DAY0, DAY0 + 1, DAY0 + 2]


def test_the_next_writer_records_missing_layouts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with sqlite3.connect(store / "catalog.sqlite") as db:  # as a release before layouts
        db.execute("UPDATE files SET layout = ''")
    with Lake(store) as lake:
        assert lake.catalog.layouts("packets") == {""}
        assert len(lake.catalog.unlaid()) == len(lake.catalog.all_files())
    assert "union_by_name = true" in _view_sql(store, "packets_stored")
    with Lake(store) as lake:
        lake.lock()
        assert lake.catalog.unlaid() == []
        assert lake.catalog.layouts("packets") == {layout_of(lake.files("packets")[0])}
    assert "union_by_name" not in _view_sql(store, "packets_stored")
