"""Alert state kept in the catalog: one row per rise, updated as detection runs again.

A rise that is still going on when detection runs the next day updates its
row (``ongoing``) instead of raising a new alert; one that is no longer seen
rising becomes ``ended``. States: ``new`` (first seen in this run and still
rising), ``ongoing``, ``ended``.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from teiten.analysis.alerts import ONSET_MATCH_DAYS, Alert
from teiten.errors import StoreError

_DDL = """
CREATE TABLE IF NOT EXISTS alerts (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,
    port      TEXT NOT NULL,
    segment   TEXT NOT NULL,
    onset     TEXT NOT NULL,
    detected  TEXT NOT NULL,
    last      TEXT NOT NULL,
    ratio     REAL NOT NULL,
    score     REAL NOT NULL,
    baseline  REAL NOT NULL,
    peak      REAL NOT NULL,
    ongoing   INTEGER NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('new', 'ongoing', 'ended')),
    campaign  TEXT,
    evidence  TEXT NOT NULL,
    updated   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    key       TEXT PRIMARY KEY,
    sent      TEXT NOT NULL
);
"""

_FIELDS = (
    "kind",
    "port",
    "segment",
    "onset",
    "detected",
    "last",
    "ratio",
    "score",
    "baseline",
    "peak",
    "ongoing",
    "state",
    "campaign",
)


def _days(a: str, b: str) -> int:
    return abs((dt.date.fromisoformat(a) - dt.date.fromisoformat(b)).days)


class AlertStore:
    """The ``alerts`` and ``deliveries`` tables of a data directory's catalog."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            self._db.executescript(_DDL)
        except sqlite3.OperationalError as e:
            self._db.close()
            if "readonly" in str(e):
                raise StoreError(f"data folder {path.parent} is read-only") from None
            raise

    def close(self) -> None:
        self._db.close()

    def all(self) -> list[Alert]:
        rows = self._db.execute(
            f"SELECT id, {', '.join(_FIELDS)}, evidence FROM alerts ORDER BY onset, port, segment"
        ).fetchall()
        return [_alert(r) for r in rows]

    def merge(self, found: list[Alert], now: str) -> list[Alert]:
        """Store a detection run's alerts; returns every stored alert after the merge."""
        known = self.all()
        matched: set[int] = set()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for a in found:
                old = next(
                    (
                        k
                        for k in known
                        if k.id not in matched
                        and k.kind == a.kind
                        and k.port == a.port
                        and k.segment == a.segment
                        and _days(k.onset, a.onset) <= ONSET_MATCH_DAYS
                    ),
                    None,
                )
                if old is None:
                    a.state = "new" if a.ongoing else "ended"
                    a.id = self._insert(a, now)
                else:
                    a.id = old.id
                    a.state = "ongoing" if a.ongoing else "ended"
                    self._update(a, now)
                    matched.add(old.id or 0)
            for k in known:
                if k.id not in matched and k.state != "ended":
                    self._db.execute(
                        "UPDATE alerts SET state='ended', ongoing=0, updated=? WHERE id=?",
                        (now, k.id),
                    )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self.all()

    def _values(self, a: Alert, now: str) -> list[Any]:
        return [*(getattr(a, f) for f in _FIELDS), json.dumps(a.evidence, sort_keys=True), now]

    def _insert(self, a: Alert, now: str) -> int:
        cols = ", ".join((*_FIELDS, "evidence", "updated"))
        marks = ", ".join("?" * (len(_FIELDS) + 2))
        cur = self._db.execute(
            f"INSERT INTO alerts ({cols}) VALUES ({marks})", self._values(a, now)
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _update(self, a: Alert, now: str) -> None:
        sets = ", ".join(f"{f} = ?" for f in (*_FIELDS, "evidence", "updated"))
        self._db.execute(f"UPDATE alerts SET {sets} WHERE id = ?", [*self._values(a, now), a.id])

    def delivered(self, key: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM deliveries WHERE key=?", (key,)).fetchone() is not None
        )

    def mark_delivered(self, key: str, now: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO deliveries (key, sent) VALUES (?, ?)", (key, now))


def _alert(row: tuple[Any, ...]) -> Alert:
    values = dict(zip(("id", *_FIELDS, "evidence"), row, strict=True))
    values["ongoing"] = bool(values["ongoing"])
    values["evidence"] = json.loads(values["evidence"])
    return Alert(**values)


def read_stored_alerts(path: Path) -> list[Alert]:
    """Every stored alert, read without writing (no table created, no lock kept)."""
    if not path.exists():
        return []
    from teiten.store.catalog import connect_read_only

    db = connect_read_only(path)
    try:
        known = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'"
        ).fetchone()
        if known is None:
            return []
        rows = db.execute(
            f"SELECT id, {', '.join(_FIELDS)}, evidence FROM alerts ORDER BY onset, port, segment"
        ).fetchall()
    finally:
        db.close()
    return [_alert(r) for r in rows]
