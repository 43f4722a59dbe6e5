"""The catalog of ingested inputs and of the lake files each one committed.

The catalog is the lake's source of truth: a Parquet file is part of the data
only once the catalog lists it, and the catalog lists an input's files in the
same transaction that marks the input done. So an interrupted ingest leaves
nothing visible, and re-ingesting a file whose content hash is already
committed adds nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teiten.errors import StoreError
from teiten.schema import StateTable

_DDL = """
CREATE TABLE IF NOT EXISTS inputs (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    sensor      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ingesting', 'done', 'failed')),
    started     REAL NOT NULL,
    finished    REAL,
    records     INTEGER NOT NULL DEFAULT 0,
    packets     INTEGER NOT NULL DEFAULT 0,
    malformed   TEXT NOT NULL DEFAULT '{}',
    skipped     TEXT NOT NULL DEFAULT '{}',
    enrichment  TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS inputs_done_hash ON inputs(sha256) WHERE status = 'done';
CREATE TABLE IF NOT EXISTS properties (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    input_id    INTEGER NOT NULL REFERENCES inputs(id),
    tbl         TEXT NOT NULL,
    path        TEXT NOT NULL UNIQUE,
    rows        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    layout      TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS packs (
    tbl         TEXT NOT NULL,
    path        TEXT NOT NULL UNIQUE,
    rows        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    inputs      TEXT NOT NULL,
    layout      TEXT NOT NULL DEFAULT ''
);
"""
# ``layout``: a key of the file's columns (``teiten.store.arrow.layout_of``); '' for files
# listed before it was recorded.

Published = tuple[str, str, int, int, str]
"""A file moved into place: (table, relative path, rows, bytes, layout)."""
# ``packs``: files of a derived table that hold the rows of many committed inputs
# (``teiten.store.pack``); ``inputs`` is their ids as a JSON list. A pack replaces
# those inputs' own files of the table, in one transaction.


@dataclass
class InputRecord:
    """One row of the catalog's ``inputs`` table."""

    id: int
    path: str
    size: int
    sha256: str
    sensor: str
    status: str
    started: float
    finished: float | None
    records: int
    packets: int
    malformed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    enrichment: str = ""
    message: str = ""


class Catalog:
    """The SQLite catalog inside a data directory (``catalog.sqlite``).

    Opened for reading (``writable=False``) it never writes: SQLite opens the
    file with ``mode=ro`` (``immutable=1`` when the folder cannot be written,
    so no ``-shm``/``-wal`` file is needed), no table is created, and a
    missing catalog reads as an empty one. Readers therefore work on a
    read-only data folder.
    """

    def __init__(self, path: Path, *, writable: bool = True) -> None:
        self.path = path
        self.writable = writable
        try:
            if writable:
                self._db = self._open_for_writing(path)
            else:
                self._db = self._open_for_reading(path)
                self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            if _read_only_error(e):
                raise StoreError(f"data folder {path.parent} is read-only") from None
            if "disk is full" in str(e) or "disk I/O error" in str(e):
                raise StoreError(f"cannot write the catalog {path}: {e}") from None
            raise StoreError(f"catalog {path} is damaged or not a catalog: {e}") from None

    @staticmethod
    def _open_for_writing(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_DDL)
        columns = {r[1] for r in db.execute("PRAGMA table_info(inputs)")}
        if "quick" not in columns:  # catalogs made before the quick key existed
            db.execute("ALTER TABLE inputs ADD COLUMN quick TEXT NOT NULL DEFAULT ''")
        for table in ("files", "packs"):  # catalogs made before layouts were recorded
            if "layout" not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN layout TEXT NOT NULL DEFAULT ''")
        return db

    @staticmethod
    def _open_for_reading(path: Path) -> sqlite3.Connection:
        if not path.exists():  # nothing ingested yet: an empty catalog, in memory
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(_DDL)
            return db
        return connect_read_only(path)

    def close(self) -> None:
        self._db.close()

    def find_done(self, sha256: str) -> InputRecord | None:
        """The committed input with this content hash, if any."""
        row = self._db.execute(
            "SELECT * FROM inputs WHERE sha256 = ? AND status = 'done'", (sha256,)
        ).fetchone()
        return None if row is None else _record(row)

    def quick_matches(self, quick: str) -> list[int]:
        """Ids of committed inputs whose quick key (size, first and last MiB) is ``quick``."""
        rows = self._db.execute(
            "SELECT id FROM inputs WHERE quick = ? AND status = 'done'", (quick,)
        ).fetchall()
        return [r[0] for r in rows]

    def begin(self, path: str, size: int, sha256: str, sensor: str, quick: str = "") -> int:
        """Register an input being ingested; returns its id.

        ``sha256`` may be '' while the hash is still being computed; ``commit``
        then sets it.
        """
        cur = self._db.execute(
            "INSERT INTO inputs (path, size, sha256, sensor, status, started, quick)"
            " VALUES (?, ?, ?, ?, 'ingesting', ?, ?)",
            (path, size, sha256, sensor, time.time(), quick),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def commit(
        self,
        input_id: int,
        files: list[Published],
        *,
        records: int,
        packets: int,
        malformed: dict[str, int],
        skipped: dict[str, int],
        enrichment: str,
        sha256: str | None = None,
        message: str = "",
    ) -> None:
        """Make an input's files part of the lake, in one transaction.

        ``files`` holds ``(table, relative path, rows, bytes, layout)``; ``message`` says
        why an input was stopped early (what was read before is committed).
        """
        with self._transaction():
            self._db.executemany(
                "INSERT INTO files (input_id, tbl, path, rows, bytes, layout)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(input_id, *f) for f in files],
            )
            if sha256 is not None:
                self._db.execute("UPDATE inputs SET sha256=? WHERE id=?", (sha256, input_id))
            self._db.execute(
                "UPDATE inputs SET status='done', finished=?, records=?, packets=?,"
                " malformed=?, skipped=?, enrichment=?, message=? WHERE id=?",
                (
                    time.time(),
                    records,
                    packets,
                    json.dumps(malformed, sort_keys=True),
                    json.dumps(skipped, sort_keys=True),
                    enrichment,
                    message[:500],
                    input_id,
                ),
            )

    def replace(
        self,
        files: list[tuple[str, str, int, int, str]],
        *,
        enrichment: str | None = None,
        added: Sequence[tuple[int, str, str, int, int, str]] = (),
        removed: Sequence[str] = (),
        properties: Mapping[str, str] | None = None,
        packs: Sequence[tuple[str, str, int, int, Sequence[int], str]] = (),
    ) -> None:
        """Swap listed files for their replacements, in one transaction.

        ``files`` holds ``(listed path, new path, rows, bytes, layout)``; each new file
        takes the listed one's place (input, table, commit order). ``added``
        lists new files of committed inputs (``(input id, table, path, rows,
        bytes, layout)``), ``packs`` new packs (``(table, path, rows, bytes, input ids,
        layout)``) and
        ``removed`` listed paths (files or packs) to drop, and ``properties`` are set,
        in the same transaction. With ``enrichment``, every committed input records it
        too.
        """
        with self._transaction():
            for old, new, rows, size, layout in files:
                cur = self._db.execute(
                    "UPDATE files SET path=?, rows=?, bytes=?, layout=? WHERE path=?",
                    (new, rows, size, layout, old),
                )
                if cur.rowcount != 1:
                    raise StoreError(f"{old} is not listed in the catalog")
            for input_id, table, path, rows, size, layout in added:
                self._db.execute(
                    "INSERT INTO files (input_id, tbl, path, rows, bytes, layout)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (input_id, table, path, rows, size, layout),
                )
            for table, path, rows, size, inputs, layout in packs:
                self._db.execute(
                    "INSERT INTO packs (tbl, path, rows, bytes, inputs, layout)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (table, path, rows, size, json.dumps(sorted(int(i) for i in inputs)), layout),
                )
            for path in removed:
                gone = self._db.execute("DELETE FROM files WHERE path=?", (path,)).rowcount
                gone += self._db.execute("DELETE FROM packs WHERE path=?", (path,)).rowcount
                if gone != 1:
                    raise StoreError(f"{path} is not listed in the catalog")
            for name, value in (properties or {}).items():
                self._set_property(name, value)
            if enrichment is not None:
                self._db.execute(
                    "UPDATE inputs SET enrichment=? WHERE status='done'", (enrichment,)
                )

    def all_files(self) -> list[str]:
        """Relative paths of every file the catalog lists, of every table (packs too)."""
        own = [r[0] for r in self._db.execute("SELECT path FROM files")]
        try:
            return own + [r[0] for r in self._db.execute("SELECT path FROM packs")]
        except sqlite3.OperationalError:  # a read-only catalog made before packs existed
            return own

    def fail(self, input_id: int, message: str) -> None:
        """Mark an input failed (its staged files are discarded by the caller)."""
        self._db.execute(
            "UPDATE inputs SET status='failed', finished=?, message=? WHERE id=?",
            (time.time(), message[:500], input_id),
        )

    def abandon_unfinished(self) -> list[int]:
        """Mark inputs left 'ingesting' by a crashed run as failed; return their ids."""
        ids = [r[0] for r in self._db.execute("SELECT id FROM inputs WHERE status='ingesting'")]
        for i in ids:
            self.fail(i, "interrupted")
        return ids

    def files(self, table: str) -> list[str]:
        """Relative paths of the committed files of a table, in commit order (its packs
        last)."""
        return [path for path, _ in self.file_rows(table)]

    def file_rows(self, table: str) -> list[tuple[str, int]]:
        """``(relative path, rows)`` of the committed files of a table (its packs last)."""
        own = [
            (r[0], int(r[1]))
            for r in self._db.execute(
                "SELECT f.path, f.rows FROM files f JOIN inputs i ON i.id = f.input_id"
                " WHERE f.tbl = ? AND i.status = 'done' ORDER BY f.rowid",
                (table,),
            )
        ]
        return own + [(path, rows) for path, rows, _ in self.packs(table)]

    def unlaid(self) -> list[str]:
        """Listed paths (files and packs) whose layout is not recorded."""
        own = self._db.execute("SELECT path FROM files WHERE layout = ''").fetchall()
        packed = self._db.execute("SELECT path FROM packs WHERE layout = ''").fetchall()
        return [str(r[0]) for r in own + packed]

    def set_layouts(self, layouts: Sequence[tuple[str, str]]) -> None:
        """Record ``(path, layout)`` of listed files and packs, in one transaction."""
        with self._transaction():
            for table in ("files", "packs"):
                self._db.executemany(
                    f"UPDATE {table} SET layout = ? WHERE path = ?",
                    [(layout, path) for path, layout in layouts],
                )

    def layouts(self, table: str) -> set[str]:
        """The layouts of a table's committed files and packs ('' for a file listed before
        layouts were recorded, or in a read-only catalog made before then)."""
        try:
            own = self._db.execute(
                "SELECT DISTINCT f.layout FROM files f JOIN inputs i ON i.id = f.input_id"
                " WHERE f.tbl = ? AND i.status = 'done'",
                (table,),
            ).fetchall()
            packed = self._db.execute(
                "SELECT DISTINCT layout FROM packs WHERE tbl = ?", (table,)
            ).fetchall()
        except sqlite3.OperationalError:
            return {""}
        return {str(r[0]) for r in own + packed}

    def packs(self, table: str) -> list[tuple[str, int, list[int]]]:
        """``(relative path, rows, input ids)`` of the packs of a table (none in a
        read-only catalog made before packs existed)."""
        try:
            found = self._db.execute(
                "SELECT path, rows, inputs FROM packs WHERE tbl = ? ORDER BY rowid", (table,)
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [(str(r[0]), int(r[1]), [int(i) for i in json.loads(r[2])]) for r in found]

    def property(self, name: str) -> str | None:
        """A property of the whole store (None when unset, or the catalog predates them)."""
        try:
            sql = "SELECT value FROM properties WHERE name = ?"
            row = self._db.execute(sql, (name,)).fetchone()
        except sqlite3.OperationalError:  # a read-only catalog made before properties existed
            return None
        return None if row is None else str(row[0])

    def set_property(self, name: str, value: str) -> None:
        """Set a property of the whole store."""
        with self._transaction():
            self._set_property(name, value)

    def _set_property(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO properties (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def inputs(self) -> list[InputRecord]:
        return [_record(r) for r in self._db.execute("SELECT * FROM inputs ORDER BY id")]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


_SQLITE_TYPES = {"float32": "REAL", "float64": "REAL", "str": "TEXT", "binary": "BLOB"}


def state_table_ddl(table: StateTable) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of a table kept in the catalog, from its declaration.

    Integers and booleans are ``INTEGER``, floats ``REAL``, text ``TEXT``;
    columns are ``NOT NULL`` unless declared nullable; the key is the primary
    key (an ``int64`` key is SQLite's rowid, assigned on insert); declared
    choices are ``CHECK`` constraints.
    """
    choices = dict(table.choices)
    lines = []
    for c in table.columns:
        kind = _SQLITE_TYPES.get(c.dtype, "INTEGER")
        line = f"{c.name} {kind}"
        if c.name == table.key:
            line += " PRIMARY KEY"
        elif not c.nullable:
            line += " NOT NULL"
        if c.name in choices:
            allowed = ", ".join(f"'{v}'" for v in choices[c.name])
            line += f" CHECK ({c.name} IN ({allowed}))"
        lines.append(line)
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {body}\n);\n"


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection to an existing catalog file that cannot write, even on a read-only folder.

    SQLite opens it with ``mode=ro``; where the folder or file cannot be written
    (a read-only mount, a copy owned by someone else) also ``immutable=1``, since
    a WAL database would otherwise need to create its ``-shm`` file.
    """
    frozen = not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK)
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if frozen else "")
    db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    db.execute("PRAGMA query_only=1")
    return db


def _read_only_error(e: sqlite3.DatabaseError) -> bool:
    text = str(e).lower()
    return "readonly" in text or "read-only" in text


def _record(row: tuple[Any, ...]) -> InputRecord:
    values = list(row)[:14]  # the columns InputRecord declares (later ones: quick)
    values[10] = json.loads(values[10])
    values[11] = json.loads(values[11])
    return InputRecord(*values)
