"""The session page (``/sessions/{id}``): one classified session and the bytes it carried.

The client's and the server's bytes are cut at line feeds and each line
escaped before anything else sees it (controls, carriage returns and bytes
that are not UTF-8 shown as ``\\xNN``), then the whole session goes through the
secrecy policy, so a sensor address in the bytes is masked like everywhere else.
Parsed requests and Telnet exchanges are shown as escaped JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from teiten.app import payloads
from teiten.export.jsonable import jsonable
from teiten.serve.api import context
from teiten.serve.page_render import lines, render

router = APIRouter(include_in_schema=False)

BYTES = ("client_bytes", "server_bytes")
STRUCTURED = ("requests", "telnet", "honeypot", "notes")
"""Fields shown as JSON text (whatever their shape)."""


def session_facts(row: dict[str, Any]) -> dict[str, Any]:
    """A session row with its bytes and structured fields as lists of escaped lines."""
    out = {k: v for k, v in row.items() if k not in BYTES + STRUCTURED}
    for k in BYTES:
        out[k] = lines(row.get(k))
    for k in STRUCTURED:
        value = jsonable(row.get(k))
        out[k] = lines(json.dumps(value, ensure_ascii=False, indent=1)) if value else []
    return jsonable(out)  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
def session_page(request: Request, session_id: str) -> HTMLResponse:
    ctx = context(request)
    row = payloads.show_payload(ctx.settings, session_id)
    return render(request, "session.html", s=ctx.publish(session_facts(row)))
