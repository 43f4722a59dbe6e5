"""The JSON API under ``/api/v1``: the CLI's answers over HTTP, read only.

Each route parses its parameters, calls one use case of :mod:`teiten.app` and
publishes the result through the secrecy policy (sensor addresses masked unless
the server runs ``--internal``). ``ports`` and ``trend`` answer the very rows of
``teiten ports|trend --format json``. Errors are JSON: 400 for a value teiten
refuses, 404 for something not stored, 422 for a parameter of the wrong shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathPart
from fastapi.responses import JSONResponse, Response

from teiten.app import campaigns, detect, payloads, traffic
from teiten.app.report import build_report
from teiten.config import Settings
from teiten.csvcell import csv_text
from teiten.errors import ConfigError, NotFoundError
from teiten.export.jsonable import jsonable
from teiten.serve.context import Context

router = APIRouter(prefix="/api/v1", tags=["api"])

DATE = r"^\d{4}-\d{2}-\d{2}$"
First = Annotated[str | None, Query(alias="from", pattern=DATE, description="First local day.")]
Last = Annotated[str | None, Query(alias="to", pattern=DATE, description="Last local day.")]
Zone = Annotated[
    str | None, Query(max_length=64, description="IANA time zone (default: setting tz).")
]
Rows = list[dict[str, Any]]


def context(request: Request) -> Context:
    """The server's :class:`Context` (set by :func:`teiten.serve.create_app`)."""
    return request.app.state.context  # type: ignore[no-any-return]


def zoned(ctx: Context, tz: str | None) -> Settings:
    """The server's settings, cut in ``tz`` when one is asked for."""
    return ctx.settings.replace(tz=tz) if tz else ctx.settings


def answer(ctx: Context, value: Any) -> Any:
    """A result as JSON values, sensor addresses masked (unless ``--internal``)."""
    return ctx.publish(jsonable(value))


@router.get("/ports", summary="Destination ports ranked by unique sources (teiten ports)")
def ports(
    request: Request,
    first: First = None,
    last: Last = None,
    tz: Zone = None,
    top: Annotated[int, Query(ge=1, le=65536)] = 20,
) -> Rows:
    ctx = context(request)
    return answer(ctx, traffic.port_ranking(zoned(ctx, tz), first=first, last=last, top=top))  # type: ignore[no-any-return]


@router.get("/trend", summary="Packets and sources per port and day or hour (teiten trend)")
def trend(
    request: Request,
    port: Annotated[list[str], Query(min_length=1, max_length=64, description="e.g. 23/tcp")],
    first: First = None,
    last: Last = None,
    tz: Zone = None,
    by: Literal["day", "hour"] = "day",
    split: Literal["none", "domestic", "country", "asn", "fingerprint"] = "none",
    measure: Annotated[list[Literal["sources24", "per_address"]], Query()] = [],  # noqa: B006
) -> Rows:
    ctx = context(request)
    rows = traffic.port_trend(
        zoned(ctx, tz), port, first=first, last=last, by=by, split=split, measures=tuple(measure)
    )
    return answer(ctx, rows)  # type: ignore[no-any-return]


@router.get("/alerts", summary="Stored alerts (teiten alerts)")
def alerts(
    request: Request,
    since: Annotated[str | None, Query(pattern=DATE)] = None,
) -> Rows:
    ctx = context(request)
    return answer(ctx, detect.list_alerts(ctx.settings, since=since))  # type: ignore[no-any-return]


def report(ctx: Context) -> Any:
    """The report of all data, as the campaign pages cut it (cached per data version)."""
    internal = ctx.options.internal
    return ctx.cached(
        f"report:{internal}",
        lambda: build_report(ctx.settings, internal=internal, addresses=ctx.sensor_addresses()),
    )


@router.get("/campaigns", summary="Alert groups: campaigns and lone rises, by onset")
def campaign_list(request: Request) -> Rows:
    ctx = context(request)
    return answer(ctx, campaigns.list_campaigns(report(ctx)))  # type: ignore[no-any-return]


@router.get("/campaigns/{campaign_id}", summary="One campaign as its report section shows it")
def campaign(
    request: Request,
    campaign_id: Annotated[str, PathPart(max_length=128)],
) -> dict[str, Any]:
    ctx = context(request)
    return answer(ctx, campaigns.campaign_detail(report(ctx), campaign_id))  # type: ignore[no-any-return]


@router.get("/sessions", summary="Classified sessions (teiten payloads)")
def sessions(
    request: Request,
    cve: Annotated[str | None, Query(pattern=r"^CVE-\d{4}-\d{4,}$")] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
    first: First = None,
    last: Last = None,
    tz: Zone = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    ctx = context(request)
    page = payloads.payload_page(
        zoned(ctx, tz), signature=signature, cve=cve, first=first, last=last, limit=limit
    )
    return answer(ctx, {"total": page.total, "limit": limit, "sessions": page.rows})  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}", summary="One session with its bytes (teiten payloads --show)")
def session(
    request: Request, session_id: Annotated[str, PathPart(max_length=64)], tz: Zone = None
) -> dict[str, Any]:
    ctx = context(request)
    return answer(ctx, payloads.show_payload(zoned(ctx, tz), session_id))  # type: ignore[no-any-return]


def source_or_404(ctx: Context, settings: Settings, address: str) -> dict[str, Any]:
    """One source's profile; a sensor address (unless ``--internal``) or an address never
    seen is 404."""
    from teiten.app.sources import source_profile

    if not ctx.options.internal and ctx.secrecy().names_sensor(address):
        raise NotFoundError("no such source")  # a sensor address is never a source here
    profile = source_profile(settings, address)
    if profile is None:
        raise NotFoundError(f"no packets or sessions from {address}")
    return profile


@router.get("/sources/{address}", summary="One source address: what it sent, tags, evidence")
def source(
    request: Request, address: Annotated[str, PathPart(max_length=64)], tz: Zone = None
) -> dict[str, Any]:
    ctx = context(request)
    return answer(ctx, source_or_404(ctx, zoned(ctx, tz), address))  # type: ignore[no-any-return]


@router.get(
    "/indicators",
    summary="Indicators from payloads (teiten indicators): json, csv or STIX 2.1",
    response_model=None,
)
def indicators(
    request: Request,
    format: Literal["json", "csv", "stix"] = "json",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> Response | Rows:
    ctx = context(request)
    if format == "stix":
        text = payloads.stix_export(ctx.settings, limit=limit, addresses=ctx.sensor_addresses())
        return Response(ctx.publish(text), media_type="application/stix+json;version=2.1")
    page = payloads.indicator_page(ctx.settings, limit=limit, secrecy=ctx.secrecy())
    rows = answer(ctx, page.rows)
    if format == "csv":
        return Response(csv_text(rows), media_type="text/csv; charset=utf-8")
    return rows  # type: ignore[no-any-return]


@router.get("/advisories/check", summary="Is a model at a firmware version affected?")
def advisory_check(
    request: Request,
    model: Annotated[str, Query(min_length=1, max_length=128)],
    version: Annotated[str, Query(min_length=1, max_length=64)],
    lang: Literal["ja", "en"] = "en",
) -> dict[str, Any]:
    from teiten.advisories.check import check

    ctx = context(request)
    dirs = [Path(d) for d in ctx.options.advisories]
    return answer(ctx, check(model, version, lang=lang, extra_dirs=dirs).to_dict())  # type: ignore[no-any-return]


@router.get("/notify", summary="Infected-looking sources per network, for its owner")
def notify(
    request: Request,
    asn: Annotated[int | None, Query(ge=0, le=4294967295)] = None,
    prefix: Annotated[str | None, Query(max_length=64)] = None,
    first: First = None,
    last: Last = None,
) -> Rows:
    from teiten.app.notify import notify_feed

    ctx = context(request)
    if (asn is None) == (prefix is None):
        raise ConfigError("give exactly one of asn or prefix")
    by, network = ("asn", str(asn)) if asn is not None else ("prefix", str(prefix))
    rows = notify_feed(ctx.settings, by, first=first, last=last, network=network)
    return answer(ctx, rows)  # type: ignore[no-any-return]


def error(status: int, message: str) -> JSONResponse:
    """The one shape of every API error."""
    return JSONResponse({"error": message, "status": status}, status_code=status)
