"""Statements over the packets: spans, per-port series, rankings, slices of a rise.

All count a port only under :func:`~teiten.sql.expressions.port_rule`. Each
reads ``packets_raw`` (logical columns, integer addresses and times) or, when
the rollups answer exactly, the rollups written at ingest (``port_hours_raw``,
``address_hours_raw``; ``teiten.store.rollup``): when the span's bounds, its
buckets and every UTC offset in force inside it are whole UTC hours
(:func:`hourly`). Windows in a zone with a half-hour offset (Asia/Kolkata)
read the packets. Sources stay exact either way: rollup rows name their source.

Over windows of many rollup rows, the per-port questions read the day sketches
instead (``teiten.analysis.sketches`` decides): :func:`sketch_rows` selects them
(the ``port_sketches`` rollup, ``teiten.store.sketch``, which merges them), and
:func:`port_candidates` / :func:`busy_candidates` bound which ports to read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from teiten.schema import DAY_NS, HOUR_NS
from teiten.sql.dialect import Dialect
from teiten.sql.expressions import (
    PROTO_NUMBERS,
    destinations,
    has_fingerprint,
    inbound,
    local_bucket,
    per_source,
    port_list,
    port_rule,
    proto_text,
    segment,
    segment_filter,
    share,
    sources,
    sources24,
)
from teiten.sql.statement import statement
from teiten.sql.views import logical_columns

SPLITS = ("none", "domestic", "country", "asn", "fingerprint")
"""How a series can be split: not at all, by segment, country, ASN or fingerprint."""


class Span(Protocol):
    """A time window cut into local buckets (``teiten.analysis.window.Window``)."""

    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int: ...
    @property
    def size_ns(self) -> int: ...
    def offsets(self) -> list[tuple[int, int]]: ...


USE_ROLLUPS = True
"""Whether statements may read the rollups (``bench/rollups.py`` clears it in its own
process to time the same statements on the packets; no user option)."""


def hourly(w: Span) -> bool:
    """Whether the hourly rollups answer exactly over ``w``: its bounds, its bucket size
    and every UTC offset in force inside it (and the instants they change) are whole hours."""
    return USE_ROLLUPS and all(
        v % HOUR_NS == 0
        for v in (w.start_ns, w.end_ns, w.size_ns, *(x for change in w.offsets() for x in change))
    )


@dataclass(frozen=True)
class Rows:
    """Where a statement counts packets: ``packets_raw``, or the ``port_hours`` rollup."""

    rolled: bool

    @property
    def table(self) -> str:
        return "port_hours_raw" if self.rolled else "packets_raw"

    @property
    def packets(self) -> str:
        """Aggregate: the packets of a group of rows."""
        return "CAST(sum(packets) AS BIGINT)" if self.rolled else "count(*)"

    @property
    def weight(self) -> str:
        """The packets one row stands for."""
        return "packets" if self.rolled else "1"

    def between(self, start_ns: int, end_ns: int) -> str:
        """Inbound rows in ``[start_ns, end_ns)`` (rolled: whole hours) whose port counts."""
        if self.rolled:  # the rollup holds only inbound rows under the port rule
            return f"hour >= {int(start_ns) // HOUR_NS} AND hour < {int(end_ns) // HOUR_NS}"
        return f"{inbound(start_ns, end_ns)} AND {port_rule()}"


def _rows(w: Span) -> Rows:
    return Rows(hourly(w))


@dataclass(frozen=True)
class Slice:
    """The inbound packets of one port and segment between two instants (the port rule
    applies: only packets whose port counts)."""

    proto: str
    port: int
    segment: str
    """``domestic``, ``foreign``, ``unknown``, or anything else for every source."""
    start_ns: int
    end_ns: int
    home: int
    """The code of the home country (``teiten.enrich.country.country_code``)."""

    @property
    def size_ns(self) -> int:
        return HOUR_NS

    def offsets(self) -> list[tuple[int, int]]:
        return [(self.start_ns, 0)]

    def rows(self) -> Rows:
        """Rollups when both instants are whole UTC hours."""
        return _rows(self)

    def where(self) -> str:
        return (
            f"{self.rows().between(self.start_ns, self.end_ns)}"
            f" AND proto = {PROTO_NUMBERS[self.proto]} AND dst_port = {int(self.port)}"
            + segment_filter(self.segment, self.home)
        )


def _bucket(d: Dialect, w: Span) -> str:
    return local_bucket(d, w.offsets(), w.size_ns)


def local_bounds(w: Span) -> tuple[int, int]:
    """The window's start and end as local times (ns since the local epoch)."""
    offsets = w.offsets()
    return w.start_ns + offsets[0][1], w.end_ns + offsets[-1][1]


def sketch_days(w: Span) -> tuple[int, int]:
    """The local days ``[first, end)`` of a window whose bounds are local midnights."""
    start, end = local_bounds(w)
    return start // DAY_NS, end // DAY_NS


def _in_days(w: Span) -> str:
    first, end = sketch_days(w)
    return f"day >= {int(first)} AND day < {int(end)}"


SKETCH_SPLITS = ("none", "domestic", "country")
"""The splits a day sketch answers (its rows have a country, not an ASN or fingerprints)."""


@statement
def span(d: Dialect, first_day: str | None = None, last_day: str | None = None) -> str:
    """First and last packet time (``a``, ``b``; NULL when the store is empty).

    Given the first and last UTC days that hold packet files (:func:`span_days`), only
    those days' files are read: a packet's file is the one of its UTC day, so the
    answer is the same, and the cost grows with the packets of two days, not of all.
    """
    if first_day is None or last_day is None:
        return "SELECT min(ts) AS a, max(ts) AS b FROM packets_raw"
    ts = logical_columns(d)["ts"]
    return (
        f"SELECT (SELECT min({ts}) FROM packets_stored WHERE date = DATE '{_day(first_day)}') AS a,"
        f" (SELECT max({ts}) FROM packets_stored WHERE date = DATE '{_day(last_day)}') AS b"
    )


@statement
def span_days(d: Dialect) -> str:
    """The first and last UTC day (``a``, ``b``, ``YYYY-MM-DD``) of the packet files, from
    their paths (NULL when there are none)."""
    return (
        "SELECT CAST(min(date) AS STRING) AS a, CAST(max(date) AS STRING) AS b FROM packets_stored"
    )


def _day(text: str) -> str:
    """``YYYY-MM-DD`` checked, for a literal (it comes from the store's own paths)."""
    return dt.date.fromisoformat(str(text)[:10]).isoformat()


@statement
def active_addresses(d: Dialect, w: Span) -> str:
    """Sensor addresses that received anything, per bucket (``bucket``, ``n``)."""
    if hourly(w):
        where = f"hour >= {w.start_ns // HOUR_NS} AND hour < {w.end_ns // HOUR_NS}"
        return f"""
SELECT {_bucket(d, w)} AS bucket, {destinations()} AS n
FROM address_hours_raw WHERE {where} GROUP BY 1"""
    return f"""
SELECT {_bucket(d, w)} AS bucket, {destinations()} AS n
FROM packets_raw WHERE {inbound(w.start_ns, w.end_ns)} GROUP BY 1"""


def split_segment(split: str, home: int) -> str:
    """The segment of a row under ``split`` (``none``, ``domestic``, ``country``, ``asn``)."""
    if split == "none":
        return "'all'"
    if split == "domestic":
        return segment(home)
    if split == "country":
        return "CASE WHEN src_cc = '' THEN 'unknown' ELSE CAST(src_cc AS STRING) END"
    if split == "asn":
        return "CASE WHEN src_asn = 0 THEN 'unknown' ELSE concat('AS', CAST(src_asn AS STRING)) END"
    raise ValueError(f"unknown split {split!r}")


@statement
def port_series(
    d: Dialect,
    w: Span,
    ports: Sequence[tuple[str, int]],
    *,
    split: str,
    home: int,
    fingerprints: Sequence[tuple[int, str]] = (),
    with_sources24: bool = False,
) -> str:
    """Packets and sources per port, bucket and segment (``proto``, ``dst_port``,
    ``bucket``, ``segment``, ``packets``, ``sources``, ``sources24``).

    ``split = "fingerprint"`` gives one segment per fingerprint in ``fingerprints``
    (a packet may count in several) plus ``none`` for packets with none.
    """
    s24 = sources24(d) if with_sources24 else "0"
    r = _rows(w)

    def part(seg: str, extra: str = "") -> str:
        keys = [("proto", "proto"), ("dst_port", "dst_port"), (_bucket(d, w), "bucket"),
                (seg, "segment")]  # fmt: skip
        where = f"{r.between(w.start_ns, w.end_ns)} AND {port_list(ports)}{extra}"
        return f"""
SELECT proto, dst_port, bucket, segment,
       CAST(sum(packets) AS BIGINT) AS packets, count(*) AS sources, {s24} AS sources24
FROM {per_source(keys, r.table, where, r.packets)} AS s
GROUP BY 1, 2, 3, 4"""

    if split == "fingerprint":
        parts = [part(f"'{name}'", f" AND {has_fingerprint(d, bit)}") for bit, name in fingerprints]
        parts.append(part("'none'", " AND fp = 0"))
        return " UNION ALL ".join(parts)
    return part(split_segment(split, home))


PortRange = tuple[int, int, int]
"""A protocol number and the first and last port of a range."""


def sketch_where(
    days: tuple[int, int], ports: Sequence[tuple[str, int]] | None, within: PortRange | None
) -> str:
    where = f"day >= {int(days[0])} AND day < {int(days[1])}"
    if within is not None:
        proto, lo, hi = (int(v) for v in within)
        where += f" AND proto = {proto} AND dst_port BETWEEN {lo} AND {hi}"
    return where + (f" AND {port_list(ports)}" if ports is not None else "")


@statement
def sketch_rows(
    d: Dialect,
    days: tuple[int, int],
    ports: Sequence[tuple[str, int]] | None = None,
    *,
    country: int | None = None,
    within: PortRange | None = None,
) -> str:
    """The day sketches by country of the local days ``[first, end)`` (:func:`sketch_days`):
    ``day``, ``proto``, ``dst_port``, ``src_cc_code``, ``packets``, ``registers``; of
    ``ports``, of the ports ``within`` a range and of one ``country`` only when given.
    The caller merges them (``teiten.store.registers.merge``)."""
    where = sketch_where(days, ports, within)
    if country is not None:
        where += f" AND src_cc_code = {int(country)}"
    return (
        "SELECT day, proto, dst_port, src_cc_code, packets, registers"
        f" FROM port_sketches_raw WHERE {where}"
    )


@statement
def segment_rows(
    d: Dialect,
    days: tuple[int, int],
    ports: Sequence[tuple[str, int]] | None = None,
    *,
    within: PortRange | None = None,
) -> str:
    """The day sketches by segment (``seg``: 1 domestic, 2 foreign, 3 unknown, of the
    store's home country) of the local days ``[first, end)``: ``day``, ``proto``,
    ``dst_port``, ``seg``, ``packets``, ``registers``; of ``ports`` and of the ports
    ``within`` a range only when given."""
    return (
        "SELECT day, proto, dst_port, seg, packets, registers"
        f" FROM port_segments_raw WHERE {sketch_where(days, ports, within)}"
    )


@statement
def hour_sketch_gap(d: Dialect, days: tuple[int, int], ports: Sequence[tuple[str, int]]) -> str:
    """The packets of ``ports`` on the local days ``[first, end)`` that the day sketches
    hold and the hour sketches do not (``n``): 0 when every file's rows of those port
    days are sketched by the hour too (a file's port day is, whole, or not at all)."""
    where = sketch_where(days, ports, None)
    return f"""
SELECT (SELECT coalesce(sum(packets), 0) FROM port_sketches_raw WHERE {where})
     - (SELECT coalesce(sum(packets), 0) FROM port_hour_segments_raw WHERE {where}) AS n"""


@statement
def hour_segment_rows(
    d: Dialect, days: tuple[int, int], hours: tuple[int, int], ports: Sequence[tuple[str, int]]
) -> str:
    """The hour sketches of ``ports`` on the local days ``[first, end)`` and UTC hours
    ``[first, end)``: ``proto``, ``dst_port``, ``hour``, ``seg``, ``packets``,
    ``registers``. The caller merges them (``teiten.store.registers.merge``)."""
    where = sketch_where(days, ports, None)
    where += f" AND hour >= {int(hours[0])} AND hour < {int(hours[1])}"
    return (
        "SELECT proto, dst_port, hour, seg, packets, registers"
        f" FROM port_hour_segments_raw WHERE {where}"
    )


CANDIDATE_SLACK = 0.1
"""How far (relative) a port's upper bound may fall below the bound it must reach and
still be read (:func:`port_candidates`, :func:`busy_candidates`): the bounds are sums of
estimates (1.6 % standard error each), so a port the exact counts would keep is never
left out."""


@statement
def port_candidates(d: Dialect, w: Span, *, top: int) -> str:
    """The ports that may rank among the ``top`` by distinct sources over a window of
    whole local days (``proto``, ``dst_port``), from ``port_segments``: a port's sources
    over the window are at least those of its largest row (one segment of one file's
    day) and at most the sum of all its rows; a port whose sum is below the ``top``-th
    largest lower bound cannot rank in."""
    return f"""
WITH bounds AS (
  SELECT proto, dst_port, sum(sources) AS upper, max(sources) AS lower
  FROM port_segments_raw WHERE {_in_days(w)} GROUP BY 1, 2
), line AS (
  SELECT coalesce(min(lower), 0) AS t FROM (
    SELECT lower FROM bounds ORDER BY lower DESC LIMIT {int(top)}) AS best
)
SELECT proto, dst_port FROM bounds, line
WHERE upper * {1 + CANDIDATE_SLACK!r} >= line.t
ORDER BY proto, dst_port"""


@statement
def busy_candidates(d: Dialect, days: tuple[int, int], *, min_sources: int) -> str:
    """The ports that may reach ``min_sources`` distinct sources on one of the local days
    ``[first, end)`` (``proto``, ``dst_port``), from ``port_segments``: a day's sources
    are at most the sum over its files and segments. (Its memory grows with ports ×
    days: callers ask a few weeks at a time.)"""
    return f"""
SELECT proto, dst_port FROM (
  SELECT proto, dst_port, day, sum(sources) AS upper
  FROM port_segments_raw WHERE day >= {int(days[0])} AND day < {int(days[1])}
  GROUP BY 1, 2, 3
) AS per_day
GROUP BY 1, 2 HAVING max(upper) * {1 + CANDIDATE_SLACK!r} >= {int(min_sources)}
ORDER BY proto, dst_port"""


@statement
def top_ports(
    d: Dialect,
    w: Span,
    *,
    home: int,
    top: int,
) -> str:
    """The ``top`` TCP/UDP ports by unique sources, then packets (``proto`` as a name)."""
    r = _rows(w)
    keys = [("proto", "proto"), ("dst_port", "dst_port")]
    flags = [(f"src_cc_code = {int(home)}", "home")]
    return f"""
SELECT {proto_text()} AS proto, dst_port, CAST(sum(packets) AS BIGINT) AS packets,
       count(*) AS sources, CAST(sum(home) AS BIGINT) AS domestic_sources
FROM {per_source(keys, r.table, r.between(w.start_ns, w.end_ns), r.packets, flags)} AS s
GROUP BY 1, 2
ORDER BY sources DESC, packets DESC, dst_port, proto
LIMIT {int(top)}"""


@statement
def busy_port_days(d: Dialect, w: Span, *, home: int, min_sources: int) -> str:
    """Per port, bucket and segment code (1 domestic, 2 foreign, 3 unknown): packets and
    sources, for every port that reached ``min_sources`` sources in some bucket."""
    seg = f"CASE WHEN src_cc_code = {int(home)} THEN 1 WHEN src_cc_code = 0 THEN 3 ELSE 2 END"
    r = _rows(w)
    keys = [("proto", "proto"), ("dst_port", "dst_port"), (_bucket(d, w), "day"), (seg, "seg")]
    daily = f"""
  SELECT proto, dst_port, day, seg, CAST(sum(packets) AS BIGINT) AS packets,
         count(*) AS sources
  FROM {per_source(keys, r.table, r.between(w.start_ns, w.end_ns), r.packets)} AS s
  GROUP BY 1, 2, 3, 4"""
    return f"""
WITH daily AS ({daily}
), busy AS (
  SELECT proto, dst_port FROM (
    SELECT proto, dst_port, day, sum(sources) AS s FROM daily GROUP BY 1, 2, 3
  ) AS per_day GROUP BY 1, 2 HAVING max(s) >= {int(min_sources)}
)
SELECT d.proto, d.dst_port, d.day, d.seg, d.packets, d.sources
FROM daily d JOIN busy b ON d.proto = b.proto AND d.dst_port = b.dst_port
ORDER BY d.proto, d.dst_port, d.day, d.seg"""


@statement
def slice_source_keys(d: Dialect, s: Slice, *, limit: int) -> str:
    """Distinct sources of a slice as comparable text keys (``s``), at most ``limit``."""
    return (
        "SELECT DISTINCT coalesce(CAST(src_ip4 AS STRING), hex(src_ip6)) AS s"
        f" FROM {s.rows().table} WHERE {s.where()} LIMIT {int(limit)}"
    )


@statement
def slice_fingerprint_shares(d: Dialect, s: Slice, fingerprints: Sequence[tuple[int, str]]) -> str:
    """The share of the slice's packets carrying each fingerprint (one column per name)."""
    r = s.rows()
    cols = ", ".join(f"{share(has_fingerprint(d, b), r.weight)} AS {n}" for b, n in fingerprints)
    return f"SELECT {cols or '0.0 AS none'} FROM {r.table} WHERE {s.where()}"


@statement
def slice_sources_and_share(d: Dialect, s: Slice, bit: int | None) -> str:
    """Unique sources (``n``) and the share of packets with fingerprint ``bit`` (``share``)."""
    r = s.rows()
    part = share(has_fingerprint(d, bit), r.weight) if bit is not None else "0.0"
    return f"SELECT {sources()} AS n, {part} AS share FROM {r.table} WHERE {s.where()}"


@statement
def slice_busiest_sources(d: Dialect, s: Slice, *, limit: int) -> str:
    """Packets per source of a slice, busiest first (``n``)."""
    return (
        f"SELECT {s.rows().packets} AS n FROM {s.rows().table} WHERE {s.where()}"
        f" GROUP BY ip_version, src_ip4, src_ip6 ORDER BY n DESC LIMIT {int(limit)}"
    )


@statement
def slice_sources(d: Dialect, s: Slice, among4: Collection[int] | None = None) -> str:
    """The distinct sources of a slice (``ip_version``, ``src_ip4``, ``src_ip6``).

    With ``among4``, IPv4 sources only among those integers (IPv6 ones all kept).
    """
    keep = ""
    if among4 is not None:
        v4 = ", ".join(str(int(a)) for a in sorted(among4))
        keep4 = f"src_ip4 IN ({v4})" if v4 else "FALSE"
        keep = f" AND ((ip_version = 4 AND {keep4}) OR ip_version = 6)"
    return (
        f"SELECT DISTINCT ip_version, src_ip4, src_ip6 FROM {s.rows().table}"
        f" WHERE {s.where()}{keep} ORDER BY ip_version, src_ip4, src_ip6"
    )
