"""Gather what a report says from the store into a plain :class:`Report` (no formatting).

One section per campaign (or per alert outside a campaign), each with the
series behind its figures, a masked payload sample, the signature behind it
(CVE, JVN, references), fingerprint and segment evidence, the attack flow
derived from linked evidence, and the advisories whose CVEs match. Every value
is plain data (``to_dict`` is JSON-serialisable); masking happens here, so
nothing downstream ever holds a sensor address unless ``internal`` is set.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from teiten.advisories import Advisory, load_advisories
from teiten.analysis.alerts import Alert
from teiten.analysis.detection import run_detection
from teiten.analysis.payloads import sensor_addresses
from teiten.analysis.series import parse_ports, trend
from teiten.analysis.window import Window, resolve_window
from teiten.classify.signatures import load_signatures
from teiten.config import Settings
from teiten.errors import TeitenError
from teiten.secrecy import MASK, Secrecy, download_hosts
from teiten.store.engine import Engine, open_engine

MIRAI_SHARE = 0.5
"""Above this share of packets with ISN = destination address, a section names the Mirai feature."""
JA_TZ = "Asia/Tokyo"


@dataclass
class Chart:
    """The numbers behind one figure: dates, one list of counts per line, the onset."""

    number: int
    kind: str
    """``trend`` (all sources per port) or ``segments`` (domestic vs foreign)."""
    ports: list[str]
    dates: list[str]
    lines: dict[str, list[int]]
    onset: str
    measure: str = "packets"


@dataclass
class Section:
    """One finding: a campaign or a lone alert, with its evidence and advice."""

    id: str
    ports: list[str]
    onset: str
    last: str
    alerts: list[dict[str, Any]]
    charts: list[Chart]
    sample: dict[str, Any] | None
    signatures: list[dict[str, Any]]
    fingerprints: dict[str, float]
    """Port → share of packets with the Mirai feature."""
    mirai_ports: list[str]
    links: list[dict[str, Any]]
    flow: dict[str, Any] | None
    advisories: list[dict[str, Any]]
    probes: list[dict[str, Any]] | None
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
    references: list[dict[str, str]]
    masked_hosts: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, sort_keys=True)


def report_tz(settings: Settings, lang: str) -> str:
    """The operator's zone: the ``tz`` setting, or JST for Japanese when tz was left at default."""
    if lang == "ja" and settings.origin.get("tz", "default") == "default":
        return JA_TZ
    return str(settings.tz)


def _groups(alerts: list[Alert]) -> list[tuple[str, list[Alert]]]:
    """Alerts grouped by campaign (lone alerts alone), ordered by onset."""
    groups: dict[str, list[Alert]] = {}
    for a in alerts:
        key = a.campaign or f"a{a.id or len(groups)}-{a.port.replace('/', '')}-{a.onset}"
        groups.setdefault(key, []).append(a)
    return sorted(groups.items(), key=lambda g: (min(a.onset for a in g[1]), g[0]))


def _chart(
    engine: Engine, window: Window, ports: list[str], kind: str, home: str, onset: str
) -> Chart:
    split = "domestic" if kind == "segments" else "none"
    rows = trend(engine, parse_ports(ports), window, split=split, home_country=home)
    dates = sorted({str(r["date"]) for r in rows})
    lines: dict[str, list[int]] = {}
    for r in rows:
        if r["segment"] not in ("all", "domestic", "foreign"):
            continue
        key = str(r["port"]) if kind == "trend" else str(r["segment"])
        series = lines.setdefault(key, [0] * len(dates))
        series[dates.index(str(r["date"]))] += int(r["packets"])
    return Chart(0, kind, ports, dates, lines, onset)


def _session(engine: Engine, ports: list[int], window: Window) -> dict[str, Any] | None:
    where = (
        f"dst_port IN ({', '.join(str(p) for p in ports)}) AND len(cves) > 0"
        f" AND ts_first_ns >= {window.start_ns} AND ts_first_ns < {window.end_ns}"
    )
    rows = engine.query(
        f"SELECT * FROM sessions WHERE {where} ORDER BY ts_first_ns, id LIMIT 1"
    ).to_pylist()
    return dict(rows[0]) if rows else None


def _sample(row: dict[str, Any], mask: Secrecy) -> dict[str, Any]:
    text = bytes(row["client_bytes"] or b"").decode("utf-8", "backslashreplace")
    soap = (json.loads(row["details"] or "{}").get("requests") or [{}])[0].get("soap") or {}
    injected = [
        mask(str(v))
        for v in (soap.get("args") or {}).values()
        if any(ch in str(v) for ch in "`$;|&")
    ]
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
    rows = engine.query("SELECT type, value FROM indicators").to_pylist()
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
                "title": s.title,
                "cves": list(s.cves),
                "jvn": list(s.jvn),
                "references": list(s.references),
            }
        )
    return out


def _advisory(a: Advisory) -> dict[str, Any]:
    return {
        "id": a.id,
        "vendor": a.vendor,
        "cves": list(a.cves),
        "jvn": list(a.jvn_ids),
        "published": a.published.isoformat() if a.published else "",
        "title": {"ja": a.title.get("ja"), "en": a.title.get("en")},
        "notes": {"ja": a.notes.get("ja"), "en": a.notes.get("en")},
        "actions": {"ja": list(a.actions.get("ja")), "en": list(a.actions.get("en"))},
        "products": [
            {
                "model": p.model,
                "fixed": str(p.fixed) if p.fixed else "",
                "fixed_date": p.fixed_date.isoformat() if p.fixed_date else "",
            }
            for p in a.products
        ],
        "references": [{"url": r.url, "title": r.title} for r in a.references],
    }


def _flow(members: list[Alert], sample: dict[str, Any] | None) -> dict[str, Any] | None:
    """exploit → download → infected device → scanning, from linked alerts and the sample."""
    if sample is None:
        return None
    exploit = sample["dst_port"]
    scans = [
        a
        for a in members
        if a.port != exploit and a.evidence.get("fingerprints", {}).get("mirai", 0) >= MIRAI_SHARE
    ]
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


def _alert_row(a: Alert) -> dict[str, Any]:
    segs = a.evidence.get("segments", {})
    return {
        "kind": a.kind,
        "port": a.port,
        "segment": a.segment,
        "onset": a.onset,
        "last": a.last,
        "ratio": a.ratio,
        "sources": a.evidence.get("sources", 0),
        "mirai": a.evidence.get("fingerprints", {}).get("mirai", 0.0),
        "flat_segments": [s for s, e in segs.items() if s != "all" and not e["rose"]],
        "segments": segs,
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
    probes: list[dict[str, Any]] | None


def _section(ctx: _Context, sid: str, members: list[Alert]) -> Section:
    members = sorted(members, key=lambda a: (a.segment != "all", a.onset, _num(a.port)))
    onset = min(a.onset for a in members)
    wide = [a.port for a in members if a.segment == "all"]
    split = [a.port for a in members if a.segment != "all"]
    charts = [_chart(ctx.engine, ctx.window, wide, "trend", ctx.home, onset)] if wide else []
    if split:
        charts.append(_chart(ctx.engine, ctx.window, split, "segments", ctx.home, onset))
    ports = [a.port for a in members]
    numbers = [_num(p) for p in ports]
    row = _session(ctx.engine, numbers, ctx.window)
    sample = _sample(row, ctx.mask) if row else None
    cves = set(sample["cves"]) if sample else set()
    shares = {a.port: float(a.evidence.get("fingerprints", {}).get("mirai", 0.0)) for a in members}
    return Section(
        id=sid,
        ports=ports,
        onset=onset,
        last=max(a.last for a in members),
        alerts=[_alert_row(a) for a in members],
        charts=charts,
        sample=sample,
        signatures=_signatures(sample["signatures"]) if sample else [],
        fingerprints=shares,
        mirai_ports=[p for p, s in shares.items() if s >= MIRAI_SHARE],
        links=_links(members),
        flow=_flow(members, sample),
        advisories=[_advisory(a) for a in ctx.advisories if cves & set(a.cves)],
        probes=ctx.probes,
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


def _references(sections: list[Section]) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for s in sections:
        for sig in s.signatures:
            for url in sig["references"]:
                seen.setdefault(url, sig["title"])
        for adv in s.advisories:
            for ref in adv["references"]:
                seen[ref["url"]] = ref["title"] or seen.get(ref["url"], "")
    return [{"url": u, "title": t} for u, t in seen.items()]


def build_report(
    settings: Settings,
    *,
    first: str | None = None,
    last: str | None = None,
    tz: str | None = None,
    internal: bool = False,
    mask_hosts: bool = True,
    probes: list[dict[str, Any]] | None = None,
    alerts: list[Alert] | None = None,
) -> Report:
    """Run detection over the window (unless ``alerts`` are given) and gather the report.

    ``internal`` keeps sensor addresses; ``mask_hosts`` masks attacker download hosts;
    ``probes`` are back-check summaries (None: no back-check was run).
    """
    zone = tz or str(settings.tz)
    settings = settings.replace(tz=zone)
    if alerts is None:
        alerts = run_detection(settings, first=first, last=last).found
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, zone)
        if window is None:
            raise TeitenError("the store holds no packets: ingest captures before a report")
        hosts = _hosts(engine) if mask_hosts else set()
        nets = () if internal else settings.sensor_networks
        seen = set() if internal else sensor_addresses(engine)
        ctx = _Context(
            engine, window, str(settings.home_country), Secrecy(nets, seen, hosts),
            load_advisories(), probes,
        )  # fmt: skip
        sections = [_section(ctx, sid, members) for sid, members in _groups(alerts)]
    _number(sections)
    days = window.buckets()
    last_day = window.label(days[-1])
    return Report(
        date=last_day,
        first=window.label(days[0]),
        last=last_day,
        tz=zone,
        home_country=str(settings.home_country),
        internal=internal,
        sections=sections,
        references=_references(sections),
        masked_hosts=mask_hosts,
    )


__all__ = ["MASK", "Chart", "Report", "Section", "build_report", "report_tz"]
