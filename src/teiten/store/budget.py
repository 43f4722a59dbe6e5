"""The days one input may write day partitions for; rows of other days are quarantined."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from teiten.schema import DAY_NS

QUARANTINE = -1
"""The "day" of rows that go to an input's quarantine file instead of a day partition."""
EARLIEST_NS = 631_152_000 * 1_000_000_000
"""1990-01-01 UTC: no capture teiten reads is older; earlier timestamps are implausible."""
MAX_DAYS_PER_INPUT = 64


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
        self.latest = (time.time_ns() if now_ns is None else now_ns) + DAY_NS
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
        days = np.where(self.plausible(ts), ts // DAY_NS, QUARANTINE)
        refused = [d for d in np.unique(days).tolist() if not self.admit(d)]
        if refused and refused != [QUARANTINE]:
            days[np.isin(days, refused)] = QUARANTINE
        return days
