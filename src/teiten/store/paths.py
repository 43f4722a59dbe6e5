"""Where files live in the lake: the one place their paths are spelt and read back.

``TABLE/sensor=S/date=YYYY-MM-DD/inNNNNNN-PPP.parquet`` for an input's part file
(:func:`part_path`), ``quarantine/TABLE/sensor=S/inNNNNNN-PPP.parquet`` for its
quarantined rows, ``TABLE/sensor=S/date=YYYY-MM-01/packYYYYMM-NNNNNN.parquet`` for a
pack of a month (:func:`pack_path`); the input id, the day and the month are read back
from those names (:func:`inputs_of`, :func:`date_of`, :func:`month_of`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from teiten.errors import StoreError
from teiten.store.budget import QUARANTINE


def quarantine_table(table: str) -> str:
    """The catalog table of a table's quarantined rows (``packets_quarantine``)."""
    return f"{table}_quarantine"


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

_MONTH = re.compile(r"^[^/]+/sensor=([^/]+)/date=([0-9]{4}-[0-9]{2})-[0-9]{2}/")


def date_of(rel: str) -> str | None:
    """The ``YYYY-MM-DD`` of a file's ``date=`` folder (None for a quarantine file)."""
    m = _DATE.search(rel)
    return m.group(1) if m is not None else None


def day_of(rel: str) -> int | None:
    """The day number (:func:`day_text`'s) of a file's ``date=`` folder (None for a
    quarantine file)."""
    text = date_of(rel)
    return int(np.datetime64(text, "D").astype(np.int64)) if text is not None else None


def month_of(rel: str) -> tuple[str, str] | None:
    """``(sensor, YYYY-MM)`` of a file of a table's day folders (None otherwise)."""
    m = _MONTH.match(rel)
    return (m.group(1), m.group(2)) if m else None


def replacement_path(rel: str, taken: set[str]) -> str:
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


def input_of(rel: str) -> int:
    """The input id in the name of a part file."""
    m = _PART.search(rel)
    if m is None:
        raise StoreError(f"{rel} is not a part file of the lake")
    return int(m.group(1))


def inputs_of(paths: Sequence[str]) -> set[int]:
    """The input ids in the names of part files (none for a pack's name)."""
    return {int(m.group(1)) for p in paths if (m := _PART.search(p)) is not None}
