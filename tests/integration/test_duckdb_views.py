"""The embedded engine creates a view only when a statement reads it: every view still
answers alone, a catalog listing still shows them all, and a statement over the day
sketches leaves the views over the packet files uncreated."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from teiten.app.engine import _connect
from teiten.app.ingest import ingest
from teiten.config import Settings, load_settings
from teiten.engine import Engine
from teiten.engine.duckdb import DuckDBEngine
from teiten.errors import QueryError, StoreError
from teiten.sql.dialect import DUCKDB
from teiten.sql.views import Stored, views
from teiten.store.lake import Lake

DATA = Path(__file__).resolve().parents[1] / "data"
SENSOR_NET = "203.0.113.0/24"  # the test captures' sensor (tests/conftest.py)

VIEWS = [name for name, _ in views(DUCKDB, Stored((), (), []), home=0, names_by_bit=())]
"""Every view an engine makes."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("views")
    settings = load_settings(
        env={}, overrides={"data": str(root / "store"), "sensor_networks": [SENSOR_NET]}
    )
    ingest([DATA / "eth_ipv4.pcap"], settings)
    return settings


@pytest.fixture
def engine(store: Settings) -> Iterator[Engine]:
    e = _connect(store)
    yield e
    e.close()


def _created(engine: Engine) -> set[str]:
    """The views DuckDB holds, asked of the connection itself (no view created for it);
    not the empty Arrow tables registered for tables without files (``…_empty``)."""
    assert isinstance(engine, DuckDBEngine)
    rows = engine.con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
    return {r[0] for r in rows.fetchall() if not r[0].endswith("_empty")}


def test_opening_creates_no_view(engine: Engine) -> None:
    assert _created(engine) == set()


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_answers_alone(store: Settings, view: str) -> None:
    """A fresh engine reads any one view: those it reads are created on the way."""
    e = _connect(store)
    try:
        table = e.query(f"SELECT * FROM {view} LIMIT 3")
        assert view in _created(e)
        assert table.num_columns > 0
    finally:
        e.close()


def test_a_sketch_statement_leaves_the_packet_views_alone(engine: Engine) -> None:
    engine.query("SELECT count(*) AS n, sum(packets) AS packets FROM port_segments_raw")
    made = _created(engine)
    assert {"port_segments_raw", "port_segments_stored"} <= made
    assert not made & {"packets", "packets_raw", "packets_stored", "sessions"}


def test_words_in_literals_and_columns_create_nothing_more(engine: Engine) -> None:
    """A view's name as a string or a column name is no read of it."""
    engine.query("SELECT 'packets' AS sessions, 'indicators' AS x")
    assert _created(engine) == set()


def test_a_catalog_listing_shows_every_view(engine: Engine) -> None:
    names = set(engine.query("SHOW TABLES").column("name").to_pylist())
    assert set(VIEWS) <= names


def test_an_unknown_table_is_a_query_error(engine: Engine) -> None:
    with pytest.raises(QueryError, match="nosuch"):
        engine.query("SELECT * FROM nosuch")


def test_a_damaged_file_is_a_store_error_when_its_view_is_read(
    store: Settings, tmp_path: Path
) -> None:
    """Opening the engine reads no file; reading the view over a damaged one says, in
    one line, that the store cannot be read."""
    copy = tmp_path / "store"
    shutil.copytree(store.data_dir, copy)
    with Lake(copy) as lake:
        first = lake.files("packets")[0]
    first.write_bytes(b"not parquet at all")
    e = _connect(store.replace(data=str(copy)))
    try:
        assert e.query("SELECT count(*) AS n FROM port_hours_raw").num_rows == 1
        with pytest.raises(StoreError, match=r"^cannot read the store at ") as raised:
            e.query("SELECT count(*) AS n FROM packets")
        assert "\n" not in str(raised.value)
    finally:
        e.close()
