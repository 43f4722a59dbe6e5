"""The session page (``/sessions/{id}``): one classified session and the bytes it carried.

The client's and the server's bytes are cut at line feeds and each line
escaped before anything else sees it (controls, carriage returns and bytes
that are not UTF-8 shown as ``\\xNN``), then the whole session goes through the
secrecy policy, so a sensor address in the bytes is masked like everywhere else.
Parsed requests and Telnet exchanges are shown as an indented outline, every
value escaped the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathPart
from fastapi.responses import HTMLResponse

from teiten.app import payloads
from teiten.export.jsonable import jsonable
from teiten.serve.api import context
from teiten.serve.page_render import lines, render, shown

router = APIRouter(include_in_schema=False)

BYTES = ("client_bytes", "server_bytes")
STRUCTURED = ("requests", "telnet", "honeypot", "notes")
"""Fields shown as an outline (whatever their shape)."""


def outline(value: Any, depth: int = 0) -> list[str]:
    """Nested dicts and lists as indented ``key: value`` and ``- item`` lines, each scalar
    escaped like :func:`shown`; empty values and empty containers are left out."""
    pad = "  " * depth
    out: list[str] = []
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, v in items:
        head = pad + (f"{shown(key, 200)}:" if key is not None else "-")
        if v in (None, "", [], {}):
            continue
        if isinstance(v, dict | list):
            out.append(head)
            out += outline(v, depth + 1)
        else:
            out += [
                f"{head} {line}" if i == 0 else f"{pad}  {line}" for i, line in enumerate(lines(v))
            ]
    return out


def session_facts(row: dict[str, Any]) -> dict[str, Any]:
    """A session row with its bytes and structured fields as lists of escaped lines."""
    out = {k: v for k, v in row.items() if k not in BYTES + STRUCTURED}
    for k in BYTES:
        out[k] = lines(row.get(k))
    for k in STRUCTURED:
        value = jsonable(row.get(k))
        out[k] = outline(value) if isinstance(value, dict | list) else lines(value)
    return jsonable(out)  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
def session_page(
    request: Request, session_id: Annotated[str, PathPart(max_length=64)]
) -> HTMLResponse:
    ctx = context(request)
    row = payloads.show_payload(ctx.settings, session_id)
    return render(request, "session.html", s=ctx.publish(session_facts(row)))
