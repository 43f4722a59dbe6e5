"""Gather what a report says from the store into a plain :class:`Report` (no formatting).

A report is a pure read: it takes the alerts ``teiten detect`` stored for its
window or, when none are stored, detects them in memory (nothing stored,
nothing sent) and says so. Rises that pass the headline rule
(:mod:`teiten.report.facts`) get a section each (a campaign's linked alerts
share one): the series behind its figures, a masked payload sample, the
signature behind it, fingerprint and segment evidence, the attack flow derived
from linked evidence, what the back-check found about the section's own
sources, and the advisories whose CVEs match. Every other rise is listed under
other observations. Every value is plain data (``to_dict`` is
JSON-serialisable); both languages render the same values, cut in one time
zone. Masking happens here, so nothing downstream ever holds a sensor address
unless ``internal`` is set.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from teiten.advisories import Advisory, load_advisories
from teiten.analysis.alerts import Alert
from teiten.analysis.campaigns import campaign_groups
from teiten.analysis.payloads import sensor_addresses
from teiten.analysis.window import Window
from teiten.backcheck.model import Probe
from teiten.classify.signatures import load_signatures
from teiten.engine import Engine
from teiten.report.facts import (
    BASELINE_DAYS,
    HEADLINE_RULE,
    MIRAI_SHARE,
    BackcheckFact,
    RiseFact,
    SeriesSet,
    backcheck_fact,
    daily_series,
    partial_days,
    rise_fact,
    section_sources,
)
from teiten.secrecy import MASK, Secrecy, download_hosts
from teiten.sql import sessions

LANGS = ("ja", "en")


@dataclass
class Chart:
    """The numbers behind one figure: dates, one list of counts per line, the onset."""

    number: int
    kind: str
    """``trend`` (all sources per port) or ``segments`` (domestic vs foreign per port)."""
    ports: list[str]
    dates: list[str]
    lines: dict[str, list[int]]
    """``"52869/tcp"`` (trend) or ``"23/tcp domestic"`` / ``"23/tcp foreign"`` → daily counts."""
    onset: str
    measure: str = "packets"
    partial: list[str] = field(default_factory=list)
    """Dates among ``dates`` with data for only part of the local day (mark them)."""
    tz: str = "UTC"
    """The zone the days are cut in (the report's)."""


@dataclass
class Statement:
    """One sentence about ports whose rise came from the same segments."""

    rose_in: str
    """``domestic``, ``foreign``, ``both`` or ``total``."""
    ports: list[str]
    onset: str
    last: str
    ongoing: bool


@dataclass
class Section:
    """One headline finding: a campaign or a lone alert, with its evidence and advice."""

    id: str
    ports: list[str]
    onset: str
    last: str
    rises: list[RiseFact]
    charts: list[Chart]
    sample: dict[str, Any] | None
    signatures: list[dict[str, Any]]
    mirai_ports: list[str]
    """Ports whose share of packets with the Mirai feature is at least one half."""
    links: list[dict[str, Any]]
    flow: dict[str, Any] | None
    advisories: list[dict[str, Any]]
    backcheck: BackcheckFact | None
    """What the stored back-check found about this section's sources (None: nothing)."""
    trend_statement: Statement | None = None
    segment_statements: list[Statement] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    """Figure kind (trend, segments, sample, flow) → figure number."""


@dataclass
class Report:
    """A whole report: window, time zone, sections and references, all plain data."""

    date: str
    first: str
    last: str
    tz: str
    home_country: str
    internal: bool
    sections: list[Section]
    """Headline findings."""
    others: list[RiseFact]
    """Other observations: sweeps and rises that do not pass the headline rule."""
    references: list[dict[str, Any]]
    """``{"url", "title": {"ja", "en"}}``."""
    partial: list[str] = field(default_factory=list)
    """Days of the window with data for only part of the day (left out of every mean)."""
    alerts_from: str = "stored"
    """``stored`` (by teiten detect), ``memory`` (detected for this report only) or ``given``."""
    masked_hosts: bool = True
    rule: dict[str, int] = field(default_factory=lambda: dict(HEADLINE_RULE))
    """The headline rule's numbers, for the sentence that states it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, sort_keys=True)


def _chart(
    series: SeriesSet, ports: list[str], kind: str, onset: str, partial: list[str], tz: str
) -> Chart:
    lines: dict[str, list[int]] = {}
    for port in ports:
        if kind == "trend":
            lines[port] = series.get(port, "all", "packets")
        else:
            for seg in ("domestic", "foreign"):
                lines[f"{port} {seg}"] = series.get(port, seg, "packets")
    shown = [d for d in partial if d in series.dates]
    return Chart(0, kind, ports, list(series.dates), lines, onset, "packets", shown, tz)


def _session(engine: Engine, ports: list[int], window: Window) -> dict[str, Any] | None:
    sql = sessions.first_exploit(engine.dialect, ports, window.start_ns, window.end_ns)
    rows = engine.query(sql).to_pylist()
    return dict(rows[0]) if rows else None


def injected_arguments(row: dict[str, Any], mask: Secrecy) -> list[str]:
    """The SOAP arguments of a session's first request that carry shell syntax, masked.

    Read from the typed ``requests`` evidence (the first value wins when a name repeats,
    as in :attr:`teiten.classify.soap.SoapMessage.arguments`).
    """
    requests = row.get("requests") or []
    soap = (requests[0] or {}).get("soap") if requests else None
    first: dict[str, str] = {}
    for arg in (soap or {}).get("args") or []:
        first.setdefault(str(arg["name"]), str(arg["value"]))
    return [mask(v) for v in first.values() if any(ch in v for ch in "`$;|&")]


def _sample(row: dict[str, Any], mask: Secrecy) -> dict[str, Any]:
    text = bytes(row["client_bytes"] or b"").decode("utf-8", "backslashreplace")
    injected = injected_arguments(row, mask)
    urls = [
        mask(v)
        for v, t in zip(row["indicators"], row["indicator_types"], strict=True)
        if t == "url"
    ]
    return {
        "dst_port": f"{row['dst_port']}/{row['proto']}",
        "kind": row["kind"],
        "signatures": list(row["signatures"]),
        "cves": list(row["cves"]),
        "jvn": list(row["jvn"]),
        "request": mask(text.replace("\r\n", "\n")),
        "injected": injected,
        "downloads": urls,
    }


def _hosts(engine: Engine) -> set[str]:
    """Every download host named by a URL, IP or domain indicator."""
    rows = engine.query(sessions.indicator_values(engine.dialect)).to_pylist()
    hosts: set[str] = set()
    for r in rows:
        value = str(r["value"])
        hosts |= download_hosts(value) if r["type"] == "url" else set()
        hosts |= {value} if r["type"] in ("ip", "domain") else set()
    return hosts


def _signatures(ids: list[str]) -> list[dict[str, Any]]:
    sigs = load_signatures()
    out = []
    for sid in ids:
        try:
            s = sigs.get(sid)
        except KeyError:
            continue
        out.append(
            {
                "id": s.id,
                "title": {lang: s.title_in(lang) for lang in LANGS},
                "cves": list(s.cves),
                "jvn": list(s.jvn),
                "references": list(s.references),
            }
        )
    return out


def _advisory(a: Advisory) -> dict[str, Any]:
    return {
        "id": a.id,
        "vendor": {lang: a.vendor_in(lang) for lang in LANGS},
        "cves": list(a.cves),
        "jvn": list(a.jvn_ids),
        "published": a.published.isoformat() if a.published else "",
        "title": {lang: a.title.get(lang) for lang in LANGS},
        "notes": {lang: a.notes.get(lang) for lang in LANGS},
        "actions": {lang: list(a.actions.get(lang)) for lang in LANGS},
        "products": [
            {
                "model": p.model,
                "fixed": str(p.fixed) if p.fixed else "",
                "fixed_date": p.fixed_date.isoformat() if p.fixed_date else "",
            }
            for p in a.products
        ],
        "references": [
            {"url": r.url, "title": {lang: r.title_in(lang) for lang in LANGS}}
            for r in a.references
        ],
    }


def _flow(
    members: list[Alert], sample: dict[str, Any] | None, mirai: dict[str, float]
) -> dict[str, Any] | None:
    """exploit → download → infected device → scanning, from linked alerts and the sample."""
    if sample is None:
        return None
    exploit = sample["dst_port"]
    scans = [a for a in members if a.port != exploit and mirai.get(a.port, 0.0) >= MIRAI_SHARE]
    if not scans:
        return None
    shared = [
        link for a in scans for link in a.evidence.get("linked", []) if link["port"] == exploit
    ]
    return {
        "exploit_port": exploit,
        "cves": sample["cves"],
        "downloads": sample["downloads"][:2],
        "scan_ports": sorted({a.port for a in scans}, key=lambda p: int(p.split("/")[0])),
        "scan_segment": scans[0].segment,
        "shared_sources": max((int(x["shared_sources"]) for x in shared), default=0),
        "overlap": max((float(x["overlap"]) for x in shared), default=0.0),
    }


def _num(port: str) -> int:
    return int(port.split("/")[0])


def _link(a: Alert, x: dict[str, Any]) -> dict[str, Any]:
    return {"from": a.port, "to": x["port"], "segment": x["segment"],
            "shared_sources": x["shared_sources"], "overlap": x["overlap"]}  # fmt: skip


def _links(members: list[Alert]) -> list[dict[str, Any]]:
    """Each linked pair of alerts once."""
    out: dict[frozenset[str], dict[str, Any]] = {}
    for a in members:
        for x in a.evidence.get("linked", []):
            out.setdefault(frozenset((a.port, x["port"])), _link(a, x))
    return list(out.values())


@dataclass
class _Context:
    engine: Engine
    window: Window
    home: str
    mask: Secrecy
    advisories: tuple[Advisory, ...]
    probes: list[Probe]
    partial: list[str]
    tz: str


def _statements(rises: list[RiseFact]) -> list[Statement]:
    """Rises grouped by where they came from (and whether they go on), in order."""
    out: list[Statement] = []
    for r in rises:
        same = next((s for s in out if s.rose_in == r.rose_in and s.ongoing == r.ongoing), None)
        if same is None:
            out.append(Statement(r.rose_in, [r.port], r.onset, r.last, r.ongoing))
        else:
            same.ports.append(r.port)
            same.onset, same.last = min(same.onset, r.onset), max(same.last, r.last)
    return out


def _section(
    ctx: _Context, sid: str, members: list[Alert], facts: dict[int, RiseFact], series: SeriesSet
) -> Section:
    members = sorted(members, key=lambda a: (a.segment != "all", a.onset, _num(a.port)))
    rises = [facts[id(a)] for a in members]
    onset = min(a.onset for a in members)
    wide = [r for r in rises if r.segment == "all"]
    split = [r for r in rises if r.segment != "all"]
    charts = []
    if wide:
        charts.append(_chart(series, [r.port for r in wide], "trend", onset, ctx.partial, ctx.tz))
    if split:
        charts.append(
            _chart(series, [r.port for r in split], "segments", onset, ctx.partial, ctx.tz)
        )
    ports = [a.port for a in members]
    row = _session(ctx.engine, [_num(p) for p in ports], ctx.window)
    sample = _sample(row, ctx.mask) if row else None
    cves = set(sample["cves"]) if sample else set()
    mirai = {r.port: r.mirai for r in rises}
    checked = None
    if ctx.probes:
        targets = {p.target for p in ctx.probes}
        sources = section_sources(ctx.engine, rises, ctx.window, ctx.home, among=targets)
        port = _num(sample["dst_port"]) if sample else _num(ports[0])
        checked = backcheck_fact(ctx.probes, sources, port)
    return Section(
        id=sid,
        ports=ports,
        onset=onset,
        last=max(a.last for a in members),
        rises=rises,
        charts=charts,
        sample=sample,
        signatures=_signatures(sample["signatures"]) if sample else [],
        mirai_ports=[p for p, s in mirai.items() if s >= MIRAI_SHARE],
        links=_links(members),
        flow=_flow(members, sample, mirai),
        advisories=[_advisory(a) for a in ctx.advisories if cves & set(a.cves)],
        backcheck=checked,
        trend_statement=_statements(wide)[0] if wide else None,
        segment_statements=_statements(split),
    )


def _number(sections: list[Section]) -> None:
    """Figures numbered in reading order across the report."""
    n = 0
    for s in sections:
        kinds = [c.kind for c in s.charts]
        order = kinds[:1] + (["sample"] if s.sample else []) + kinds[1:]
        order += ["flow"] if s.flow else []
        for kind in order:
            n += 1
            s.figures[kind] = n
        for c in s.charts:
            c.number = s.figures[c.kind]


def _references(sections: list[Section]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, str]] = {}
    for s in sections:
        for sig in s.signatures:
            for url in sig["references"]:
                seen.setdefault(url, dict(sig["title"]))
        for adv in s.advisories:
            for ref in adv["references"]:
                if ref["title"]["en"] or ref["url"] not in seen:
                    seen[ref["url"]] = dict(ref["title"])
    return [{"url": u, "title": t} for u, t in seen.items()]


def _baseline_window(window: Window, alerts: list[Alert]) -> Window:
    """The window, reaching back far enough for the baseline of every rise's onset."""
    if not alerts:
        return window
    first = dt.date.fromisoformat(window.label(window.buckets()[0]))
    onset = dt.date.fromisoformat(min(a.onset for a in alerts))
    need = onset - dt.timedelta(days=BASELINE_DAYS)
    if need >= first:
        return window
    last = dt.date.fromisoformat(window.label(window.buckets()[-1]))
    return Window.from_dates(need, last, window.tz.key)


def assemble_report(
    engine: Engine,
    window: Window,
    alerts: list[Alert],
    *,
    home_country: str,
    probes: list[Probe],
    sensor_networks: tuple[str, ...] = (),
    internal: bool = False,
    mask_hosts: bool = True,
    alerts_from: str = "given",
    addresses: set[str] | None = None,
) -> Report:
    """The report of the window's alerts, read from the store; writes nothing, sends nothing.

    ``internal`` keeps sensor addresses (else ``sensor_networks`` and every
    address that received traffic — ``addresses`` when the caller knows them — are
    masked); ``mask_hosts`` masks attacker
    download hosts; ``probes`` are the back-check rows; ``alerts_from`` says
    where the alerts came from (``stored``, ``memory``, ``given``).
    """
    zone = window.tz.key
    partial = partial_days(engine, window)
    ports = sorted({a.port for a in alerts}, key=_num)
    series = daily_series(engine, window, ports, home_country) if ports else SeriesSet([], {})
    # a stored rise may start before the window: its baseline is read from before it
    wide = _baseline_window(window, alerts)
    wide_series = series if wide == window else daily_series(engine, wide, ports, home_country)
    wide_partial = partial if wide == window else partial_days(engine, wide)
    facts = {
        id(a): rise_fact(engine, a, wide_series, wide, wide_partial, home_country) for a in alerts
    }
    hosts = _hosts(engine) if mask_hosts else set()
    nets = () if internal else sensor_networks
    seen = set() if internal else (sensor_addresses(engine) if addresses is None else addresses)
    ctx = _Context(
        engine, window, home_country, Secrecy(nets, seen, hosts),
        load_advisories(), probes, partial, zone,
    )  # fmt: skip
    sections: list[Section] = []
    others: list[RiseFact] = []
    for sid, members in campaign_groups(alerts):
        for a in members:
            facts[id(a)] = replace(facts[id(a)], group=sid)
        if any(facts[id(a)].headline for a in members):
            sections.append(_section(ctx, sid, members, facts, series))
        else:
            others += [facts[id(a)] for a in members]
    _number(sections)
    days = window.buckets()
    last_day = window.label(days[-1])
    return Report(
        date=last_day,
        first=window.label(days[0]),
        last=last_day,
        tz=zone,
        home_country=home_country,
        internal=internal,
        sections=sections,
        others=sorted(others, key=lambda r: (r.onset, _num(r.port))),
        references=_references(sections),
        partial=partial,
        alerts_from=alerts_from,
        masked_hosts=mask_hosts,
    )


__all__ = ["MASK", "Chart", "Report", "Section", "Statement", "assemble_report"]
