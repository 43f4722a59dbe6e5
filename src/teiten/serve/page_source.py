"""The source page (``/sources/{address}``): everything the store knows of one address.

First and last seen, packets, ports, fingerprints, country and AS, sessions
(linked to their bytes), login attempts, CVEs, and the tags with their
evidence and the classification they add up to
(:func:`teiten.app.sources.source_profile`). A sensor address is never a
source here: unless the server runs ``--internal`` it is answered as unknown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathPart
from fastapi.responses import HTMLResponse

from teiten.export.jsonable import jsonable
from teiten.serve.api import context, source_or_404
from teiten.serve.page_render import render

router = APIRouter(include_in_schema=False)


@router.get("/sources/{address}", response_class=HTMLResponse)
def source_page(request: Request, address: Annotated[str, PathPart(max_length=64)]) -> HTMLResponse:
    ctx = context(request)
    profile = source_or_404(ctx, ctx.settings, address)
    return render(request, "source.html", p=ctx.publish(jsonable(profile)))
