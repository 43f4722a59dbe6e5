"""The facts a report states, computed once from the store; both languages render only these.

Every sentence of a report comes from a field here: which segment rose
(domestic, foreign, both, or only the total), whether the level is still up or
has fallen back, the before/after daily means and their ratio, the onset, the
number of distinct sources, whether the rise is sustained, the Mirai share,
and what the back-check found about the section's own sources. The numbers
are the ones the tables and charts show: daily series per port and segment
over the report's window, cut in the report's one time zone, with partial
edge days (data for only part of the local day) left out of every mean.

Headline rule (docs/report.md): a rise is a headline when it is a surge in
unique sources, lasted at least :data:`SUSTAINED_DAYS` full days, came from
more than :data:`MIN_SOURCES` distinct sources, and its mean after the onset
exceeds the largest full day of the :data:`BASELINE_DAYS` days before it.
Everything else (sweeps, short spikes, small or no-bigger-than-before rises)
is an other observation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from teiten.analysis.alerts import Alert
from teiten.analysis.series import parse_ports, trend
from teiten.analysis.window import NS, Window, data_span, local_midnight_ns
from teiten.backcheck.model import Match, Probe, summarize
from teiten.engine import Engine
from teiten.enrich.country import country_code
from teiten.fingerprint import registry
from teiten.sql import traffic

SUSTAINED_DAYS = 7
"""Full days from onset to last day a headline rise lasted at least."""
MIN_SOURCES = 10
"""Distinct sources a headline rise came from, more than this."""
BASELINE_DAYS = 28
"""Full days before the onset that give the 'before' mean and the largest earlier day."""
MIRAI_SHARE = 0.5
"""Above this share of packets with ISN = destination address, a section names the Mirai feature."""
PARTIAL_SLACK_NS = 3600 * NS
"""A day whose data covers less than its length minus this is partial."""
SEGMENTS = ("domestic", "foreign")
HEADLINE_RULE = {
    "sustained_days": SUSTAINED_DAYS,
    "min_sources": MIN_SOURCES,
    "baseline_days": BASELINE_DAYS,
}


@dataclass(frozen=True)
class SegmentLevel:
    """One segment of one port: did the detector see it rise, and its daily means."""

    segment: str
    rose: bool
    before: float
    after: float


@dataclass(frozen=True)
class RiseFact:
    """One detected rise on one port, as the report states it."""

    port: str
    kind: str
    """``surge`` (many new sources) or ``sweep`` (few sources, many more packets)."""
    measure: str
    """``sources`` (distinct per day) for surges, ``packets`` for sweeps."""
    segment: str
    """The alert's segment: ``all``, ``domestic`` or ``foreign``."""
    rose_in: str
    """``domestic``, ``foreign``, ``both``, or ``total`` (only the sum rose)."""
    onset: str
    last: str
    ongoing: bool
    """Still raised on the last day of the data; otherwise the level fell back."""
    days: int
    """Full (non-partial) days from onset to last day."""
    before: float
    """Daily mean of ``measure`` over the full days of the baseline, in ``segment``."""
    after: float
    """Daily mean of ``measure`` over the full days from onset to last day."""
    ratio: float
    """``after / before`` (``after`` when before is 0)."""
    largest_before: int
    """The largest full day of the baseline window."""
    sources: int
    """Distinct sources in ``segment`` from onset to last day."""
    behind: int
    """The fewest sources that sent the rise's excess over the before level (sweeps: often 1)."""
    mirai: float
    """Share of the rise's packets with ISN = destination address."""
    sustained: bool
    headline: bool
    reasons: list[str]
    """Why it is not a headline: ``sweep``, ``short``, ``few_sources``, ``not_above_earlier``."""
    segments: dict[str, SegmentLevel]
    partial_edge: list[str] = field(default_factory=list)
    """Partial days among the onset and the last day."""
    group: str = ""
    """The id of the rise's alert group: its campaign, or the lone alert's own id."""

    @property
    def rising(self) -> bool:
        return self.after > self.before


@dataclass(frozen=True)
class BackcheckFact:
    """What the stored back-check found about one section's own sources."""

    checked: int
    port: int
    open_on_port: int
    banners: dict[str, int]
    models: list[Match]


def partial_days(engine: Engine, window: Window) -> list[str]:
    """Local days of the window whose data covers less than the whole day."""
    span = data_span(engine)
    out: list[str] = []
    if span is None:
        return out
    for bucket in window.buckets():
        label = window.label(bucket)
        day = dt.date.fromisoformat(label)
        start = local_midnight_ns(day, window.tz)
        end = local_midnight_ns(day + dt.timedelta(days=1), window.tz)
        covered = max(0, min(end, span[1] + 1) - max(start, span[0]))
        if covered < (end - start) - PARTIAL_SLACK_NS:
            out.append(label)
    return out


@dataclass
class SeriesSet:
    """Daily series of the report's window per port and segment, both measures."""

    dates: list[str]
    values: dict[tuple[str, str, str], list[int]]
    """(port, segment, measure) → one value per date; segment ``all`` is the sum."""

    def get(self, port: str, segment: str, measure: str) -> list[int]:
        return self.values.get((port, segment, measure), [0] * len(self.dates))


def daily_series(engine: Engine, window: Window, ports: Sequence[str], home: str) -> SeriesSet:
    """Packets and distinct sources per port, day and segment (all = every segment summed)."""
    rows = trend(engine, parse_ports(list(ports)), window, split="domestic", home_country=home)
    dates = [window.label(b) for b in window.buckets()]
    at = {d: i for i, d in enumerate(dates)}
    values: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        for measure in ("packets", "sources"):
            for seg in {str(r["segment"]), "all"}:
                series = values.setdefault((str(r["port"]), seg, measure), [0] * len(dates))
                series[at[str(r["date"])]] += int(r[measure])
    return SeriesSet(dates, values)


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 1) if values else 0.0


def _rise_slice(
    port: str, segment: str, window: Window, onset: str, last: str, home: int
) -> traffic.Slice:
    """The rise's port and segment from its onset to the end of its last day (inside the window)."""
    number, proto = port.split("/")
    start = local_midnight_ns(dt.date.fromisoformat(onset), window.tz)
    end = local_midnight_ns(dt.date.fromisoformat(last) + dt.timedelta(days=1), window.tz)
    lo, hi = max(start, window.start_ns), min(end, window.end_ns)
    return traffic.Slice(proto, int(number), segment, lo, hi, home)


def _mirai_bit() -> int | None:
    return next((f.bit for f in registry.registered() if f.name == "mirai"), None)


def _rise_counts(engine: Engine, rise: traffic.Slice, mirai_bit: int | None) -> tuple[int, float]:
    sql = traffic.slice_sources_and_share(engine.dialect, rise, mirai_bit)
    row = engine.query(sql).to_pylist()[0]
    return int(row["n"] or 0), round(float(row["share"] or 0.0), 3)


def _behind(engine: Engine, rise: traffic.Slice, excess: float, sources: int) -> int:
    """How many of the busiest sources it takes to account for ``excess`` packets."""
    if excess <= 0:
        return sources
    sql = traffic.slice_busiest_sources(engine.dialect, rise, limit=10000)
    total = 0
    for i, n in enumerate(engine.query(sql).column("n").to_pylist(), 1):
        total += int(n)
        if total >= excess:
            return i
    return sources


def _rose_in(alert: Alert) -> str:
    segs = alert.evidence.get("segments", {})
    rose = [s for s in SEGMENTS if segs.get(s, {}).get("rose")]
    if len(rose) == 2:
        return "both"
    if rose:
        return rose[0]
    return "total"


def rise_fact(
    engine: Engine,
    alert: Alert,
    series: SeriesSet,
    window: Window,
    partial: Sequence[str],
    home_country: str,
) -> RiseFact:
    """The facts of one alert, from the window's series (partial days left out)."""
    measure = "sources" if alert.kind == "surge" else "packets"
    skip = set(partial)
    dates = series.dates
    full = [i for i, d in enumerate(dates) if d not in skip]
    before_i = [i for i in full if dates[i] < alert.onset][-BASELINE_DAYS:]
    after_i = [i for i in full if alert.onset <= dates[i] <= alert.last]

    def level(segment: str) -> tuple[float, float, list[int]]:
        values = series.get(alert.port, segment, measure)
        before = [values[i] for i in before_i]
        return _mean(before), _mean([values[i] for i in after_i]), before

    before, after, earlier = level(alert.segment)
    segs = alert.evidence.get("segments", {})
    levels = {
        s: SegmentLevel(s, bool(segs.get(s, {}).get("rose")), *level(s)[:2])
        for s in (*SEGMENTS, "all")
    }
    home = country_code(home_country)
    rise = _rise_slice(alert.port, alert.segment, window, alert.onset, alert.last, home)
    sources, mirai = _rise_counts(engine, rise, _mirai_bit())
    excess = sum(max(0.0, series.get(alert.port, alert.segment, measure)[i] - before)
                 for i in after_i)  # fmt: skip
    behind = _behind(engine, rise, excess, sources) if measure == "packets" else sources
    largest = max(earlier, default=0)
    reasons = []
    if alert.kind != "surge":
        reasons.append("sweep")
    if len(after_i) < SUSTAINED_DAYS:
        reasons.append("short")
    if sources <= MIN_SOURCES:
        reasons.append("few_sources")
    if after <= largest:
        reasons.append("not_above_earlier")
    return RiseFact(
        port=alert.port,
        kind=alert.kind,
        measure=measure,
        segment=alert.segment,
        rose_in=_rose_in(alert),
        onset=alert.onset,
        last=alert.last,
        ongoing=alert.ongoing,
        days=len(after_i),
        before=before,
        after=after,
        ratio=round(after / before, 1) if before else after,
        largest_before=largest,
        sources=sources,
        behind=behind,
        mirai=mirai,
        sustained=len(after_i) >= SUSTAINED_DAYS,
        headline=not reasons,
        reasons=reasons,
        segments=levels,
        partial_edge=[d for d in (alert.onset, alert.last) if d in skip],
    )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def section_sources(
    engine: Engine,
    rises: Sequence[RiseFact],
    window: Window,
    home_country: str,
    among: Collection[str] | None = None,
) -> set[str]:
    """The source addresses (text) of a section's rises, in their segments and days.

    With ``among`` (e.g. the back-checked targets), only those of them that are
    sources: the filter runs in SQL, so a section of many sources stays cheap.
    """
    home = country_code(home_country)
    among4 = (
        None
        if among is None
        else {int(a) for t in among if isinstance(a := _address(t), ipaddress.IPv4Address)}
    )
    out: set[str] = set()
    for r in rises:
        rise = _rise_slice(r.port, r.segment, window, r.onset, r.last, home)
        for row in engine.query(traffic.slice_sources(engine.dialect, rise, among4)).to_pylist():
            if row["ip_version"] == 4:
                out.add(str(ipaddress.IPv4Address(int(row["src_ip4"]))))
            elif row["src_ip6"] is not None:
                out.add(str(ipaddress.IPv6Address(bytes(row["src_ip6"]))))
    return out if among is None else out & {str(_address(t)) for t in among if _address(t)}


def backcheck_fact(probes: Sequence[Probe], sources: set[str], port: int) -> BackcheckFact | None:
    """What the back-check found about these sources only; None when none was probed."""
    mine = [p for p in probes if str(_address(p.target) or p.target) in sources]
    if not mine:
        return None
    s = summarize(mine, port=port)
    return BackcheckFact(
        checked=s.sources,
        port=s.port,
        open_on_port=s.open_on_port,
        banners={k: n for k, n in s.banners.items() if n},
        models=list(s.matches),
    )
