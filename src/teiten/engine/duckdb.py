"""The embedded engine: DuckDB in memory over the lake's committed Parquet files."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import duckdb.func
import pyarrow as pa

from teiten.engine import Scope, canonical, canonical_batch
from teiten.errors import QueryError, StoreError, first_line
from teiten.schema import LOGINS, PROBES, ROLLUPS, SESSIONS
from teiten.sql.dialect import DUCKDB
from teiten.sql.views import Stored, views
from teiten.store.arrow import arrow_schema, table_schema
from teiten.store.lake import Lake
from teiten.store.rollup import schema as rollup_schema
from teiten.store.sketch import coverage


def _ip6_text(col: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else str(ipaddress.IPv6Address(v)) for v in col.to_pylist()],
        pa.string(),
    )


class DuckDBEngine:
    """DuckDB in memory, with views over the committed files of a lake."""

    dialect = DUCKDB

    def __init__(self, lake: Lake, scope: Scope, *, threads: int | None = None) -> None:
        self.lake = lake
        self.scope = scope
        self.coverage = coverage(lake)
        """The day sketches' coverage when the engine opened (``teiten.store.sketch``)."""
        self.packet_span = lake.packet_span()
        """First and last packet time by the packet files\' footers (None: unknown)."""
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        # Its progress bar goes to stdout, into the output of a long query (trend > file).
        self.con.execute("SET enable_progress_bar = false")
        # Files never change once listed (a rewrite lists new names): keep their footers,
        # so the second statement of an answer does not read every footer again.
        self.con.execute("SET parquet_metadata_cache = true")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.create_function(
            "teiten_ip6_text",
            _ip6_text,
            ["BLOB"],
            "VARCHAR",
            type=duckdb.func.ARROW,
            null_handling=duckdb.func.SPECIAL,
        )
        try:
            self._create_views(scope)
        except duckdb.Error as e:
            raise StoreError(f"cannot read the store at {lake.root}: {first_line(e)}") from None

    def _stored(self, table: str, schema: pa.Schema, *, columns: bool = False) -> set[str]:
        """A view ``TABLE_stored`` over the committed files of a table; returns its columns
        when asked (``columns``: a second look at every footer).

        Quarantine files (``…_quarantine``) have no ``date=`` in their path.
        """
        files = [str(p) for p in self.lake.files(table)]
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            hive = "'sensor': VARCHAR" + ("" if table.endswith("_quarantine") else ", 'date': DATE")
            # Columns are matched by name only where the files' layouts differ (written
            # by releases with other columns): by name, DuckDB maps every file's columns
            # in every statement (sessions at 10^9: 82 ms instead of 39).
            layouts = self.lake.catalog.layouts(table)
            by_name = len(layouts) != 1 or "" in layouts
            source = (
                f"read_parquet([{listing}], hive_partitioning = true, filename = true,"
                f"{' union_by_name = true,' if by_name else ''} hive_types = {{{hive}}})"
            )
        else:
            empty = schema.empty_table()
            empty = empty.append_column("sensor", pa.array([], pa.string()))
            if not table.endswith("_quarantine"):  # the path's date, as files have it
                empty = empty.append_column("date", pa.array([], pa.date32()))
            empty = empty.append_column("filename", pa.array([], pa.string()))
            source = f"{table}_empty"
            self.con.register(source, empty)
        self.con.execute(f"CREATE VIEW {table}_stored AS SELECT * FROM {source}")
        if not columns:
            return set()
        return {r[0] for r in self.con.execute(f"DESCRIBE {table}_stored").fetchall()}

    def _create_views(self, scope: Scope) -> None:
        packets = self._stored("packets", arrow_schema(), columns=True)
        for table, columns in (("sessions", SESSIONS), ("logins", LOGINS), ("probes", PROBES)):
            self._stored(table, table_schema(columns))
        quarantine = self._stored("packets_quarantine", arrow_schema(), columns=True)
        for table, columns in ROLLUPS.items():
            self._stored(table, rollup_schema(columns))
        stored = Stored(
            packets, quarantine, [c.name for c in PROBES], self.lake.unrolled(),
            self.lake.unsourced(),
        )  # fmt: skip
        for name, sql in views(
            self.dialect, stored, home=scope.home, names_by_bit=scope.fingerprints
        ):
            self.con.execute(f"CREATE VIEW {name} AS {sql}")

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        try:
            rel = self.con.sql(sql, params=list(params) if params else None)
            if rel is None:  # a statement without a result (SET, CREATE …)
                return pa.table({})
            return canonical(rel.to_arrow_table())
        except duckdb.Error as e:
            raise QueryError(first_line(e)) from None

    def stream(
        self, sql: str, *, limit: int = 0, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        """Run one statement and yield its result in batches; ``limit`` > 0 is applied in DuckDB."""
        try:
            rel = self.con.sql(sql)
            if rel is None:
                return
            if limit:
                rel = rel.limit(limit)
            reader = rel.to_arrow_reader(batch_rows)
            empty = True
            for batch in reader:
                empty = False
                yield canonical_batch(batch)
            if empty:  # the columns, even without rows
                yield pa.RecordBatch.from_pylist([], schema=reader.schema)
        except duckdb.Error as e:
            raise QueryError(first_line(e)) from None

    def close(self) -> None:
        self.con.close()
