"""Time windows and local-time buckets (days, hours) expressed as portable SQL.

Days are cut in the operator's time zone. Instead of a per-row time-zone
conversion, the few UTC-offset changes inside a window are found once in Python
and written into the SQL as a ``CASE`` on the integer ns timestamp, which runs
the same on DuckDB and Spark and costs integer arithmetic per row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from teiten.errors import ConfigError
from teiten.sql import traffic

if TYPE_CHECKING:
    from teiten.engine import Engine

NS = 1_000_000_000
BUCKET_NS = {"day": 86_400 * NS, "hour": 3_600 * NS}
FIRST_DAY = dt.date(1970, 1, 2)
LAST_DAY = dt.date(2199, 12, 31)
"""The dates a window may cover (the store's timestamps are ns since 1970)."""
MAX_DAYS = 7_305
"""The longest window, twenty years: longer ones are a mistake, and finding a time
zone's offset changes (hour by hour) grows with the window."""


def parse_date(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` date, or a ConfigError naming the bad text."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a date: {text!r} (expected YYYY-MM-DD)") from None


def local_midnight_ns(day: dt.date, tz: ZoneInfo) -> int:
    """UTC ns of 00:00 local time on ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()) * NS


def _offset_ns(ts_ns: int, tz: ZoneInfo) -> int:
    when = dt.datetime.fromtimestamp(ts_ns // NS, tz)
    off = when.utcoffset()
    return int(off.total_seconds()) * NS if off is not None else 0


def offset_changes(start_ns: int, end_ns: int, tz: ZoneInfo) -> list[tuple[int, int]]:
    """``[(from_ns, offset_ns), …]``: the UTC offset in force from each instant on.

    The first entry starts at ``start_ns``; later ones at each change found by
    hourly steps refined by bisection.
    """
    out = [(start_ns, _offset_ns(start_ns, tz))]
    step = 3600 * NS
    t = start_ns
    while t < end_ns:
        nxt = min(t + step, end_ns)
        if _offset_ns(nxt, tz) != out[-1][1]:
            lo, hi = t, nxt
            while hi - lo > NS:
                mid = (lo + hi) // 2
                if _offset_ns(mid, tz) == out[-1][1]:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, _offset_ns(hi, tz)))
        t = nxt
    return out


@dataclass(frozen=True)
class Window:
    """A time window ``[start_ns, end_ns)`` cut into local buckets of one size."""

    start_ns: int
    end_ns: int
    tz: ZoneInfo
    by: str = "day"

    @classmethod
    def from_dates(cls, first: dt.date, last: dt.date, tz: str, by: str = "day") -> Window:
        """The window from local midnight of ``first`` to the end of ``last``."""
        if by not in BUCKET_NS:
            raise ConfigError(f"--by must be day or hour, not {by!r}")
        if last < first:
            raise ConfigError(f"the window ends ({last}) before it starts ({first})")
        zone = ZoneInfo(tz)
        return cls(
            local_midnight_ns(first, zone),
            local_midnight_ns(last + dt.timedelta(days=1), zone),
            zone,
            by,
        )

    @property
    def size_ns(self) -> int:
        """The length of one bucket in ns."""
        return BUCKET_NS[self.by]

    def offsets(self) -> list[tuple[int, int]]:
        """``[(from_ns, offset_ns), …]``: the UTC offsets in force inside the window."""
        return offset_changes(self.start_ns, self.end_ns, self.tz)

    def buckets(self) -> list[int]:
        """Every bucket number in the window, in order."""
        size = BUCKET_NS[self.by]
        first = (self.start_ns + _offset_ns(self.start_ns, self.tz)) // size
        last = (self.end_ns - 1 + _offset_ns(self.end_ns - 1, self.tz)) // size
        return list(range(first, last + 1))

    def label(self, bucket: int) -> str:
        """``YYYY-MM-DD`` for a day bucket, ``YYYY-MM-DDTHH:00`` for an hour bucket."""
        size = BUCKET_NS[self.by]
        naive = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=bucket * size // NS)
        return naive.date().isoformat() if self.by == "day" else naive.strftime("%Y-%m-%dT%H:00")


def data_span(engine: Engine) -> tuple[int, int] | None:
    """First and last packet time (ns, to the microsecond), or None for an empty store.

    From the footers of the first and last day's packet files, read when the engine
    opened (``Engine.packet_span``); else from those files' packets
    (:func:`teiten.sql.traffic.span`).
    """
    if engine.packet_span is not None:
        return engine.packet_span
    days = engine.query(traffic.span_days(engine.dialect))
    first, last = days.column("a")[0].as_py(), days.column("b")[0].as_py()
    if first is None:
        return None
    r = engine.query(traffic.span(engine.dialect, str(first), str(last)))
    a, b = r.column("a")[0].as_py(), r.column("b")[0].as_py()
    return None if a is None else (int(a), int(b))


def check_span(first: dt.date, last: dt.date) -> None:
    """Refuse, in one line, a window of days or hours outside :data:`FIRST_DAY`..
    :data:`LAST_DAY` or longer than :data:`MAX_DAYS` (series, rankings and detection cut
    such a window into buckets; a filter by dates alone takes any dates)."""
    for day in (first, last):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ConfigError(
                f"{day} is outside the dates a window may cover ({FIRST_DAY}..{LAST_DAY})"
            )
    if (last - first).days >= MAX_DAYS:
        raise ConfigError(
            f"the window {first}..{last} is {(last - first).days + 1:,} days long; "
            f"at most {MAX_DAYS:,} (twenty years)"
        )


def resolve_window(
    engine: Engine, first: str | None, last: str | None, tz: str, by: str = "day"
) -> Window | None:
    """The window between two local dates; a missing end is taken from the data.

    Returns None when a date is missing and the store holds no packets.
    """
    zone = ZoneInfo(tz)
    a = parse_date(first) if first else None
    b = parse_date(last) if last else None
    if a is None or b is None:
        span = data_span(engine)
        if span is None:
            return None
        a = a or dt.datetime.fromtimestamp(span[0] // NS, zone).date()
        b = b or dt.datetime.fromtimestamp(span[1] // NS, zone).date()
    if a <= b:  # (a reversed window is from_dates' error)
        check_span(a, b)
    return Window.from_dates(a, b, tz, by)
