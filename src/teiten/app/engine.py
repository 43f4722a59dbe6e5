"""The engine a command's settings choose, over the settings' data folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

from teiten.config import Settings
from teiten.engine import Engine, Scope, connect
from teiten.enrich.country import country_code
from teiten.fingerprint import registry
from teiten.store.lake import Lake


def scope(settings: Settings) -> Scope:
    """The fixed terms of the views: home country, fingerprint names, engine options."""
    return Scope(
        home=country_code(str(settings.home_country)),
        fingerprints=tuple((f.bit, f.name) for f in registry.registered()),
        options=(
            ("spark_master", str(settings.spark_master)),
            ("spark_data_url", str(settings.spark_data_url)),
        ),
    )


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The ``engine`` setting's engine over the data folder, for reading."""
    with Lake(settings.data_dir) as lake:
        engine = connect(str(settings.engine), lake, scope(settings))
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
