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

import contextlib
import datetime as dt
import errno
import fcntl
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.errors import StoreError
from teiten.store.arrow import arrow_schema, to_table, writer_options
from teiten.store.catalog import Catalog
from teiten.store.order import source_order

NS_PER_DAY = 86_400 * 1_000_000_000
TABLE_DIRS = ("packets", "sessions", "logins", "probes")
QUARANTINE = -1
"""The "day" of rows that go to an input's quarantine file instead of a day partition."""
EARLIEST_NS = 631_152_000 * 1_000_000_000
"""1990-01-01 UTC: no capture teiten reads is older; earlier timestamps are implausible."""
MAX_DAYS_PER_INPUT = 64


def quarantine_table(table: str) -> str:
    """The catalog table of a table's quarantined rows (``packets_quarantine``)."""
    return f"{table}_quarantine"


class DayBudget:
    """Which UTC days one input may write day partitions for.

    A timestamp before :data:`EARLIEST_NS` or more than a day after now is
    implausible; so is every day after the first ``max_days`` distinct days
    of the input. Rows with implausible times go to the input's one
    quarantine file per table (``quarantine/TABLE/sensor=S/inNNNNNN-PPP.parquet``,
    catalog table ``TABLE_quarantine``), which analysis views never read. So
    random timestamps cost a bounded number of files, however many rows.
    """

    def __init__(self, max_days: int = MAX_DAYS_PER_INPUT, *, now_ns: int | None = None) -> None:
        self.max_days = max_days
        self.earliest = EARLIEST_NS
        self.latest = (time.time_ns() if now_ns is None else now_ns) + NS_PER_DAY
        self.days: set[int] = set()
        self._mutex = threading.Lock()  # packets admit in the decoding thread, sessions not

    def plausible(self, ts: Any) -> Any:
        """A boolean mask of the timestamps inside the plausible range."""
        return (ts >= self.earliest) & (ts <= self.latest)

    def admit(self, day: int) -> bool:
        """Whether rows of ``day`` (not :data:`QUARANTINE`) get a day partition."""
        with self._mutex:
            if day in self.days:
                return True
            if day == QUARANTINE or len(self.days) >= self.max_days:
                return False
            self.days.add(day)
            return True

    def days_of(self, ts: Any) -> Any:
        """The day of each timestamp, :data:`QUARANTINE` where it is implausible or its
        day is over the budget (days are admitted in order, earliest first per call)."""
        days = np.where(self.plausible(ts), ts // NS_PER_DAY, QUARANTINE)
        refused = [d for d in np.unique(days).tolist() if not self.admit(d)]
        if refused and refused != [QUARANTINE]:
            days[np.isin(days, refused)] = QUARANTINE
        return days


LOCK_POLL_SECONDS = 0.2
"""How often a writer waiting for the lock tries again."""


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def day_text(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since 1970-01-01)."""
    return str(np.datetime64(day, "D"))


class Lake:
    """A data directory opened for reading, or for writing once :meth:`lock` is called.

    Opened for reading, nothing in the folder is written (no catalog tables,
    no lock file), so readers work on a read-only data folder. ``create=True``
    (a writer) makes the folder if needed and opens the catalog for writing.
    """

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root} is a file, not a data folder (pass --data DIR)")
        if not self.root.is_dir():
            if not create:
                raise StoreError(
                    f"no data directory at {self.root} (ingest something first, or pass --data)"
                )
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create data folder {self.root}: {_reason(e)}") from None
        if create:
            self._check_writable()
        self.catalog = Catalog(self.root / "catalog.sqlite", writable=create)
        self._lock: int | None = None

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

    def _check_writable(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"data folder {self.root} is read-only")

    def holder(self) -> str:
        """The writer lock holder's note (``pid 123, teiten ingest, since …``), or ''."""
        try:
            with open(self.root / ".lock", "rb") as f:
                text = f.read(200).decode("utf-8", "replace")
        except OSError:
            return ""
        return " ".join(text.split())

    def lock(self, wait: float = 0.0) -> None:
        """Take the writer lock and clear what a crashed writer left.

        Another writer holding it makes this fail at once (``wait`` 0) or after
        waiting up to ``wait`` seconds (``math.inf``: until it is free); the
        message names the holder (pid, command, start time).
        """
        self._check_writable()
        try:
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise StoreError(f"data folder {self.root} is read-only") from None
            raise StoreError(f"cannot lock data folder {self.root}: {_reason(e)}") from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    holder = self.holder()
                    who = f" ({holder})" if holder else ""
                    waited = f" after waiting {wait:g}s" if wait > 0 else ""
                    raise StoreError(
                        f"{self.root} is being written by another teiten process{who}{waited};"
                        " wait for it, or use ingest --wait"
                    ) from None
                time.sleep(min(LOCK_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
        self._lock = fd
        try:
            os.ftruncate(fd, 0)
            note = f"pid {os.getpid()}, {' '.join(sys.argv[:2])[-80:]}, since {_now_text()}\n"
            os.pwrite(fd, note.encode("utf-8", "replace"), 0)
        except OSError:
            pass  # the note only helps the message of a refused writer
        if not self.catalog.writable:
            self.catalog.close()
            self.catalog = Catalog(self.root / "catalog.sqlite", writable=True)
        self.catalog.abandon_unfinished()
        shutil.rmtree(self.root / ".staging", ignore_errors=True)
        self._remove_unlisted()

    def unlock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock, 0)
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def _remove_unlisted(self) -> None:
        for table in TABLE_DIRS:
            for name, pattern in (
                (table, f"{table}/sensor=*/date=*/*.parquet"),
                (quarantine_table(table), f"quarantine/{table}/sensor=*/*.parquet"),
            ):
                listed = {self.root / p for p in self.catalog.files(name)}
                for path in self.root.glob(pattern):
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
    ) -> None:
        self.lake = lake
        self.input_id = input_id
        self.sensor = sensor
        self.row_group_rows = row_group_rows
        self.max_open_days = max_open_days
        self.budget = budget if budget is not None else DayBudget()
        self.schema = arrow_schema()
        self.options = writer_options()
        self._stage = lake.staging(input_id)
        self._open: dict[int, _DayFile] = {}
        self.staged: list[tuple[str, str, int]] = []
        self.quarantined = 0
        """Rows written to the quarantine file (implausible time, or a day over the budget)."""
        self.labels: dict[str, list[str]] = {}
        """Text of the codes of ``str`` columns (e.g. ``src_as_org``), growing."""

    def write(self, columns: dict[str, Any]) -> None:
        """Add packets; they are split by UTC day."""
        self.write_parts(self.prepare(columns))

    def prepare(self, columns: dict[str, Any]) -> list[tuple[int, pa.Table]]:
        """The stored tables of a batch, one per UTC day, rows grouped by source.

        Rows with implausible timestamps or of days over the budget come as one
        table of day :data:`QUARANTINE`. Needs no writer state but the (locked)
        budget, so it runs in the decoding thread.
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
            order = source_order(columns["src_ip4"])
            return [(day, to_table(columns, self.schema, order, self._labels()))]
        days = self.budget.days_of(ts)
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
            if day == QUARANTINE:
                self.quarantined += table.num_rows
            self._day(day).add(table)
        pending = sum(f.pending_rows for f in self._open.values())
        while pending > self.max_open_days * self.row_group_rows:
            largest = max(self._open.values(), key=lambda f: f.pending_rows)
            pending -= largest.pending_rows
            largest.flush()

    def _day(self, day: int) -> _DayFile:
        f = self._open.get(day)
        if f is None:
            name = f"in{self.input_id:06d}-000.parquet"
            if day == QUARANTINE:
                rel = f"quarantine/packets/sensor={self.sensor}/{name}"
            else:
                rel = f"packets/sensor={self.sensor}/date={day_text(day)}/{name}"
            f = self._open[day] = _DayFile(self._stage, rel, self)
        return f

    def close(self) -> list[tuple[str, str, int]]:
        """Flush and close every file; returns ``(table, relative path, rows)`` staged."""
        for day in sorted(self._open):
            f = self._open.pop(day)
            rows = f.close()
            if rows:
                table = quarantine_table("packets") if day == QUARANTINE else "packets"
                self.staged.append((table, f.rel, rows))
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
            self.flush()

    def flush(self) -> None:
        """Write the pending rows as one row group."""
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
        self.flush()
        if self.writer is not None:
            self.writer.close()
        return self.rows

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(OSError):  # a full disk may refuse the footer
                self.writer.close()
        self.path.unlink(missing_ok=True)


class TableWriter:
    """Writes one input's rows of a small table (sessions, logins) into staged day files.

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
        self._stage = lake.staging(input_id)
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
        for day in np.unique(days).tolist():
            part = self._parts.get(day, 0)
            self._parts[day] = part + 1
            name = f"in{self.input_id:06d}-{part:03d}.parquet"
            if day == QUARANTINE:
                kind = quarantine_table(self.table)
                rel = f"quarantine/{self.table}/sensor={self.sensor}/{name}"
            else:
                kind = self.table
                rel = f"{self.table}/sensor={self.sensor}/date={day_text(day)}/{name}"
            path = self._stage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = table.filter(pa.array(days == day))
            pq.write_table(rows, path, compression="zstd")
            self.staged.append((kind, rel, rows.num_rows))
            if day == QUARANTINE:
                self.quarantined += rows.num_rows

    def close(self) -> list[tuple[str, str, int]]:
        self._flush()
        return self.staged
