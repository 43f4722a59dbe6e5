"""Apache Spark over the same Parquet files and catalog (``pip install -e '.[spark]'``).

The driver reads the catalog and registers exactly the files it lists, as
DuckDB does, so a reader never sees part of an ingest; executors read the
Parquet. One Spark session per master URL is kept for the life of the
process (starting one takes seconds); :meth:`SparkEngine.close` drops only
this engine's views.

Launched by ``spark-submit`` (or inside ``pyspark``), the launcher owns the
application: its ``--master`` and ``--conf`` are kept and the ``spark_master``
setting is not used; teiten then sets only what its answers depend on
(:data:`NEEDED`). With ``spark_data_url`` set, the files the local catalog
lists are read as ``{spark_data_url}/{relative path}`` from a Hadoop
filesystem (HDFS, S3 through ``s3a``…) holding a copy of the data folder.
See docs/cluster.md.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from teiten.engine import Scope, canonical
from teiten.errors import ConfigError, QueryError, StoreError, first_line
from teiten.schema import LOGINS, PROBES, ROLLUPS, SESSIONS
from teiten.sql.dialect import SPARK
from teiten.sql.views import Stored, views
from teiten.store.arrow import arrow_schema, table_schema
from teiten.store.lake import Lake
from teiten.store.rollup import schema as rollup_schema
from teiten.store.sketch import coverage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_SESSIONS: dict[str, SparkSession] = {}
_LOG4J = Path(__file__).with_name("log4j2.properties")
"""Spark's own logging: errors only, on stderr (its warnings are not the operator's business)."""


def ip6_text(value: bytes | bytearray | None) -> str | None:
    """IPv6 text of 16 bytes (the ``teiten_ip6_text`` function of the views)."""
    return None if value is None else str(ipaddress.IPv6Address(bytes(value)))


NEEDED: tuple[tuple[str, str], ...] = (
    # Days are cut and timestamps shown in UTC, whatever the JVM's zone.
    ("spark.sql.session.timeZone", "UTC"),
    # Partition values stay strings (the sensor name "007" is not the number 7);
    # the date partition is derived from the timestamps in the views anyway.
    ("spark.sql.sources.partitionColumnTypeInference.enabled", "false"),
    # Files written before a column was added lack it; read them with nulls.
    ("spark.sql.parquet.mergeSchema", "true"),
    # Spark's vectorized Parquet reader cannot decode BYTE_STREAM_SPLIT pages of
    # unsigned INT32 columns (the store's addresses, ports, sequence numbers);
    # the row-wise reader can.
    ("spark.sql.parquet.enableVectorizedReader", "false"),
    ("spark.sql.execution.arrow.pyspark.enabled", "true"),
)
"""Settings every teiten Spark session gets, launched or not (docs/cluster.md says why)."""

QUIET: tuple[tuple[str, str], ...] = (
    ("spark.ui.enabled", "false"),
    ("spark.ui.showConsoleProgress", "false"),
    ("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_LOG4J}"),
)
"""Settings of the embedded use only (with the application name): a command prints its
answer, not Spark's UI or logs."""

LAUNCHED = "(launcher)"
"""Key of the session whose master the launcher chose."""


def launched() -> bool:
    """Whether spark-submit or the pyspark shell started this Python (it then owns the master).

    Spark's launcher hands the Python driver its JVM gateway in
    ``PYSPARK_GATEWAY_PORT``; a SparkContext already running in this process
    (a notebook) is the launcher's too.
    """
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        return True
    if _SESSIONS:  # the running context, if any, is one this module started
        return False
    context = sys.modules.get("pyspark.core.context")  # not imported: nothing runs
    spark_context = getattr(context, "SparkContext", None)
    return getattr(spark_context, "_active_spark_context", None) is not None


def session(master: str) -> SparkSession:
    """The process's Spark session for ``master`` (started on first use).

    Under a launcher (:func:`launched`) ``master`` is not used: the session
    runs where spark-submit's ``--master`` put it.
    """
    key = LAUNCHED if launched() else master
    if key in _SESSIONS:
        return _SESSIONS[key]
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "engine 'spark' needs pyspark: pip install -e '.[spark]' (and Java 17 or newer)"
        ) from None
    builder = SparkSession.builder
    if key != LAUNCHED:
        builder = builder.appName("teiten")
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            # Python workers (the IPv6 text function, distributed ingest) run this
            # interpreter, which has teiten; on a cluster, executors need it installed.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(master)
        for name, value in QUIET:
            builder = builder.config(name, value)
    for name, value in NEEDED:
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    _SESSIONS[key] = spark
    return spark


def stop() -> None:
    """Stop every Spark session this process started."""
    for spark in _SESSIONS.values():
        spark.stop()
    _SESSIONS.clear()


_WIDER = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64()}


def _spark_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type Spark reads a stored column as (it has no unsigned integers)."""
    if t in _WIDER:
        return _WIDER[t]
    if pa.types.is_uint64(t):
        return pa.decimal128(20, 0)
    if pa.types.is_dictionary(t):
        return _spark_type(t.value_type)
    if pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_list(t):
        return pa.list_(_spark_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _spark_type(f.type)) for f in t])
    return t


class SparkEngine:
    """Spark SQL with temporary views over the committed files of a lake."""

    dialect = SPARK

    def __init__(self, lake: Lake, scope: Scope) -> None:
        self.lake = lake
        self.scope = scope
        self.coverage = coverage(lake)
        """The day sketches' coverage when the engine opened (``teiten.store.sketch``)."""
        self.packet_span = lake.packet_span()
        """First and last packet time by the packet files\' footers (None: unknown)."""
        self.url = scope.option("spark_data_url", "")
        """Where the listed files are read from (empty: the data folder itself)."""
        from pyspark.sql.types import StringType

        # A session of its own: its views and functions are not seen by other engines.
        self.spark = session(scope.option("spark_master", "local[*]")).newSession()
        self.spark.udf.register("teiten_ip6_text", ip6_text, StringType())
        self._views: list[str] = []
        try:
            self._create_views(scope)
        except Exception as e:  # py4j and analysis errors carry the reason in their text
            self.close()
            raise StoreError(f"cannot read the store at {lake.root}: {first_line(e)}") from None

    def _location(self, relative: str) -> str:
        """Where Spark reads a path relative to the data folder."""
        if self.url:
            return f"{self.url}/{relative}"
        return str(self.lake.root / relative)

    def _frame(self, table: str, schema: pa.Schema) -> DataFrame:
        files = [self._location(p) for p in self.lake.catalog.files(table)]
        if files:
            if table.endswith("_quarantine"):
                base = self._location("quarantine/" + table.removesuffix("_quarantine"))
            else:
                base = self._location(table)
            frame = self.spark.read.option("basePath", base).parquet(*files)
            # The scan's own file column, not input_file_name(): that one reads a
            # per-thread holder which rows passing through a Python function outrun.
            return frame.selectExpr("*", "_metadata.file_path AS filename")
        fields = [pa.field(f.name, _spark_type(f.type)) for f in schema]
        empty = pa.schema(fields).empty_table()
        paths = (
            ("sensor", "filename")
            if table.endswith("_quarantine")
            else ("sensor", "date", "filename")
        )
        for name in paths:  # the path's columns, as files have them (untyped: text)
            empty = empty.append_column(name, pa.array([], pa.string()))
        return self.spark.createDataFrame(empty)

    def _register(self, name: str, frame: DataFrame) -> None:
        frame.createOrReplaceTempView(name)
        self._views.append(name)

    def _stored(self, table: str, schema: pa.Schema) -> set[str]:
        frame = self._frame(table, schema)
        self._register(f"{table}_stored", frame)
        return set(frame.columns)

    def _create_views(self, scope: Scope) -> None:
        packets = self._stored("packets", arrow_schema())
        for table, columns in (("sessions", SESSIONS), ("logins", LOGINS), ("probes", PROBES)):
            self._stored(table, table_schema(columns))
        quarantine = self._stored("packets_quarantine", arrow_schema())
        for table, columns in ROLLUPS.items():  # the rollups (teiten.store.rollup)
            self._stored(table, rollup_schema(columns))
        stored = Stored(
            packets, quarantine, [c.name for c in PROBES], self.lake.unrolled(),
            self.lake.unsourced(),
        )  # fmt: skip
        for name, sql in views(SPARK, stored, home=scope.home, names_by_bit=scope.fingerprints):
            self._register(name, self.spark.sql(sql))

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        if params:
            raise QueryError("the spark engine takes no statement parameters")
        try:
            return canonical(self.spark.sql(sql).toArrow())
        except Exception as e:
            raise QueryError(first_line(e)) from None

    def stream(
        self, sql: str, *, limit: int = 0, batch_rows: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        """The result in batches; ``limit`` > 0 is applied in Spark."""
        try:
            frame = self.spark.sql(sql)
            if limit:
                frame = frame.limit(limit)
            table = canonical(frame.toArrow())
        except Exception as e:
            raise QueryError(first_line(e)) from None
        batches = table.to_batches(batch_rows)
        yield from batches or [pa.RecordBatch.from_pylist([], schema=table.schema)]

    def close(self) -> None:
        for name in reversed(self._views):
            self.spark.catalog.dropTempView(name)
        self._views.clear()
