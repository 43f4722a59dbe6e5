"""The data directory: a day-partitioned Parquet lake written atomically, plus its catalog.

Layout::

    DATA/catalog.sqlite                       the catalog (teiten.store.catalog)
    DATA/packets/sensor=NAME/date=YYYY-MM-DD/inNNNNNN-PPP.parquet
    DATA/sessions/…, DATA/logins/…, DATA/probes/…   the same layout (see :func:`part_path`)
    DATA/.staging/NNNNNN/…                     an input's files under way
    DATA/.staging/rewrite/…                    replacement files under way (enrich)

Every write goes through one protocol, a :class:`Transaction`: files are
written into ``.staging``, then published (moved into place, still unlisted)
and listed in the catalog in one SQLite transaction. Ingest (packets, sessions,
logins), back-check runs (probes) and ``teiten enrich`` (files replaced by
rewritten ones) all use it, and every path comes from :func:`part_path`.
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
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.errors import StoreError
from teiten.schema import DAY_NS, LEGACY_ROLLUPS
from teiten.store.arrow import layout_of, write_file
from teiten.store.budget import QUARANTINE
from teiten.store.catalog import Catalog, Published
from teiten.store.rollup import ROLLUP_TABLES

NS_PER_DAY = DAY_NS
TABLE_DIRS = ("packets", "sessions", "logins", "probes", *ROLLUP_TABLES, *LEGACY_ROLLUPS)
"""The tables with files in the lake (``LEGACY_ROLLUPS`` until a rebuild drops them)."""


def quarantine_table(table: str) -> str:
    """The catalog table of a table's quarantined rows (``packets_quarantine``)."""
    return f"{table}_quarantine"


LOCK_POLL_SECONDS = 0.2
"""How often a writer waiting for the lock tries again."""


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def day_text(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since 1970-01-01)."""
    return str(np.datetime64(day, "D"))


def part_path(table: str, sensor: str, day: int, input_id: int, part: int = 0) -> str:
    """The path of one part file, relative to the lake root (the one place it is spelt).

    ``TABLE/sensor=S/date=YYYY-MM-DD/inNNNNNN-PPP.parquet``, or for rows of day
    :data:`QUARANTINE` ``quarantine/TABLE/sensor=S/inNNNNNN-PPP.parquet``. The
    query views read ``input_id`` back from the name.
    """
    name = f"in{input_id:06d}-{part:03d}.parquet"
    if day == QUARANTINE:
        return f"quarantine/{table}/sensor={sensor}/{name}"
    return f"{table}/sensor={sensor}/date={day_text(day)}/{name}"


def pack_path(table: str, sensor: str, month: str, serial: int) -> str:
    """The path of a pack (``teiten.store.pack``) of the UTC month ``YYYY-MM``:
    ``TABLE/sensor=S/date=YYYY-MM-01/packYYYYMM-NNNNNN.parquet`` (no input in its name;
    ``serial`` numbers the store's packs)."""
    name = f"pack{month.replace('-', '')}-{serial:06d}.parquet"
    return f"{table}/sensor={sensor}/date={month}-01/{name}"


def listed_as(table: str, day: int) -> str:
    """The catalog table a part file of ``day`` is listed under (``packets_quarantine``…)."""
    return quarantine_table(table) if day == QUARANTINE else table


_PART = re.compile(r"in([0-9]+)-([0-9]+)[.]parquet$")
_DATE = re.compile(r"/date=([0-9]{4}-[0-9]{2}-[0-9]{2})/")

PACK_SERIAL = "pack_serial"
"""The catalog property holding the last pack number given (:meth:`Transaction.pack_target`)."""
DAY_ZONE = "day_zone"
SKETCH_HOME = "sketch_home"
"""The catalog property naming the store's day zone (:meth:`Lake.day_zone`)."""


def _replacement_path(rel: str, taken: set[str]) -> str:
    """A new part name beside ``rel`` (same input, next free part number)."""
    m = _PART.search(rel)
    if m is None:
        raise StoreError(f"{rel} is not a part file of the lake")
    input_id, part = int(m.group(1)), int(m.group(2))
    while True:
        part += 1
        new = f"{rel[: m.start()]}in{input_id:06d}-{part:03d}.parquet"
        if new not in taken:
            return new


@dataclass(frozen=True)
class Staged:
    """A file written into a transaction's staging folder, waiting to be listed."""

    table: str
    """Catalog table it is listed under (``packets``, ``packets_quarantine``, ``probes``…)."""
    path: str
    """Path relative to the lake root, the same in staging and in place."""
    rows: int
    replaces: str | None = None
    """For a rewrite: the listed file this one replaces."""
    inputs: tuple[int, ...] = ()
    """For a pack (:meth:`Transaction.pack_target`): the inputs whose rows it holds."""


class Transaction:
    """Files on their way into the lake: staged, then published and listed at once.

    The one write protocol of the store. Writers ask :meth:`target` for where
    to write a part file (inside ``.staging``), write it, and :meth:`add` it
    (or :meth:`write` a whole table in one call). :meth:`commit` moves every
    staged file into place and lists them — an input's files together with the
    input's ``done`` row — in one SQLite transaction; :meth:`commit_replacements`
    does the same for rewritten files, swapping each listed path for its
    replacement, then removes the replaced files. Until the catalog commit, no
    reader sees any of it; an exception before it (the ``with`` block) discards
    the staged files and marks the input failed, and the next writer's
    :meth:`Lake.lock` removes whatever was published but not listed.
    """

    def __init__(self, lake: Lake, input_id: int | None) -> None:
        self.lake = lake
        self.input_id = input_id
        """The catalog input whose files these are; None for a rewrite of listed files."""
        key = "rewrite" if input_id is None else f"{input_id:06d}"
        self.stage = lake.root / ".staging" / key
        self.stage.mkdir(parents=True, exist_ok=True)
        self.staged: list[Staged] = []
        self.done = False
        self.removed: list[str] = []
        """Listed files a rewrite drops (:meth:`remove`)."""
        self._taken: set[str] | None = None
        self.serial: int | None = None
        """The last pack number given (:meth:`pack_target`); None before the first."""

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.done:
            self.fail(e)

    def target(self, table: str, sensor: str, day: int, part: int = 0) -> tuple[str, Path]:
        """Where to write a part file: its relative path and its staging path."""
        if self.input_id is None:
            raise StoreError("a rewrite transaction stages replacements only")
        rel = part_path(table, sensor, day, self.input_id, part)
        path = self.stage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return rel, path

    def replacement(self, rel: str) -> tuple[str, Path]:
        """Where to write the replacement of the listed file ``rel``: a new part name."""
        if self._taken is None:  # every listed path, read once per transaction
            self._taken = set(self.lake.catalog.all_files())
        new = _replacement_path(rel, self._taken)
        self._taken.add(new)
        path = self.stage / new
        path.parent.mkdir(parents=True, exist_ok=True)
        return new, path

    def add(
        self,
        table: str,
        rel: str,
        rows: int,
        replaces: str | None = None,
        inputs: Sequence[int] = (),
    ) -> None:
        """Count a written staged file in (``table``: the catalog table it is listed under;
        ``inputs``: a pack's inputs)."""
        self.staged.append(Staged(table, rel, rows, replaces, tuple(inputs)))

    def pack_target(self, table: str, sensor: str, month: str) -> tuple[str, Path]:
        """Where to write a new pack of ``table`` (``teiten.store.pack``) holding rows of
        the UTC month ``month`` (``YYYY-MM``): its relative path and its staging path.
        Every pack gets a number never used before in the store (the catalog property
        ``pack_serial``, set by :meth:`commit_replacements`), so a reader still holding
        an older listing never opens a new file under an old name."""
        if self.input_id is not None:
            raise StoreError("packs are written by a rewrite transaction")
        if self.serial is None:
            self.serial = int(self.lake.catalog.property(PACK_SERIAL) or 0)
        self.serial += 1
        rel = pack_path(table, sensor, month, self.serial)
        path = self.stage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return rel, path

    def write(self, table: str, sensor: str, day: int, data: pa.Table, part: int = 0) -> Staged:
        """Write a whole part file of ``data`` (with the table's file options) and add it."""
        rel, path = self.target(table, sensor, day, part)
        write_file(table, data, path)
        self.add(listed_as(table, day), rel, data.num_rows)
        return self.staged[-1]

    def publish(self, staged: list[Staged] | None = None) -> list[Published]:
        """Move staged files into place (still unlisted); returns (table, path, rows, bytes,
        layout: :func:`~teiten.store.arrow.layout_of`)."""
        out = []
        for f in self.staged if staged is None else staged:
            src, dst = self.stage / f.path, self.lake.root / f.path
            dst.parent.mkdir(parents=True, exist_ok=True)
            size = src.stat().st_size
            layout = layout_of(src)
            os.replace(src, dst)
            out.append((f.table, f.path, f.rows, size, layout))
        return out

    def commit(
        self,
        *,
        records: int,
        packets: int,
        malformed: dict[str, int],
        skipped: dict[str, int],
        enrichment: str,
        sha256: str | None = None,
        message: str = "",
    ) -> list[Published]:
        """Publish the input's files and list them as it is marked done, in one transaction."""
        if self.input_id is None or any(f.replaces for f in self.staged):
            raise StoreError("commit() lists an input's new files; use commit_replacements()")
        files = self.publish()
        self.lake.catalog.commit(
            self.input_id,
            files,
            records=records,
            packets=packets,
            malformed=malformed,
            skipped=skipped,
            enrichment=enrichment,
            sha256=sha256,
            message=message,
        )
        self._finish()
        return files

    def commit_replacements(
        self, enrichment: str | None = None, *, properties: dict[str, str] | None = None
    ) -> list[Published]:
        """Publish the replacements and swap them for the files they replace, in one transaction.

        ``enrichment`` (when given) is recorded for every committed input, and
        ``properties`` set (the sketches' :meth:`Lake.day_zone` and :meth:`Lake.sketch_home`),
        in the same transaction. The replaced and removed files are deleted afterwards.
        """
        if self.input_id is not None:
            raise StoreError("commit_replacements() swaps files; use commit() for new ones")
        files = self.publish()
        swapped, added, packs = [], [], []
        for f, (table, rel, rows, size, layout) in zip(self.staged, files, strict=True):
            if f.replaces is not None:
                swapped.append((f.replaces, rel, rows, size, layout))
            elif f.inputs:  # a pack of the rows of many inputs
                packs.append((table, rel, rows, size, f.inputs, layout))
            else:  # a new file of the input its name says (``rebuild`` of a rollup)
                added.append((_input_of(rel), table, rel, rows, size, layout))
        if self.serial is not None:
            properties = {**(properties or {}), PACK_SERIAL: str(self.serial)}
        self.lake.catalog.replace(
            swapped,
            enrichment=enrichment,
            added=added,
            removed=self.removed,
            properties=properties,
            packs=packs,
        )
        self._finish()
        for gone in [f.replaces for f in self.staged if f.replaces] + self.removed:
            (self.lake.root / gone).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # a day folder a pack emptied
                (self.lake.root / gone).parent.rmdir()
        return files

    def remove(self, rel: str) -> None:
        """Drop a listed file at :meth:`commit_replacements` (a rewrite that needs it no more)."""
        self.removed.append(rel)

    def discard(self) -> None:
        """Remove the staged files (published ones are removed by the next writer's lock)."""
        shutil.rmtree(self.stage, ignore_errors=True)
        self.lake._transactions.pop(self.input_id, None)

    def fail(self, e: BaseException | None = None) -> None:
        """Discard the staged files and mark the input failed, as far as the disk allows."""
        self.discard()
        self.done = True
        if self.input_id is not None:
            # On a full disk even this update may fail; the next writer marks it failed then.
            with contextlib.suppress(sqlite3.Error, OSError):
                reason = (str(e) or type(e).__name__) if e is not None else "abandoned"
                self.lake.catalog.fail(self.input_id, reason)

    def _finish(self) -> None:
        self.done = True
        self.discard()


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
            m = _DATE.search(rel)
            if m is not None:
                by_day.setdefault(m.group(1), []).append(rel)
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

    def unsketched(self, tables: Sequence[str]) -> list[int]:
        """Inputs with ``port_hours`` files but no files of one of the sketch ``tables``
        (ingested before they existed, until ``teiten rollup`` adds them)."""
        rolled = inputs_of(self.catalog.files("port_hours"))
        missing: set[int] = set()
        for table in tables:
            packed = {i for _, _, inputs in self.catalog.packs(table) for i in inputs}
            missing |= rolled - inputs_of(self.catalog.files(table)) - packed
        return sorted(missing)

    def rollup_rows_by_day(self) -> dict[str, int]:
        """``port_hours`` rows per UTC day (``YYYY-MM-DD``) of the committed files."""
        days: dict[str, int] = {}
        for path, rows in self.catalog.file_rows("port_hours"):
            m = _DATE.search(path)
            if m is not None:
                days[m.group(1)] = days.get(m.group(1), 0) + rows
        return days

    def unrolled(self) -> list[int]:
        """Inputs that list packet files but no rollup files (ingested before rollups
        existed): the query views roll their packets up when read."""
        rolled = inputs_of(self.catalog.files(ROLLUP_TABLES[0]))
        return sorted(inputs_of(self.catalog.files("packets")) - rolled)


def _ts_bounds(path: Path) -> tuple[int, int] | tuple[()] | None:
    """The smallest and largest ``ts_us`` of a packet file by its footer; ``()`` for a
    file without rows, None when a row group has no statistics."""
    meta = pq.ParquetFile(path).metadata
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


def _input_of(rel: str) -> int:
    """The input id in the name of a part file."""
    m = _PART.search(rel)
    if m is None:
        raise StoreError(f"{rel} is not a part file of the lake")
    return int(m.group(1))


def inputs_of(paths: Sequence[str]) -> set[int]:
    """The input ids in the names of part files (none for a pack's name)."""
    return {int(m.group(1)) for p in paths if (m := _PART.search(p)) is not None}
