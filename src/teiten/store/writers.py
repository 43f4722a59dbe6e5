"""The writers of one input's tables: packets (one file per day, plus quarantine and
rollups) and sessions/logins, each staging files into the input's transaction."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.store import executor
from teiten.store.arrow import arrow_schema, to_table, write_file, writer_options
from teiten.store.budget import QUARANTINE, DayBudget
from teiten.store.grouping import Columns
from teiten.store.lake import NS_PER_DAY, Lake
from teiten.store.order import packet_order
from teiten.store.paths import listed_as
from teiten.store.rollup import BatchRows, Rollup, batch_rows
from teiten.store.sketch import DaySketch, SketchCut
from teiten.store.sourceports import TABLE as SOURCE_TABLE
from teiten.store.sourceports import SourceDays, source_rows


@dataclass(frozen=True)
class Part:
    """A batch's rows of one day: its stored table and what its rollups are built from."""

    day: int
    table: pa.Table
    rollups: Future[tuple[BatchRows, Columns]] | None
    """Its distinct rollup and ``source_ports`` rows (:func:`rollup_rows`), found in the
    writer's executor; None for quarantined rows (in no rollup)."""


def rollup_rows(columns: Columns, rows: npt.NDArray[np.int64]) -> tuple[BatchRows, Columns]:
    """The distinct rollup rows (``rollup.batch_rows``) and ``source_ports`` rows
    (``sourceports.source_rows``) of ``rows`` of a batch of logical packet columns."""
    return batch_rows(columns, rows), source_rows(columns, rows)


class PacketWriter:
    """Writes packet batches of one input into staged Parquet files, one per day.

    Days outside the input's :class:`DayBudget` go to one quarantine file.
    Every day file stays open until :meth:`close` (so each day is one file,
    however the input's times are ordered); memory stays bounded because the
    largest pending day is written out as a row group whenever more than
    ``max_open_days`` row groups' worth of rows are pending in all.
    """

    def __init__(
        self,
        lake: Lake,
        input_id: int,
        sensor: str,
        *,
        row_group_rows: int = 1 << 20,
        max_open_days: int = 4,
        budget: DayBudget | None = None,
        cut: SketchCut | None = None,
        threads: int = 1,
    ) -> None:
        self.lake = lake
        self.pool = executor.pool(threads)
        """Where the batches' rollup rows are found and a day's rollup files built (with
        ``threads`` 1, the caller's thread; more, a pool of that many beside it)."""
        self.output = executor.serial(threads)
        """Where the packet files' row groups are written, one after another (with
        ``threads`` 1, the caller's thread; more, one thread of its own)."""
        self.cut = cut
        """How the store's sketches are cut: each ``port_hours`` file gets its day sketches
        (``teiten.store.sketch``) cut so; None writes no sketches."""
        self.input_id = input_id
        self.sensor = sensor
        self.row_group_rows = row_group_rows
        self.max_open_days = max_open_days
        self.budget = budget if budget is not None else DayBudget()
        self.schema = arrow_schema()
        self.options = writer_options()
        self.tx = lake.transaction(input_id)
        self._open: dict[int, _DayFile] = {}
        self.staged: list[tuple[str, str, int]] = []
        self.quarantined = 0
        """Rows written to the quarantine file (implausible time, or a day over the budget)."""
        self.labels: dict[str, list[str]] = {}
        """Text of the codes of ``str`` columns (e.g. ``src_as_org``), growing."""
        self.rollup = Rollup()
        """The rollup rows of the input's day files (``teiten.store.rollup``)."""
        self.sources = SourceDays()
        """The ``source_ports`` rows of the input's day files (``teiten.store.sourceports``)."""
        self._rollup_parts: dict[tuple[str, int], int] = {}
        self._rollup_mutex = threading.Lock()
        self._sketches: dict[int, DaySketch] = {}
        """The day sketches of the day files, growing with each rollup part."""

    def write(self, columns: dict[str, Any]) -> None:
        """Add packets; they are split by UTC day."""
        self.write_parts(self.prepare(columns))

    def prepare(self, columns: dict[str, Any]) -> list[Part]:
        """The stored tables of a batch, one per UTC day, rows in arrival order (a row
        group is sorted when it is written), each with the batch rows its rollups are
        built from (by :meth:`write_parts`).

        Rows with implausible timestamps or of days over the budget come as one
        table of day :data:`QUARANTINE`. Needs no writer state but the (locked)
        budget, so it runs in the decoding thread; the batch's rollup rows are found
        by the writer's executor (with two threads or more, a pool beside decoding and
        writing) and merged into the day's in the writing thread (:meth:`write_parts`).
        """
        ts = columns["ts"]
        if len(ts) == 0:
            return []
        day = int(ts[0]) // NS_PER_DAY
        if (
            (ts // NS_PER_DAY == day).all()
            and self.budget.plausible(ts[0])
            and self.budget.admit(day)
        ):
            every = np.arange(len(ts), dtype=np.int64)
            table = to_table(columns, self.schema, None, self._labels())
            return [Part(day, table, self.pool.submit(rollup_rows, columns, every))]
        days = self.budget.days_of(ts)
        parts = []
        for d in np.unique(days).tolist():
            rows = np.flatnonzero(days == d)
            table = to_table(columns, self.schema, rows, self._labels())
            found = None  # quarantined rows are in no rollup, as in no view
            if d != QUARANTINE:
                found = self.pool.submit(rollup_rows, columns, rows)
            parts.append(Part(int(d), table, found))
        return parts

    def _roll_up(self, day: int, found: BatchRows, sources: Columns) -> None:
        """Add a batch's rollup rows of a day; write a part file if the day outgrew memory."""
        spilled = self.rollup.add_rows(day, found)
        if spilled is not None:  # written now; its day sketches found in the pool meanwhile
            self._write_rollup("port_hours", day, spilled, self.pool)
        orgs = self.labels.get("src_as_org", [])  # read (copied) only if the day spills
        by_source = self.sources.add_rows(day, sources, orgs)
        if by_source is not None:
            self._write_rollup(SOURCE_TABLE, day, by_source)

    def _write_rollup(
        self, table: str, day: int, data: pa.Table, sketches: Executor = executor.INLINE
    ) -> None:
        """Write a rollup part file of a day now, in this thread (``port_hours``: its day
        sketches found in ``sketches`` meanwhile)."""
        self._stage_rollup(table, day, data, executor.INLINE, sketches)()

    def _stage_rollup(
        self,
        table: str,
        day: int,
        data: pa.Table,
        pool: Executor = executor.INLINE,
        sketches: Executor | None = None,
    ) -> Callable[[], None]:
        """Write a rollup part file of a day in ``pool`` (``port_hours``: and start its day
        sketches in ``sketches``, by default ``pool``); the returned function waits for
        the file and adds it to the transaction, so files are listed in the order they
        were staged."""
        with self._rollup_mutex:
            part = self._rollup_parts.get((table, day), 0)
            self._rollup_parts[(table, day)] = part + 1
        if table == "port_hours" and self.cut is not None:
            with self._rollup_mutex:
                sketch = self._sketches.setdefault(day, DaySketch(self.cut))
            sketch.add(data, pool if sketches is None else sketches)  # combined at close
        rel, path = self.tx.target(table, self.sensor, day, part)
        written = pool.submit(write_file, table, data, path)

        def add() -> None:
            written.result()
            self.tx.add(listed_as(table, day), rel, data.num_rows)

        return add

    def _labels(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.labels.items()}  # a snapshot per batch

    def write_parts(self, parts: list[Part]) -> None:
        """Add the tables made by :meth:`prepare`, and their rows to the rollups."""
        for part in parts:
            if part.rollups is not None:
                self._roll_up(part.day, *part.rollups.result())
            if part.day == QUARANTINE:
                self.quarantined += part.table.num_rows
            self._day(part.day).add(part.table)
        pending = sum(f.pending_rows for f in self._open.values())
        while pending > self.max_open_days * self.row_group_rows:
            largest = max(self._open.values(), key=lambda f: f.pending_rows)
            pending -= largest.pending_rows
            largest.flush()

    def _day(self, day: int) -> _DayFile:
        f = self._open.get(day)
        if f is None:
            rel, path = self.tx.target("packets", self.sensor, day)
            f = self._open[day] = _DayFile(rel, path, self)
        return f

    def close(self) -> list[tuple[str, str, int]]:
        """Flush and close every file and add it to the input's transaction, with the
        rollup files of each day file (``teiten.store.rollup``).

        Returns ``(table, relative path, rows)`` of the packet files staged.
        """
        try:
            for day in sorted(self._open):
                self._close_day(day)
        finally:
            self.pool.shutdown(cancel_futures=True)
            self.output.shutdown(cancel_futures=True)
        return self.staged

    def _close_day(self, day: int) -> None:
        """Close a day's packet file and write its rollup files; with a pool the
        rollup and source rows are merged while the packets' last row group is written,
        and the day sketches' four tables are built side by side. Files are added to
        the transaction in the same order either way."""
        f = self._open.pop(day)
        rolled = day != QUARANTINE and f.rows + f.pending_rows > 0  # = close() returns rows
        orgs = self.labels.get("src_as_org", [])
        ports = self.pool.submit(self.rollup.tables, day) if rolled else None
        sources = self.pool.submit(self.sources.table, day, orgs) if rolled else None
        rows = f.close()
        if rows:
            self.tx.add(listed_as("packets", day), f.rel, rows)
            self.staged.append((listed_as("packets", day), f.rel, rows))
        if ports is None or sources is None:  # every day file has its rollup files, maybe empty
            return
        staged = [self._stage_rollup(t, day, data, self.pool) for t, data in ports.result().items()]
        staged.append(self._stage_rollup(SOURCE_TABLE, day, sources.result(), self.pool))
        sketch = self._sketches.pop(day, None)
        for table, data in sketch.tables(self.pool).items() if sketch is not None else ():
            staged.append(self._stage_rollup(table, day, data, self.pool))
        for add in staged:
            add()

    def abort(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        self.output.shutdown(cancel_futures=True)
        for f in self._open.values():
            f.abort()
        self._open.clear()


class _DayFile:
    """One staged Parquet file, buffering tables until a row group is full.

    A full row group is sorted (:func:`row_group`) in the owner's pool and written by
    the owner's output thread, in order, while the next one fills; with one thread
    both happen at once. At most :data:`IN_FLIGHT` row groups of a file are being
    sorted or written."""

    def __init__(self, rel: str, path: Path, owner: PacketWriter) -> None:
        self.rel = rel
        self.path = path
        self.owner = owner
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0
        """Rows of the row groups written or being sorted."""
        self.writes: list[Future[None]] = []
        self.writer: pq.ParquetWriter | None = None

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= self.owner.row_group_rows:
            self.flush()

    def flush(self) -> None:
        """Sort the pending rows as one row group and write it after those before."""
        if not self.pending_rows:
            return
        sorting = self.owner.pool.submit(row_group, self.pending)
        self.rows += self.pending_rows
        self.pending, self.pending_rows = [], 0
        self.writes.append(self.owner.output.submit(self._write, sorting))
        while len(self.writes) > IN_FLIGHT or (self.writes and self.writes[0].done()):
            self.writes.pop(0).result()  # raises what the write raised

    def _write(self, sorting: Future[pa.Table]) -> None:
        table = sorting.result()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.owner.schema, **self.owner.options)
        self.writer.write_table(table, row_group_size=table.num_rows)

    def close(self) -> int:
        self.flush()
        while self.writes:
            self.writes.pop(0).result()
        if self.writer is not None:
            self.writer.close()
        return self.rows

    def abort(self) -> None:
        for write in self.writes:
            write.cancel()
        for write in self.writes:  # one may be running: let it end before the file goes
            with contextlib.suppress(Exception):
                write.exception()
        if self.writer is not None:
            with contextlib.suppress(OSError):  # a full disk may refuse the footer
                self.writer.close()
        self.path.unlink(missing_ok=True)


IN_FLIGHT = 2
"""Row groups of a packet file being sorted or written at once (memory: about two row
groups' columns beside the one filling)."""


def row_group(tables: list[pa.Table]) -> pa.Table:
    """Batches' tables (in arrival order) as one row group sorted as stored: by source,
    then shape (:func:`teiten.store.order.packet_order`)."""
    # Dictionary columns (src_as_org) may differ per batch as labels grow.
    table = pa.concat_tables(tables).unify_dictionaries().combine_chunks()
    src, shape = (table.column(name).chunk(0).to_numpy() for name in ("src_ip4", "shape"))
    order = pa.array(packet_order(src, shape))
    # A column of nulls (the IPv6 addresses of an IPv4 capture) is the same in any order.
    columns = [c if c.null_count == len(c) else c.take(order) for c in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


class TableWriter:
    """Writes one input's rows of a small table (sessions, logins) into its transaction.

    Rows are buffered and written as a new part file per day whenever the
    buffer passes ``flush_bytes``, so memory stays bounded however many
    sessions an input holds. Rows of days outside the input's
    :class:`DayBudget` (shared with its :class:`PacketWriter`) go to a
    quarantine part file instead.
    """

    def __init__(
        self,
        lake: Lake,
        input_id: int,
        sensor: str,
        table: str,
        schema: pa.Schema,
        ts_column: str,
        *,
        flush_bytes: int = 64 << 20,
        budget: DayBudget | None = None,
    ) -> None:
        self.lake, self.input_id, self.sensor, self.table = lake, input_id, sensor, table
        self.schema, self.ts_column, self.flush_bytes = schema, ts_column, flush_bytes
        self.budget = budget if budget is not None else DayBudget()
        self.tx = lake.transaction(input_id)
        self._pending: list[pa.Table] = []
        self._bytes = 0
        self._parts: dict[int, int] = {}
        self.staged: list[tuple[str, str, int]] = []
        self.quarantined = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._bytes += table.nbytes
        if self._bytes >= self.flush_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._bytes = [], 0
        days = self.budget.days_of(table.column(self.ts_column).to_numpy())
        distinct = np.unique(days).tolist()
        for day in distinct:
            part = self._parts.get(day, 0)
            self._parts[day] = part + 1
            # filtering nested columns (requests) copies them: 1.3 s a 10 M capture
            rows = table if len(distinct) == 1 else table.filter(pa.array(days == day))
            f = self.tx.write(self.table, self.sensor, day, rows, part)
            self.staged.append((f.table, f.path, f.rows))
            if day == QUARANTINE:
                self.quarantined += rows.num_rows

    def close(self) -> list[tuple[str, str, int]]:
        self._flush()
        return self.staged
