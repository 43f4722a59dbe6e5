"""The embedded engine: DuckDB in memory over the lake's committed Parquet files."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

import duckdb
import duckdb.func
import pyarrow as pa

from teiten.engine import Scope, canonical, canonical_batch
from teiten.errors import QueryError, StoreError, first_line
from teiten.schema import LOGINS, PROBES, ROLLUPS, SESSIONS
from teiten.sql.dialect import DUCKDB
from teiten.sql.views import Stored, view_statements
from teiten.store.arrow import arrow_schema, table_schema
from teiten.store.lake import Lake
from teiten.store.rollup import schema as rollup_schema
from teiten.store.sketch import coverage


def _ip6_text(col: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else str(ipaddress.IPv6Address(v)) for v in col.to_pylist()],
        pa.string(),
    )


R = TypeVar("R")


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
        self._pending: dict[str, Callable[[], str]] = {}
        """The views not created yet: name → what makes its SELECT."""
        self._create_views(scope)

    def _source(self, table: str, schema: pa.Schema) -> str:
        """What the view ``TABLE_stored`` reads: the committed files of a table (the
        catalog is read now, while the lake is open), or an empty table of its columns.

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
            return (
                f"SELECT * FROM read_parquet([{listing}], hive_partitioning = true,"
                f" filename = true,{' union_by_name = true,' if by_name else ''}"
                f" hive_types = {{{hive}}})"
            )
        empty = schema.empty_table()
        empty = empty.append_column("sensor", pa.array([], pa.string()))
        if not table.endswith("_quarantine"):  # the path's date, as files have it
            empty = empty.append_column("date", pa.array([], pa.date32()))
        empty = empty.append_column("filename", pa.array([], pa.string()))
        self.con.register(f"{table}_empty", empty)
        return f"SELECT * FROM {table}_empty"

    def _create_views(self, scope: Scope) -> None:
        """Every view's SELECT, made now (the catalog is open); each view is created
        only when a statement first reads it (:meth:`_bound`): a view over many files
        costs 3–9 ms to create, its first file's footer read to bind it, which a command
        that reads two of 29 views need not pay."""
        tables = [("packets", arrow_schema()), ("packets_quarantine", arrow_schema())]
        tables += [(t, table_schema(c)) for t, c in (("sessions", SESSIONS), ("logins", LOGINS))]
        tables += [("probes", table_schema(PROBES))]
        tables += [(t, rollup_schema(c)) for t, c in ROLLUPS.items()]
        for table, schema in tables:
            self._pending[f"{table}_stored"] = partial(str, self._source(table, schema))
        stored = Stored(
            _Columns(self, "packets_stored"), _Columns(self, "packets_quarantine_stored"),
            [c.name for c in PROBES], self.lake.unrolled(), self.lake.unsourced(),
        )  # fmt: skip
        names = view_statements(
            self.dialect, stored, home=scope.home, names_by_bit=scope.fingerprints
        )
        self._pending.update(names)

    def _bound(self, make: Callable[[], R], statement: str = "") -> R:
        """``make()`` (a statement's relation), again after creating each view not
        created yet that DuckDB finds missing; every view first when ``statement`` looks
        at the catalog (``SHOW TABLES``, ``information_schema``…)."""
        words = {w.lower() for w in _WORD.findall(_LITERAL.sub("", statement))}
        if self._pending and words & _CATALOG_WORDS:
            for name in list(self._pending):
                self._create(name)
        while True:
            try:
                return make()
            except duckdb.CatalogException as e:
                missing = _MISSING.search(str(e))
                name = missing.group(1).lower() if missing else ""
                if name not in self._pending:
                    raise
                self._create(name)

    def _create(self, name: str) -> None:
        """Create a view not created yet (and those it reads, as they are found missing)."""
        make = self._pending.pop(name, None)
        if make is None:
            return
        try:
            sql = f"CREATE VIEW {name} AS {make()}"  # (``packets_raw``: DESCRIBE its files)
            self._bound(lambda: self.con.execute(sql))
        except duckdb.Error as e:
            root = self.lake.root
            raise StoreError(f"cannot read the store at {root}: {first_line(e)}") from None

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        try:
            rel = self._bound(lambda: self.con.sql(sql, params=list(params or ()) or None), sql)
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
            rel = self._bound(lambda: self.con.sql(sql), sql)
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


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_LITERAL = re.compile(r"'(?:[^']|'')*'")
"""A string literal (its words are no look at the catalog)."""

_MISSING = re.compile(r"Table with name ([A-Za-z_][A-Za-z0-9_]*) does not exist")
"""DuckDB's message for a statement that reads a view not created yet."""

_CATALOG_WORDS = frozenset(
    {"show", "information_schema", "duckdb_views", "duckdb_tables", "duckdb_columns",
     "pragma", "sqlite_master", "pg_catalog"}
)  # fmt: skip
"""Words of a statement that looks at the catalog: every view is created first."""


class _Columns(Collection[str]):
    """The columns of a registered view (``DESCRIBE``), read when first asked: only the
    views over the packet files need them, and most statements read neither."""

    def __init__(self, engine: DuckDBEngine, view: str) -> None:
        self._engine = engine
        self._view = view
        self._names: set[str] | None = None

    def _read(self) -> set[str]:
        if self._names is None:
            self._engine._create(self._view)
            rows = self._engine.con.execute(f"DESCRIBE {self._view}").fetchall()
            self._names = {r[0] for r in rows}
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self._read()

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())
