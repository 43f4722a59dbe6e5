"""The Engine protocol: run SQL over the lake's views and return Arrow tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import pyarrow as pa

from teiten.config import Settings


class Engine(Protocol):
    """A SQL engine over one data directory (DuckDB embedded; Spark for clusters)."""

    dialect: str

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one statement and return its whole result."""
        ...

    def stream(
        self, sql: str, *, limit: int = 0, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        """Run one statement and yield its result in batches (at most ``limit`` rows if > 0)."""
        ...

    def close(self) -> None: ...


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The embedded DuckDB engine over the settings' data directory (read-only use)."""
    from teiten.store.duckdb import DuckDBEngine
    from teiten.store.lake import Lake

    with Lake(settings.data_dir) as lake:
        engine = DuckDBEngine(lake, home_country=str(settings.home_country))
        try:
            yield engine
        finally:
            engine.close()


def run_query(settings: Settings, sql: str) -> pa.Table:
    """``teiten query``: one SQL statement over the friendly views."""
    with open_engine(settings) as engine:
        return engine.query(sql)


def stream_query(settings: Settings, sql: str, *, limit: int = 0) -> Iterator[pa.RecordBatch]:
    """``teiten query``: one statement's result in batches, never more than ``limit`` rows.

    The limit is applied by the engine (a ``LIMIT`` over the statement), so
    ``SELECT * FROM packets`` with a limit reads only what it returns, and
    without one the rows are passed on batch by batch instead of all at once.
    """
    with open_engine(settings) as engine:
        yield from engine.stream(sql, limit=limit)
