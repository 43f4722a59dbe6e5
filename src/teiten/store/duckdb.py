"""The embedded engine: DuckDB over the lake's committed Parquet files."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import duckdb.func
import pyarrow as pa

from teiten.errors import QueryError, StoreError
from teiten.fingerprint import registry
from teiten.schema import LOGINS, SESSIONS
from teiten.store.arrow import arrow_schema, table_schema
from teiten.store.lake import Lake
from teiten.store.views import DUCKDB, packets_view, payload_views, raw_view, series_view


def _ip6_text(col: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else str(ipaddress.IPv6Address(v)) for v in col.to_pylist()],
        pa.string(),
    )


class DuckDBEngine:
    """DuckDB in memory, with views over the committed files of a lake."""

    dialect = "duckdb"

    def __init__(self, lake: Lake, *, threads: int | None = None, home_country: str = "JP") -> None:
        self.lake = lake
        self.home_country = home_country
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
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
            self._create_views()
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0]
            raise StoreError(f"cannot read the store at {lake.root}: {first}") from None

    def _stored(self, table: str, schema: pa.Schema) -> str:
        """A view over the committed files of a table (an empty one when there are none).

        Quarantine files (``…_quarantine``) have no ``date=`` in their path.
        """
        files = [str(p) for p in self.lake.files(table)]
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            hive = "'sensor': VARCHAR" + ("" if table.endswith("_quarantine") else ", 'date': DATE")
            source = (
                f"read_parquet([{listing}], hive_partitioning = true, filename = true,"
                f" union_by_name = true, hive_types = {{{hive}}})"
            )
        else:
            empty = schema.empty_table()
            empty = empty.append_column("sensor", pa.array([], pa.string()))
            empty = empty.append_column("filename", pa.array([], pa.string()))
            source = f"{table}_empty"
            self.con.register(source, empty)
        self.con.execute(f"CREATE VIEW {table}_stored AS SELECT * FROM {source}")
        return f"{table}_stored"

    def _create_views(self) -> None:
        self._stored("packets", arrow_schema())
        present = {r[0] for r in self.con.execute("DESCRIBE packets_stored").fetchall()}
        self.con.execute(
            "CREATE VIEW packets_raw AS " + raw_view(DUCKDB, "packets_stored", present)
        )
        names = [(f.bit, f.name) for f in registry.registered()]
        self.con.execute("CREATE VIEW packets AS " + packets_view(DUCKDB, "packets_raw", names))
        self.con.execute("CREATE VIEW series AS " + series_view(self.home_country))
        for table, columns in (("sessions", SESSIONS), ("logins", LOGINS)):
            self._stored(table, table_schema(columns))
        for name, sql in payload_views(DUCKDB).items():
            self.con.execute(f"CREATE VIEW {name} AS {sql}")
        from teiten.backcheck.model import PROBES_SCHEMA

        self._stored("probes", PROBES_SCHEMA)
        self.con.execute("CREATE VIEW probes AS SELECT * EXCLUDE (filename) FROM probes_stored")
        # Rows an ingest set aside (implausible timestamps, days over an input's
        # budget): the logical columns, for inspection only; no analysis reads them.
        self._stored("packets_quarantine", arrow_schema())
        present = {r[0] for r in self.con.execute("DESCRIBE packets_quarantine_stored").fetchall()}
        self.con.execute(
            "CREATE VIEW quarantine AS " + raw_view(DUCKDB, "packets_quarantine_stored", present)
        )

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        try:
            rel = self.con.sql(sql, params=list(params) if params else None)
            if rel is None:  # a statement without a result (SET, CREATE …)
                return pa.table({})
            return rel.to_arrow_table()
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise QueryError(first) from None

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
                yield batch
            if empty:  # the columns, even without rows
                yield pa.RecordBatch.from_pylist([], schema=reader.schema)
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise QueryError(first) from None

    def close(self) -> None:
        self.con.close()
