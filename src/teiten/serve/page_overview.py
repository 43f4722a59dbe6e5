"""The overview page (``/``): what an analyst reads first each morning.

Top ports of the recent days (or of ``?from=…&to=…``), the rising ports (stored
alerts still ongoing), every campaign, the store's health and, when the server
was given a sensor configuration, the sensor's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from teiten.app import campaigns, detect, overview, traffic
from teiten.errors import TeitenError, first_line
from teiten.export.jsonable import jsonable
from teiten.serve.api import DATE, context, report
from teiten.serve.context import Context
from teiten.serve.page_render import render

router = APIRouter(include_in_schema=False)

TOP = 20
"""Ports the overview ranks."""


def sensor_health(ctx: Context) -> dict[str, Any] | None:
    """The sensor's status when the server was given its configuration (else None);
    a configuration that cannot be read is shown as its one-line error."""
    path = str(ctx.options.sensor_config or "")
    if not path:
        return None
    from teiten.sensor.config import load_config
    from teiten.sensor.status import sensor_status

    try:
        return sensor_status(load_config(path))
    except TeitenError as e:
        return {"error": first_line(e, 300)}


def _window(
    ctx: Context, store: dict[str, Any], first: str | None, last: str | None
) -> tuple[str, str] | None:
    """The days ranked: as asked (a missing end from the data), else the recent days;
    None for a store without packets."""
    recent = ctx.cached("recent-days", lambda: overview.recent_days(ctx.settings))
    if recent is None:
        return None
    if not first and not last:
        return recent
    return first or str(store["first_packet"])[:10], last or recent[1]


def overview_facts(ctx: Context, first: str | None, last: str | None) -> dict[str, Any]:
    """Everything the overview shows, published (sensor addresses masked unless internal)."""
    store = ctx.cached("store-health", lambda: overview.store_health(ctx.settings))
    window = _window(ctx, store, first, last)
    ports: list[dict[str, Any]] = []
    if window is not None:
        ports = traffic.port_ranking(ctx.settings, first=window[0], last=window[1], top=TOP)
    alerts = detect.list_alerts(ctx.settings)
    facts = {
        "window": window,
        "ports": ports,
        "rising": [a for a in alerts if a.get("state") != "ended"],
        "campaigns": campaigns.list_campaigns(report(ctx)) if window is not None else [],
        "store": store,
        "sensor": sensor_health(ctx),
    }
    return ctx.publish(jsonable(facts))  # type: ignore[no-any-return]


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request,
    first: Annotated[str | None, Query(alias="from", pattern=DATE)] = None,
    last: Annotated[str | None, Query(alias="to", pattern=DATE)] = None,
) -> HTMLResponse:
    ctx = context(request)
    facts = overview_facts(ctx, first, last)
    return render(request, "overview.html", tz=str(ctx.settings.tz), **facts)
