"""``teiten report``: gather the report of a window from the store, render it, check it
leaks nothing. Reading alerts and back-check rows, and choosing the window, happen here;
``teiten.report`` only assembles and renders."""

from __future__ import annotations

from pathlib import Path

from teiten.analysis.alerts import Alert
from teiten.analysis.payloads import sensor_addresses
from teiten.analysis.window import Window, resolve_window
from teiten.app.backcheck import load_probes
from teiten.app.detect import find_alerts_in, stored_alerts_for
from teiten.app.engine import open_engine
from teiten.backcheck.model import Probe
from teiten.config import Settings
from teiten.errors import DependencyError, StoreError, TeitenError
from teiten.report.model import Report, assemble_report
from teiten.report.render import render
from teiten.secrecy import Secrecy


def report_tz(settings: Settings) -> str:
    """The one time zone of a report, the same for ja and en: the ``tz`` setting."""
    return str(settings.tz)


def _stored_probes(settings: Settings) -> list[Probe]:
    try:
        return load_probes(settings)
    except StoreError:  # no data directory: no back-check either
        return []


def window_alerts(settings: Settings, window: Window) -> tuple[list[Alert], str]:
    """The alerts of the window: those ``teiten detect`` stored, else detected in memory.

    Returns the alerts and where they came from (``stored`` or ``memory``).
    Nothing is written and nothing is sent either way.
    """
    days = window.buckets()
    first, last = window.label(days[0]), window.label(days[-1])
    stored = stored_alerts_for(settings, first, last, window.tz.key)
    if stored is not None:
        return stored, "stored"
    return find_alerts_in(settings, first=first, last=last).found, "memory"


def build_report(
    settings: Settings,
    *,
    first: str | None = None,
    last: str | None = None,
    tz: str | None = None,
    internal: bool = False,
    mask_hosts: bool = True,
    probes: list[Probe] | None = None,
    alerts: list[Alert] | None = None,
    addresses: set[str] | None = None,
) -> Report:
    """Gather the report of the window from the store; writes nothing, sends nothing.

    ``alerts``: use these instead of the stored ones (or in-memory detection);
    ``internal`` keeps sensor addresses; ``mask_hosts`` masks attacker download
    hosts; ``probes``: back-check rows to use instead of the stored ones;
    ``addresses``: the sensor's addresses, when the caller already knows them.
    """
    zone = tz or report_tz(settings)
    settings = settings.replace(tz=zone)
    with open_engine(settings) as engine:
        window = resolve_window(engine, first, last, zone)
    if window is None:
        raise TeitenError("the store holds no packets: ingest captures before a report")
    source = "given"
    if alerts is None:
        alerts, source = window_alerts(settings, window)
    checked = _stored_probes(settings) if probes is None else probes
    with open_engine(settings) as engine:
        return assemble_report(
            engine,
            window,
            alerts,
            home_country=str(settings.home_country),
            probes=checked,
            sensor_networks=tuple(settings.sensor_networks),
            internal=internal,
            mask_hosts=mask_hosts,
            alerts_from=source,
            addresses=addresses,
        )


def write_report(
    settings: Settings,
    out: Path,
    *,
    lang: str = "ja",
    fmts: tuple[str, ...] = ("html",),
    first: str | None = None,
    last: str | None = None,
    internal: bool = False,
    alerts: list[Alert] | None = None,
    missing: list[str] | None = None,
    addresses: set[str] | None = None,
) -> list[Path]:
    """Build the report once and render it in each format; returns the files written.

    Unless ``internal``, the report's data (sample, chart and figure text) is
    searched for sensor addresses in any notation before anything is drawn, and
    every file written (HTML, Markdown, SVG, the PDF's text layer) again before it
    is kept; a file that names one is deleted and :class:`TeitenError` raised
    (see :mod:`teiten.secrecy`).

    With a ``missing`` list, a format whose system package is absent (WeasyPrint's
    Pango, pdftotext, a CJK font) is noted there and skipped instead of ending the run.
    """
    report = build_report(
        settings,
        first=first,
        last=last,
        tz=report_tz(settings),
        internal=internal,
        alerts=alerts,
        addresses=addresses,
    )
    return render_report(
        settings, report, out, lang=lang, fmts=fmts, internal=internal, missing=missing,
        addresses=addresses,
    )  # fmt: skip


def render_report(
    settings: Settings,
    report: Report,
    out: Path,
    *,
    lang: str,
    fmts: tuple[str, ...],
    internal: bool = False,
    missing: list[str] | None = None,
    addresses: set[str] | None = None,
) -> list[Path]:
    """Render a built report in each format, checked for sensor addresses as
    :func:`write_report` says (``addresses``: the sensor's, when the caller knows them)."""
    if addresses is None and not internal:
        with open_engine(settings) as engine:
            addresses = sensor_addresses(engine)
    guard = None if internal else Secrecy(settings.sensor_networks, addresses or ())
    if guard is not None and guard.leaks(report.to_json()):
        # Figures are embedded as PNG, whose text no later check can read: the data
        # that charts, captions and the flow figure are drawn from is checked here.
        raise TeitenError("refusing to publish the report: its data names a sensor address")
    files: list[Path] = []
    for fmt in fmts:
        try:
            files += render(report, fmt, lang, out, redactor=guard)
        except DependencyError as e:
            if missing is None:
                raise
            missing.append(f"report.{lang}.{fmt}: {e}")
    return files
