"""The data directory: a day-partitioned Parquet lake written atomically, plus its catalog.

Layout::

    DATA/catalog.sqlite                       the catalog (teiten.store.catalog)
    DATA/packets/sensor=NAME/date=YYYY-MM-DD/inNNNNNN-PPP.parquet
    DATA/sessions/…, DATA/logins/…            the same layout
    DATA/.staging/NNNNNN/…                     files of an ingest under way

An ingest writes into ``.staging``; :meth:`Lake.commit` moves the files into
place and lists them in the catalog in one transaction. Readers read only the
files the catalog lists, so no reader ever sees part of an input, and a crashed
ingest leaves only staging files and unlisted files that the next writer clears.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.errors import StoreError
from teiten.store.arrow import arrow_schema, to_table, writer_options
from teiten.store.catalog import Catalog
from teiten.store.order import source_order

NS_PER_DAY = 86_400 * 1_000_000_000
TABLE_DIRS = ("packets", "sessions", "logins", "probes")


def day_text(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since 1970-01-01)."""
    return str(np.datetime64(day, "D"))


class Lake:
    """A data directory opened for reading, or for writing with :meth:`writer`."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            if not create:
                raise StoreError(
                    f"no data directory at {self.root} (ingest something first, or pass --data)"
                )
            self.root.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.root / "catalog.sqlite")
        self._lock: IO[str] | None = None

    def close(self) -> None:
        self.unlock()
        self.catalog.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- writing -------------------------------------------------------------

    def lock(self) -> None:
        """Take the writer lock and clear what a crashed writer left."""
        f = open(self.root / ".lock", "w")  # noqa: SIM115 - held until unlock()
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise StoreError(f"{self.root} is being written by another teiten process") from None
        self._lock = f
        self.catalog.abandon_unfinished()
        shutil.rmtree(self.root / ".staging", ignore_errors=True)
        self._remove_unlisted()

    def unlock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _remove_unlisted(self) -> None:
        for table in TABLE_DIRS:
            listed = {self.root / p for p in self.catalog.files(table)}
            for path in (self.root / table).glob("sensor=*/date=*/*.parquet"):
                if path not in listed:
                    path.unlink()

    def staging(self, input_id: int) -> Path:
        path = self.root / ".staging" / f"{input_id:06d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def discard(self, input_id: int) -> None:
        shutil.rmtree(self.root / ".staging" / f"{input_id:06d}", ignore_errors=True)

    def publish(
        self, input_id: int, staged: list[tuple[str, str, int]]
    ) -> list[tuple[str, str, int, int]]:
        """Move staged files into the lake; returns catalog rows (table, path, rows, bytes).

        ``staged`` holds ``(table, path relative to the lake root, rows)``. The
        files become visible to readers only when the catalog commit lists them.
        """
        out = []
        stage = self.staging(input_id)
        for table, rel, rows in staged:
            src = stage / rel
            dst = self.root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            size = src.stat().st_size
            os.replace(src, dst)
            out.append((table, rel, rows, size))
        self.discard(input_id)
        return out

    # --- reading -------------------------------------------------------------

    def files(self, table: str = "packets") -> list[Path]:
        """Absolute paths of the committed files of a table."""
        return [self.root / p for p in self.catalog.files(table)]


class PacketWriter:
    """Writes packet batches of one input into staged Parquet files, one or more per day."""

    def __init__(
        self,
        lake: Lake,
        input_id: int,
        sensor: str,
        *,
        row_group_rows: int = 1 << 20,
        max_open_days: int = 4,
    ) -> None:
        self.lake = lake
        self.input_id = input_id
        self.sensor = sensor
        self.row_group_rows = row_group_rows
        self.max_open_days = max_open_days
        self.schema = arrow_schema()
        self.options = writer_options()
        self._stage = lake.staging(input_id)
        self._open: dict[int, _DayFile] = {}
        self._parts: dict[int, int] = {}
        self.staged: list[tuple[str, str, int]] = []
        self.labels: dict[str, list[str]] = {}
        """Text of the codes of ``str`` columns (e.g. ``src_as_org``), growing."""

    def write(self, columns: dict[str, Any]) -> None:
        """Add packets; they are split by UTC day."""
        self.write_parts(self.prepare(columns))

    def prepare(self, columns: dict[str, Any]) -> list[tuple[int, pa.Table]]:
        """The stored tables of a batch, one per UTC day, rows grouped by source.

        Needs no writer state, so it runs in the decoding thread.
        """
        ts = columns["ts"]
        if len(ts) == 0:
            return []
        days = ts // NS_PER_DAY
        first = int(days[0])
        if first == int(days[-1]) and (days == first).all():
            order = source_order(columns["src_ip4"])
            return [(first, to_table(columns, self.schema, order, self._labels()))]
        parts = []
        for d in np.unique(days).tolist():
            rows = np.flatnonzero(days == d)
            order = rows[source_order(columns["src_ip4"][rows])]
            parts.append((int(d), to_table(columns, self.schema, order, self._labels())))
        return parts

    def _labels(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.labels.items()}  # a snapshot per batch

    def write_parts(self, parts: list[tuple[int, pa.Table]]) -> None:
        """Add tables made by :meth:`prepare`."""
        for day, table in parts:
            self._day(day).add(table)

    def _day(self, day: int) -> _DayFile:
        f = self._open.get(day)
        if f is None:
            if len(self._open) >= self.max_open_days:
                oldest = min(self._open)
                self._finish(oldest)
            part = self._parts.get(day, 0)
            self._parts[day] = part + 1
            rel = (
                f"packets/sensor={self.sensor}/date={day_text(day)}/"
                f"in{self.input_id:06d}-{part:03d}.parquet"
            )
            f = self._open[day] = _DayFile(self._stage, rel, self)
        return f

    def _finish(self, day: int) -> None:
        f = self._open.pop(day)
        rows = f.close()
        if rows:
            self.staged.append(("packets", f.rel, rows))

    def close(self) -> list[tuple[str, str, int]]:
        """Flush and close every file; returns ``(table, relative path, rows)`` staged."""
        for day in sorted(self._open):
            self._finish(day)
        return self.staged

    def abort(self) -> None:
        for f in self._open.values():
            f.abort()
        self._open.clear()


class _DayFile:
    """One staged Parquet file, buffering tables until a row group is full."""

    def __init__(self, stage: Path, rel: str, owner: PacketWriter) -> None:
        self.rel = rel
        self.path = stage / rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = owner
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= self.owner.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self.pending_rows:
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.owner.schema, **self.owner.options)
        # Each batch is already grouped by source (prepare); chunks are not copied.
        # Dictionary columns (src_as_org) may differ per batch as labels grow.
        table = pa.concat_tables(self.pending).unify_dictionaries()
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows
        self.pending, self.pending_rows = [], 0

    def close(self) -> int:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        return self.rows

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.path.unlink(missing_ok=True)


class TableWriter:
    """Writes one input's rows of a small table (sessions, logins) into staged day files.

    Rows are buffered and written as a new part file per day whenever the
    buffer passes ``flush_bytes``, so memory stays bounded however many
    sessions an input holds.
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
    ) -> None:
        self.lake, self.input_id, self.sensor, self.table = lake, input_id, sensor, table
        self.schema, self.ts_column, self.flush_bytes = schema, ts_column, flush_bytes
        self._stage = lake.staging(input_id)
        self._pending: list[pa.Table] = []
        self._bytes = 0
        self._parts: dict[int, int] = {}
        self.staged: list[tuple[str, str, int]] = []

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
        days = table.column(self.ts_column).to_numpy() // NS_PER_DAY
        for day in np.unique(days).tolist():
            part = self._parts.get(day, 0)
            self._parts[day] = part + 1
            rel = (
                f"{self.table}/sensor={self.sensor}/date={day_text(day)}/"
                f"in{self.input_id:06d}-{part:03d}.parquet"
            )
            path = self._stage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = table.filter(pa.array(days == day))
            pq.write_table(rows, path, compression="zstd")
            self.staged.append((self.table, rel, rows.num_rows))

    def close(self) -> list[tuple[str, str, int]]:
        self._flush()
        return self.staged
