"""Alert state kept in the catalog: the ``alerts`` and ``deliveries`` tables.

Both are declared in :mod:`teiten.schema` (``ALERTS``, ``DELIVERIES``) and
their SQLite tables derive from the declarations. This module only persists
rows — plain dicts keyed by the declared column names — in one transaction
per detection run; which stored alert a new detection continues is analysis
policy (:func:`teiten.analysis.alerts.merge_alerts`), not the store's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teiten.errors import StoreError
from teiten.schema import ALERTS, DELIVERIES
from teiten.store.catalog import connect_read_only, state_table_ddl

AlertRow = dict[str, Any]
"""One ``alerts`` row: a value for every column of :data:`teiten.schema.ALERTS`
(``id`` None for a row not stored yet; ``evidence`` is JSON text)."""

COLUMNS: tuple[str, ...] = tuple(c.name for c in ALERTS.columns)
_VALUES = tuple(c for c in COLUMNS if c != ALERTS.key)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM alerts ORDER BY onset, port, segment"


class AlertStore:
    """The ``alerts`` and ``deliveries`` tables of a data directory's catalog, for writing."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            self._db.executescript(state_table_ddl(ALERTS) + state_table_ddl(DELIVERIES))
        except sqlite3.OperationalError as e:
            self._db.close()
            if "readonly" in str(e):
                raise StoreError(f"data folder {path.parent} is read-only") from None
            raise

    def close(self) -> None:
        self._db.close()

    def rows(self) -> list[AlertRow]:
        """Every stored alert row, by onset, port and segment."""
        return _rows(self._db)

    def save(self, rows: Sequence[AlertRow], ended: Sequence[int], now: str) -> list[int]:
        """Write a detection run's alert rows in one transaction; returns their ids.

        A row whose ``id`` is None is inserted, any other replaces the stored
        row with that id; the alerts ``ended`` (ids) become ``ended``. Every
        written row's ``updated`` is ``now``.
        """
        ids: list[int] = []
        sets = ", ".join(f"{c} = ?" for c in _VALUES)
        insert = (
            f"INSERT INTO alerts ({', '.join(_VALUES)}) VALUES ({', '.join('?' * len(_VALUES))})"
        )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                values = [now if c == "updated" else row[c] for c in _VALUES]
                if row.get(ALERTS.key) is None:
                    cur = self._db.execute(insert, values)
                    assert cur.lastrowid is not None
                    ids.append(cur.lastrowid)
                else:
                    self._db.execute(f"UPDATE alerts SET {sets} WHERE id = ?", [*values, row["id"]])
                    ids.append(int(row["id"]))
            self._db.executemany(
                "UPDATE alerts SET state='ended', ongoing=0, updated=? WHERE id=?",
                [(now, i) for i in ended],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return ids

    def delivered(self, key: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM deliveries WHERE key=?", (key,)).fetchone() is not None
        )

    def mark_delivered(self, key: str, now: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO deliveries (key, sent) VALUES (?, ?)", (key, now))


def _rows(db: sqlite3.Connection) -> list[AlertRow]:
    return [dict(zip(COLUMNS, r, strict=True)) for r in db.execute(_SELECT).fetchall()]


def read_alert_rows(path: Path) -> list[AlertRow]:
    """Every stored alert row, read without writing (no table created, no lock kept)."""
    if not path.exists():
        return []
    db = connect_read_only(path)
    try:
        known = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'"
        ).fetchone()
        return [] if known is None else _rows(db)
    finally:
        db.close()
