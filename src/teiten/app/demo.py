"""``teiten demo``: the seed case end to end on a simulated sensor, with no external data.

simulate ``npa-2017`` → ingest into ``OUT/data`` → top ports → the seed's two
series (52869/TCP; 23+2323/TCP domestic vs foreign) → charts in ``OUT`` →
surge detection and campaigns.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teiten.analysis.alerts import Alert
from teiten.analysis.payloads import sensor_addresses
from teiten.analysis.ports import top_ports
from teiten.analysis.series import parse_ports, trend
from teiten.analysis.window import Window, data_span
from teiten.app.detect import run_detection
from teiten.app.engine import open_engine
from teiten.app.ingest import ingest
from teiten.app.payloads import list_indicators, list_payloads, show_payload
from teiten.app.report import write_report
from teiten.config import Settings
from teiten.errors import ConfigError
from teiten.pipeline import IngestResult
from teiten.report.charts import partial_days, trend_chart
from teiten.report.model import injected_arguments
from teiten.secrecy import Secrecy, download_hosts
from teiten.simulate import simulate

SCENARIO = "npa-2017"
FIRST, LAST = dt.date(2017, 10, 1), dt.date(2017, 12, 18)


@dataclass
class DemoResult:
    """What the demo produced."""

    out: Path
    ingest: IngestResult
    top_ports: list[dict[str, Any]]
    exploit_series: list[dict[str, Any]]
    """52869/tcp per day, all sources."""
    telnet_series: list[dict[str, Any]]
    """23/tcp and 2323/tcp per day, domestic vs foreign."""
    charts: list[Path] = field(default_factory=list)
    simulation: Any = None
    alerts: list[Alert] = field(default_factory=list)
    sample: dict[str, Any] | None = None
    """A classified CVE-2014-8361 session, its bytes masked for publication."""
    indicators: list[dict[str, Any]] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    """The demo reports (Japanese and English, HTML and PDF)."""
    skipped: list[str] = field(default_factory=list)
    """Reports not written because a system package they need is missing, with the reason."""


def weekly(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sum daily trend rows into weeks (from Monday), one row per week.

    Each port+segment becomes one column: ``"packets (most sources in a day)"``.
    """
    packets: dict[tuple[str, str], int] = defaultdict(int)
    sources: dict[tuple[str, str], int] = defaultdict(int)
    keys: list[str] = []
    for r in rows:
        day = dt.date.fromisoformat(r["date"])
        week = (day - dt.timedelta(days=day.weekday())).isoformat()
        key = r["port"] if r["segment"] == "all" else f"{r['port']} {r['segment']}"
        if key not in keys:
            keys.append(key)
        packets[week, key] += r["packets"]
        sources[week, key] = max(sources[week, key], r["sources"])
    weeks = sorted({w for w, _ in packets})
    return [
        {"week": w} | {k: f"{packets[w, k]:,} ({sources[w, k]:,})" for k in keys} for w in weeks
    ]


MARK = ".teiten-demo"
"""The file that says a folder was made by the demo, and is the demo's to empty."""


def prepare_out(out: Path) -> None:
    """Make ``out`` an empty demo folder, or refuse.

    A missing ``out`` is created (only the folder itself: its parent must exist).
    An empty folder is used as it is. A folder holding :data:`MARK` was made by
    an earlier demo and belongs to it: everything in it is removed first, so the
    store never holds two simulations. Any other non-empty folder is refused.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"demo --out {out} is a file, not a folder")
    if not out.exists():
        if not out.absolute().parent.is_dir():
            raise ConfigError(
                f"demo --out {out}: the folder {out.absolute().parent} does not exist"
            )
        out.mkdir()
    entries = list(out.iterdir())
    if entries and not (out / MARK).is_file():
        raise ConfigError(
            f"demo --out {out} is not empty and was not made by teiten demo; "
            "give a new or empty folder"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (out / MARK).write_text(
        "Made by teiten demo: a new demo run into this folder empties it first.\n",
        encoding="utf-8",
    )


def run_demo(
    out: Path, settings: Settings, *, scale: float = 1.0, seed: int = 1, reports: bool = True
) -> DemoResult:
    """Run the whole demo into ``out`` (its ``data`` folder is the store).

    ``out`` is prepared by :func:`prepare_out`: never two simulations mixed in one store.
    """
    prepare_out(out)
    sim = simulate(SCENARIO, out / "capture", scale=scale, seed=seed)
    settings = settings.replace(
        data=str(out / "data"),
        sensor="npa-2017-sim",
        sensor_networks=list(sim.sensor_networks),
        home_country="JP",
    )
    ingested = ingest(sim.pcaps, settings)
    with open_engine(settings) as engine:
        window = Window.from_dates(FIRST, LAST, str(settings.tz))
        ports = top_ports(engine, window, top=10, home_country="JP")
        exploit = trend(engine, parse_ports(["52869/tcp"]), window)
        telnet = trend(
            engine, parse_ports(["23/tcp", "2323/tcp"]), window, split="domestic", home_country="JP"
        )
        span = data_span(engine)
    detection = run_detection(settings)
    charts = draw_charts(out, exploit, telnet, detection.found, span, str(settings.tz))
    result = DemoResult(
        out,
        ingested,
        ports,
        exploit,
        telnet,
        charts,
        sim,
        detection.found,
        masked_sample(settings),
        list_indicators(settings, limit=8),
    )
    if reports:
        for lang in ("ja", "en"):
            result.reports += write_report(
                settings,
                out,
                lang=lang,
                fmts=("html", "pdf"),
                first=FIRST.isoformat(),
                last=LAST.isoformat(),
                alerts=detection.found,
                missing=result.skipped,
            )
    return result


def draw_charts(
    out: Path,
    exploit: list[dict[str, Any]],
    telnet: list[dict[str, Any]],
    alerts: list[Alert],
    span: tuple[int, int] | None,
    tz: str,
) -> list[Path]:
    """The seed's two figures, each with the onsets of the alerts on its ports marked.

    One line per port and segment (23/TCP and 2323/TCP each domestic and
    foreign), the time zone on the date axis, partial edge days hatched.
    """
    days = sorted({str(r["date"]) for r in exploit + telnet})
    partial = partial_days(span, days, tz)

    def onsets(ports: set[str]) -> list[str]:
        return sorted({a.onset for a in alerts if a.port in ports})

    return [
        trend_chart(
            exploit, out / "52869-tcp.png", title="52869/TCP packets per day",
            onsets=onsets({"52869/tcp"}), partial=partial, tz=tz,
        ),
        trend_chart(
            telnet, out / "telnet-domestic-foreign.png",
            title="23/TCP and 2323/TCP packets per day, domestic vs foreign",
            onsets=onsets({"23/tcp", "2323/tcp"}), partial=partial, tz=tz,
        ),
    ]  # fmt: skip


def masked_sample(settings: Settings, cve: str = "CVE-2014-8361") -> dict[str, Any] | None:
    """The first session classified to ``cve``, with sensor and download hosts masked."""
    rows = list_payloads(settings, cve=cve, limit=1)
    if not rows:
        return None
    row = show_payload(settings, rows[0]["id"])
    text = bytes(row["client_bytes"]).decode("utf-8", "backslashreplace")
    with open_engine(settings) as engine:
        addresses = sensor_addresses(engine)
    hosts = set()
    for value in row["indicators"]:
        hosts |= download_hosts(value) if "://" in value else set()
    hosts |= {
        v
        for v, t in zip(row["indicators"], row["indicator_types"], strict=True)
        if t in ("ip", "domain")
    }
    mask = Secrecy(settings.sensor_networks, addresses, hosts)
    injected = injected_arguments(row, mask)
    return {
        **{k: row[k] for k in ("id", "signatures", "cves", "jvn", "kind", "dst_port")},
        "request": mask(text),
        "injected": injected,
    }


def campaign_lines(alerts: list[Alert]) -> list[str]:
    """Plain-language summary of each campaign among the alerts."""
    lines = []
    for cid in sorted({a.campaign for a in alerts if a.campaign}):
        members = [a for a in alerts if a.campaign == cid]
        ports = ", ".join(f"{a.port} ({a.segment})" for a in members)
        lines.append(f"campaign {cid}: {ports}, onset {min(a.onset for a in members)}")
        for a in members:
            segs = a.evidence.get("segments", {})
            flat = [s for s, e in segs.items() if s != "all" and not e["rose"]]
            mirai = a.evidence.get("fingerprints", {}).get("mirai", 0.0)
            note = f"; no rise from {', '.join(flat)} sources" if flat else ""
            lines.append(
                f"  {a.port}: x{a.ratio} unique sources vs baseline, "
                f"Mirai fingerprint on {mirai:.0%} of packets{note}"
            )
    return lines
