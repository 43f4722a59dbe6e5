"""The campaign page (``/campaigns/{id}``): one alert group as the report's section tells it.

Linked ports, the rises with their numbers, the section's charts redrawn as
SVG, the masked sample, signatures and indicators, the back-check findings
and the matching advisories (models and fixed versions), with a link to the
whole report. A group that is not a headline shows its rises only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathPart
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from teiten.app import campaigns
from teiten.export.jsonable import jsonable
from teiten.serve.api import context, report
from teiten.serve.chart import line_chart
from teiten.serve.page_render import language, render

router = APIRouter(include_in_schema=False)

CHART_TITLES = {"trend": ("推移", "trend"), "segments": ("国内・国外別", "domestic and foreign")}


def section_charts(section: dict[str, Any], lang: str) -> list[tuple[str, Markup]]:
    """The section's charts (published data): (caption, SVG markup), onset marked, partial
    days banded."""
    out = []
    for c in section.get("charts") or []:
        ja, en = CHART_TITLES.get(str(c["kind"]), (str(c["kind"]), str(c["kind"])))
        title = f"{', '.join(c['ports'])}: {ja if lang == 'ja' else en} ({c['measure']})"
        onset = str(c["onset"])
        svg = line_chart(
            c["dates"],
            c["lines"],
            title=title,
            markers=[(onset, ("開始 " if lang == "ja" else "onset ") + onset)],
            partial=c.get("partial") or [],
        )
        out.append((title, Markup(svg)))  # chart.py escapes every label it writes
    return out


def indicators(section: dict[str, Any]) -> list[str]:
    """Download URLs and injected commands of the sample and the flow, each once."""
    sample = section.get("sample") or {}
    flow = section.get("flow") or {}
    found = [*sample.get("downloads", []), *flow.get("downloads", [])]
    return list(dict.fromkeys(str(x) for x in found))


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    request: Request, campaign_id: Annotated[str, PathPart(max_length=128)]
) -> HTMLResponse:
    ctx = context(request)
    detail = ctx.publish(jsonable(campaigns.campaign_detail(report(ctx), campaign_id)))
    section = detail.get("section") or {}
    return render(
        request,
        "campaign.html",
        c=detail,
        s=section,
        charts=section_charts(section, language(request)) if section else [],
        indicators=indicators(section) if section else [],
    )
