"""The one write protocol of the lake: files staged, published and listed at once.

See :class:`Transaction`; :class:`teiten.store.lake.Lake` opens them (``begin``,
``transaction``, ``rewriting``) and the paths come from :mod:`teiten.store.paths`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import pyarrow as pa

from teiten.errors import StoreError
from teiten.store.arrow import layout_of, write_file
from teiten.store.catalog import Published
from teiten.store.paths import input_of, listed_as, pack_path, part_path, replacement_path

if TYPE_CHECKING:
    from teiten.store.lake import Lake

PACK_SERIAL = "pack_serial"
"""The catalog property holding the last pack number given (:meth:`Transaction.pack_target`)."""


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

    def input_target(
        self, table: str, sensor: str, day: int, input_id: int, part: int = 0
    ) -> tuple[str, Path]:
        """Where a rewrite writes a new file of a committed input (a rollup the input
        lacks, ``teiten rollup``): its relative path and its staging path."""
        if self._taken is None:
            self._taken = set(self.lake.catalog.all_files())
        rel = part_path(table, sensor, day, input_id, part)
        if rel in self._taken:
            raise StoreError(f"{rel} is listed already")
        self._taken.add(rel)
        path = self.stage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return rel, path

    def replacement(self, rel: str) -> tuple[str, Path]:
        """Where to write the replacement of the listed file ``rel``: a new part name."""
        if self._taken is None:  # every listed path, read once per transaction
            self._taken = set(self.lake.catalog.all_files())
        new = replacement_path(rel, self._taken)
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
                added.append((input_of(rel), table, rel, rows, size, layout))
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
        self.lake.forget(self.input_id)

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
