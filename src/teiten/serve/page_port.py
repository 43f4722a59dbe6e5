"""The port page (``/ports/{number}/{proto}``): one port's series, rises and senders.

A daily (or ``?by=hour``) series split as asked, drawn as two SVG charts
(packets and sources) with the stored alerts' onsets marked and partial days
banded; the fingerprint mix; the busiest sources (linked to their pages),
countries and ASNs; the latest classified sessions (linked to their bytes).
``/ports?port=23/tcp`` shows the same page, for the overview's form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathPart
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from teiten.app import overview
from teiten.app.portview import PortQuery, port_view
from teiten.export.jsonable import jsonable
from teiten.report.charts import series_lines
from teiten.serve.api import DATE, context
from teiten.serve.chart import line_chart
from teiten.serve.page_render import language, render

router = APIRouter(include_in_schema=False)

Split = Literal["none", "domestic", "country", "asn", "fingerprint"]
MOST_LINES = 8
"""Series a chart draws at most (the largest; a country or ASN split can have hundreds)."""


def _largest(lines: dict[str, list[float]], most: int = MOST_LINES) -> dict[str, list[float]]:
    """The ``most`` series with the largest totals, in their first order."""
    if len(lines) <= most:
        return lines
    keep = set(sorted(lines, key=lambda k: (-sum(lines[k]), k))[:most])
    return {k: v for k, v in lines.items() if k in keep}


def charts(view: dict[str, Any], lang: str) -> list[tuple[str, Markup]]:
    """The packets and sources charts of a (published) port view: (caption, SVG markup)."""
    rows: Sequence[dict[str, Any]] = view["series"]
    if not rows:
        return []
    marks = [(str(a["onset"]), f"{a['onset']} {a['segment']} {a['kind']}") for a in view["alerts"]]
    out = []
    for measure, ja, en in (
        ("packets", "パケット数", "packets"),
        ("sources", "送信元数", "sources"),
    ):
        labels, lines = series_lines(rows, measure)
        title = f"{view['port']}: {ja if lang == 'ja' else en}"
        svg = line_chart(
            labels, _largest(lines), title=title, markers=marks, partial=view["partial"]
        )
        out.append((title, Markup(svg)))  # chart.py escapes every label it writes
    return out


def port_page_of(
    request: Request, port_text: str, first: str | None, last: str | None, by: str, split: str
) -> HTMLResponse:
    """The port page; hourly buckets without a window cover the recent days only."""
    ctx = context(request)
    if by == "hour" and not first and not last:
        recent = ctx.cached("recent-days", lambda: overview.recent_days(ctx.settings))
        first, last = recent if recent is not None else (None, None)
    query = PortQuery(first=first, last=last, by=by, split=split)
    view = ctx.publish(jsonable(port_view(ctx.settings, port_text, query)))
    shown = charts(view, language(request))
    return render(request, "port.html", v=view, charts=shown, by=by, split=split)


First = Annotated[str | None, Query(alias="from", pattern=DATE)]
Last = Annotated[str | None, Query(alias="to", pattern=DATE)]


@router.get("/ports/{number}/{proto}", response_class=HTMLResponse)
def port_page(
    request: Request,
    number: Annotated[int, PathPart(ge=0, le=65535)],
    proto: Literal["tcp", "udp"],
    first: First = None,
    last: Last = None,
    by: Literal["day", "hour"] = "day",
    split: Split = "none",
) -> HTMLResponse:
    return port_page_of(request, f"{number}/{proto}", first, last, by, split)


@router.get("/ports", response_class=HTMLResponse)
def port_form(
    request: Request,
    port: Annotated[str, Query(min_length=1, max_length=16)],
    first: First = None,
    last: Last = None,
    by: Literal["day", "hour"] = "day",
    split: Split = "none",
) -> HTMLResponse:
    return port_page_of(request, port, first, last, by, split)
