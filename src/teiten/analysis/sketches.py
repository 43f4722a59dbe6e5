"""Whether the day sketches answer a per-port question, or the hourly rollup exactly.

Exact where it is cheap: a ranking or series counts distinct sources over the
``port_hours`` rows of its window while they are at most the scope's
``exact_rows`` (the ``exact_rollup_rows`` setting). Over more, and when the
sketches can answer — every input has them, the window's days are days of the
store's day zone, the split has no ASN or fingerprint and no ``sources24`` is
asked — it reads ``port_days`` (``teiten.store.sketch``): packets exact, sources
within the sketch's error.
"""

from __future__ import annotations

from teiten.analysis.window import Window
from teiten.engine import Engine
from teiten.schema import DAY_NS
from teiten.sql import traffic
from teiten.store.lake import day_text


def _midnights(window: Window) -> bool:
    """Whether the window starts and ends at local midnights."""
    return all(t % DAY_NS == 0 for t in traffic.local_bounds(window))


def sketched(engine: Engine, window: Window, *, split: str = "none", by_day: bool = True) -> bool:
    """Whether to read the day sketches for ``window`` (``by_day``: its buckets are days)."""
    cover = engine.coverage
    if not traffic.USE_ROLLUPS or cover.zone is None or split not in traffic.SKETCH_SPLITS:
        return False
    if window.tz.key != cover.zone or (by_day and window.size_ns != DAY_NS):
        return False
    if not traffic.hourly(window) or not _midnights(window):
        return False
    first, last = day_text(window.start_ns // DAY_NS), day_text((window.end_ns - 1) // DAY_NS)
    return cover.rows_between(first, last) > engine.scope.exact_rows
