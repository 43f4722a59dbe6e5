"""SQL engines over one data folder: DuckDB embedded (the default), Apache Spark for clusters.

An engine registers the files the catalog lists for each table as
``TABLE_stored`` and creates the views of :func:`teiten.sql.views.views` over
them; the statements of :mod:`teiten.sql` then run unchanged on either, built
with the engine's :attr:`Engine.dialect`. Results come back as Arrow tables
of one canonical form (naive UTC timestamps, ``int64`` counts), so callers
and the parity test see the same rows from every engine.

Adding an engine: a module here with a class taking ``(lake, scope)``, a
:class:`~teiten.sql.dialect.Dialect`, and one entry in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from teiten.errors import ConfigError
from teiten.sql.dialect import Dialect

if TYPE_CHECKING:  # pyarrow and the store load when an engine is opened, not at CLI start
    import pyarrow as pa

    from teiten.store.lake import Lake
    from teiten.store.sketch import Coverage

ENGINES: dict[str, str] = {
    "duckdb": "teiten.engine.duckdb:DuckDBEngine",
    "spark": "teiten.engine.spark:SparkEngine",
}
"""Engine name → ``module:class``; modules are imported only when chosen."""


@dataclass(frozen=True)
class Scope:
    """What an engine's views need besides the files: the analysis's fixed terms."""

    home: int
    """Code of the home country (``teiten.enrich.country.country_code``)."""
    fingerprints: tuple[tuple[int, str], ...]
    """``(bit, name)`` of every registered fingerprint."""
    options: tuple[tuple[str, str], ...] = ()
    """Engine options (``spark_master``…)."""
    exact_rows: int = 2_000_000
    """Per-port questions read the day sketches when an exact answer would read more
    ``port_hours`` rows than this (``teiten.analysis.sketches``)."""

    def option(self, name: str, default: str) -> str:
        return dict(self.options).get(name, default)


class Engine(Protocol):
    """Runs SQL over the views of one data folder and returns Arrow tables."""

    dialect: Dialect
    scope: Scope
    coverage: Coverage
    """The day sketches' coverage of the store when the engine opened."""
    packet_span: tuple[int, int] | None
    """First and last packet time by the packet files' footers when the engine opened
    (``teiten.store.lake.Lake.packet_span``); None when they cannot tell."""

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one statement and return its whole result."""
        ...

    def stream(
        self, sql: str, *, limit: int = 0, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        """Run one statement and yield its result in batches (at most ``limit`` rows if > 0)."""
        ...

    def close(self) -> None: ...


def connect(name: str, lake: Lake, scope: Scope) -> Engine:
    """An engine of the given name over a lake (its module imported now)."""
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r} (choose {', '.join(ENGINES)})")
    module, cls = ENGINES[name].split(":")
    engine: Engine = getattr(importlib.import_module(module), cls)(lake, scope)
    return engine


def canonical(table: pa.Table) -> pa.Table:
    """A result in the form every engine returns: timestamps naive UTC µs."""
    import pyarrow as pa

    fields = []
    changed = False
    for f in table.schema:
        t = f.type
        if pa.types.is_timestamp(t) and (t.tz is not None or t.unit != "us"):
            fields.append(pa.field(f.name, pa.timestamp("us"), f.nullable))
            changed = True
        else:
            fields.append(f)
    if not changed:
        return table
    cols = []
    for f, col in zip(fields, table.columns, strict=True):
        if pa.types.is_timestamp(col.type) and col.type != f.type:
            col = col.cast(pa.timestamp("us", tz=col.type.tz)).cast(pa.timestamp("us"))
        cols.append(col)
    return pa.table(cols, schema=pa.schema(fields))


def canonical_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """One batch of a result in the canonical form (see :func:`canonical`)."""
    import pyarrow as pa

    table = canonical(pa.Table.from_batches([batch]))
    return batch if table.schema == batch.schema else table.to_batches()[0]
