"""The data directory: a day-partitioned Parquet lake written atomically, plus its catalog.

Layout::

    DATA/catalog.sqlite                       the catalog (teiten.store.catalog)
    DATA/packets/sensor=NAME/date=YYYY-MM-DD/inNNNNNN-PPP.parquet
    DATA/sessions/…, DATA/logins/…, DATA/probes/…   the same layout (teiten.store.paths)
    DATA/.staging/NNNNNN/…                     an input's files under way
    DATA/.staging/rewrite/…                    replacement files under way (enrich)

Every write goes through one protocol, a :class:`~teiten.store.transaction.Transaction`: files are
written into ``.staging``, then published (moved into place, still unlisted)
and listed in the catalog in one SQLite transaction. Ingest (packets, sessions,
logins), back-check runs (probes) and ``teiten enrich`` (files replaced by
rewritten ones) all use it, and every path comes from :mod:`teiten.store.paths`.
Readers read only the files the catalog lists, so no reader ever sees part of a
commit, and a crashed writer leaves only staging files and unlisted files that
the next writer clears.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from teiten.errors import StoreError
from teiten.schema import DAY_NS, LEGACY_ROLLUPS
from teiten.store.arrow import layout_of
from teiten.store.catalog import Catalog, Published
from teiten.store.paths import date_of, inputs_of, quarantine_table
from teiten.store.rollup import ROLLUP_TABLES
from teiten.store.transaction import Staged, Transaction

NS_PER_DAY = DAY_NS
TABLE_DIRS = ("packets", "sessions", "logins", "probes", *ROLLUP_TABLES, *LEGACY_ROLLUPS)
"""The tables with files in the lake (``LEGACY_ROLLUPS`` until a rebuild drops them)."""


LOCK_POLL_SECONDS = 0.2
"""How often a writer waiting for the lock tries again."""


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


DAY_ZONE = "day_zone"
SKETCH_HOME = "sketch_home"
"""The catalog property naming the store's day zone (:meth:`Lake.day_zone`)."""


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
        self._transactions: dict[int | None, Transaction] = {}

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
        self._record_layouts()

    def _record_layouts(self) -> None:
        """Record the layout of each listed file that has none (listed by a release that
        did not record them): one footer each, once per store."""
        found = []
        for rel in self.catalog.unlaid():
            with contextlib.suppress(OSError, pa.ArrowException):  # unreadable: stays unknown
                found.append((rel, layout_of(self.root / rel)))
        if found:
            self.catalog.set_layouts(found)

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

    def begin(self, path: str, size: int, sha256: str, sensor: str, quick: str = "") -> Transaction:
        """Register an input in the catalog (``ingesting``) and open its transaction."""
        return self.transaction(self.catalog.begin(path, size, sha256, sensor, quick))

    def transaction(self, input_id: int) -> Transaction:
        """The open transaction of an input (its writers share it), opened if needed."""
        tx = self._transactions.get(input_id)
        if tx is None:
            tx = self._transactions[input_id] = Transaction(self, input_id)
        return tx

    def rewriting(self) -> Transaction:
        """A transaction that replaces listed files by rewritten ones (``teiten enrich``)."""
        if self._lock is None:
            raise StoreError("rewriting the lake needs the writer lock")
        tx = self._transactions.get(None)
        if tx is None:
            tx = self._transactions[None] = Transaction(self, None)
        return tx

    def staging(self, input_id: int) -> Path:
        """The staging folder of an input's transaction."""
        return self.transaction(input_id).stage

    def discard(self, input_id: int) -> None:
        """Remove an input's staged files."""
        self.transaction(input_id).discard()

    def forget(self, input_id: int | None) -> None:
        """Drop a finished transaction (:meth:`Transaction.discard`): the next one of that
        input (or rewrite) starts afresh."""
        self._transactions.pop(input_id, None)

    def publish(self, input_id: int, staged: list[tuple[str, str, int]]) -> list[Published]:
        """Move staged files into place; returns catalog rows (table, path, rows, bytes,
        layout).

        The older two-step form of :meth:`Transaction.commit` (the caller then
        calls ``catalog.commit``), kept while callers move to the transaction.
        """
        tx = self.transaction(input_id)
        out = tx.publish([Staged(t, rel, rows) for t, rel, rows in staged])
        tx.discard()
        return out

    # --- reading -------------------------------------------------------------

    def files(self, table: str = "packets") -> list[Path]:
        """Absolute paths of the committed files of a table."""
        return [self.root / p for p in self.catalog.files(table)]

    def day_zone(self, default: str | None = None) -> str | None:
        """The zone the day sketches (``port_sketches``) cut days in (``teiten.store.sketch``).

        Set once, by the first writer that passes ``default`` (ingest: the ``tz``
        setting), and changed only by rebuilding every sketch (``teiten rollup``).
        """
        return self._property(DAY_ZONE, default)

    def sketch_home(self, default: str | None = None) -> str | None:
        """The country (two letters) whose sources the segment sketches (``port_segments``)
        count as domestic; set and changed as :meth:`day_zone` (ingest: ``home_country``)."""
        return self._property(SKETCH_HOME, default)

    def _property(self, name: str, default: str | None) -> str | None:
        value = self.catalog.property(name)
        if value is None and default is not None:
            self._check_locked()
            self.catalog.set_property(name, default)
            value = default
        return value

    def _check_locked(self) -> None:
        if self._lock is None:
            raise StoreError("changing the store's properties needs the writer lock")

    def packet_span(self) -> tuple[int, int] | None:
        """First and last packet time (ns, to the microsecond) from the footers of the
        packet files of the first and last UTC day (their ``ts_us`` statistics): a few
        footers instead of two days of packets. None when there are no packet files or
        a footer has no statistics (the caller then reads the packets)."""
        by_day: dict[str, list[str]] = {}
        for rel in self.catalog.files("packets"):
            day = date_of(rel)
            if day is not None:
                by_day.setdefault(day, []).append(rel)
        if not by_day:
            return None
        first = [_ts_bounds(self.root / rel) for rel in by_day[min(by_day)]]
        last = [_ts_bounds(self.root / rel) for rel in by_day[max(by_day)]]
        if any(b is None for b in first + last):
            return None
        lows = [b[0] for b in first if b]
        highs = [b[1] for b in last if b]
        if not lows or not highs:
            return None
        return min(lows) * 1000, max(highs) * 1000

    def inputs_with(self, table: str) -> set[int]:
        """The inputs with rows in ``table``: in files of their own or in packs."""
        packed = {i for _, _, inputs in self.catalog.packs(table) for i in inputs}
        return inputs_of(self.catalog.files(table)) | packed

    def unsketched(self, tables: Sequence[str]) -> list[int]:
        """Inputs with ``port_hours`` files but no files of one of the sketch ``tables``
        (ingested before they existed, until ``teiten rollup`` adds them)."""
        rolled = self.inputs_with("port_hours")
        return sorted(set().union(*(rolled - self.inputs_with(t) for t in tables)))

    def rollup_rows_by_day(self) -> dict[str, int]:
        """``port_hours`` rows per UTC day (``YYYY-MM-DD``) of the committed files."""
        days: dict[str, int] = {}
        for path, rows in self.catalog.file_rows("port_hours"):
            day = date_of(path)
            if day is not None:
                days[day] = days.get(day, 0) + rows
        return days

    def unsourced(self) -> list[int]:
        """Inputs that list packet files but no ``source_ports`` files (ingested before the
        table existed, until ``teiten rollup`` adds them): the view reads their packets."""
        return sorted(self.inputs_with("packets") - self.inputs_with("source_ports"))

    def unrolled(self) -> list[int]:
        """Inputs that list packet files but no rollup files (ingested before rollups
        existed): the query views roll their packets up when read."""
        return sorted(self.inputs_with("packets") - self.inputs_with(ROLLUP_TABLES[0]))


def _ts_bounds(path: Path) -> tuple[int, int] | tuple[()] | None:
    """The smallest and largest ``ts_us`` of a packet file by its footer; ``()`` for a
    file without rows, None when a row group has no statistics or the footer cannot be
    read (the engine then reads the packets, and says what is wrong with the file)."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):  # damaged or missing: ArrowInvalid, OSError
        return None
    column = meta.schema.names.index("ts_us") if "ts_us" in meta.schema.names else -1
    lows: list[int] = []
    highs: list[int] = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        if group.num_rows == 0:
            continue
        stats = group.column(column).statistics if column >= 0 else None
        if stats is None or not stats.has_min_max:
            return None
        lows.append(int(stats.min))
        highs.append(int(stats.max))
    return (min(lows), max(highs)) if lows else ()
