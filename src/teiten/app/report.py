"""Writing a finished report: build it from the store, render it, check it leaks nothing."""

from __future__ import annotations

from pathlib import Path

from teiten.analysis.alerts import Alert
from teiten.analysis.payloads import sensor_addresses
from teiten.app.engine import open_engine
from teiten.config import Settings
from teiten.errors import DependencyError, TeitenError
from teiten.report.model import build_report, report_tz
from teiten.report.render import render
from teiten.secrecy import Secrecy


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
    )
    with open_engine(settings) as engine:
        guard = None if internal else Secrecy(settings.sensor_networks, sensor_addresses(engine))
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
