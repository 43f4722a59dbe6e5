"""Files the dashboard hands out: the report of all data, and its own stylesheet.

``/reports/report.{lang}.{html|md}`` builds the report on demand
(:func:`teiten.app.report.write_report` into a temporary folder; kept per
data version) and sends it as an attachment: the HTML report carries its own
styles and figures and is never rendered inside the dashboard's origin (a
``sandbox`` policy is added in case a browser opens it anyway).
``/static/teiten.css`` is the one stylesheet.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from teiten.errors import TeitenError
from teiten.serve.api import context, report
from teiten.serve.context import Context

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
STYLESHEET = STATIC / "teiten.css"
MEDIA = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8"}


def report_file(ctx: Context, lang: str, fmt: str) -> bytes:
    """The report of all data in ``lang`` and ``fmt``, written once per data version."""
    from teiten.app.report import render_report

    internal = ctx.options.internal

    def write() -> bytes:  # the report the campaign pages are cut from, rendered
        with tempfile.TemporaryDirectory(prefix="teiten-serve-report-") as tmp:
            files = render_report(
                ctx.settings, report(ctx), Path(tmp), lang=lang, fmts=(fmt,),
                internal=internal, addresses=ctx.sensor_addresses(),
            )  # fmt: skip
            wanted = [f for f in files if f.suffix == f".{fmt}"]
            if not wanted:
                raise TeitenError(f"the report was not written as {fmt}")
            return wanted[0].read_bytes()

    return ctx.cached(f"report-file:{lang}:{fmt}:{internal}", write)


@router.get("/reports/report.{lang}.{fmt}")
def report_download(
    request: Request, lang: Literal["ja", "en"], fmt: Literal["html", "md"]
) -> Response:
    body = report_file(context(request), lang, fmt)
    headers = {
        "content-disposition": f'attachment; filename="teiten-report.{lang}.{fmt}"',
        "content-security-policy": "sandbox",
        "cache-control": "no-store",
    }
    return Response(body, media_type=MEDIA[fmt], headers=headers)


@router.get("/static/teiten.css")
def stylesheet() -> Response:
    return Response(
        STYLESHEET.read_bytes(),
        media_type="text/css; charset=utf-8",
        headers={"cache-control": "max-age=3600"},
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    """No icon (a browser asks for one; an empty answer keeps its console free of 404s)."""
    return Response(status_code=204, headers={"cache-control": "max-age=86400"})
