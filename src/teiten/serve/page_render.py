"""How a dashboard page is rendered: one Jinja2 environment, autoescape always on.

Every value a template shows comes from the sensor or from a request, so the
environment escapes every expression (``autoescape=True`` for all templates,
whatever their name) and offers no filter that marks data safe. Bytes and text
that may hold control characters go through :func:`shown` first, which writes
them the way :func:`teiten.escape.terminal` does (controls visible as ``\\xNN``).
Links built from data are quoted by :func:`quoted` (one path segment, no scheme
can survive), so no page links anywhere but the server itself.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from teiten.escape import terminal

TEMPLATES = Path(__file__).parent / "templates"
LANGS = ("ja", "en")


def shown(value: object, limit: int = 4096) -> str:
    """``value`` as visible text: control and invisible characters escaped, at most ``limit``."""
    if value is None:
        return ""
    return str(terminal(value, limit))


def quoted(value: object) -> str:
    """``value`` as one URL path segment: every character but letters, digits and ``-._~`` quoted.

    A ``/``, ``:`` or ``?`` in data becomes ``%2F``, ``%3A``, ``%3F``: a link
    built as ``/sources/{{ a|q }}`` stays a path of this server.
    """
    return quote(str(value), safe="")


def own_path(path: str) -> str:
    """``path`` as a link that stays on this server: one leading slash, the rest quoted.

    ``//evil.example/x`` would be a link to another host; it becomes ``/evil.example/x``.
    """
    return "/" + quote(path.lstrip("/\\"), safe="/")


def number(value: object) -> str:
    """An integer with thousands separators (``12,345``); other values as text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return shown(value)


def lines(value: object, limit: int = 200_000) -> list[str]:
    """Text or bytes as escaped lines: split at LF, each line like :func:`shown` (a CR shows
    as ``\\x0d``, undecodable bytes as ``\\xNN``), at most ``limit`` characters in all."""
    parts: list[object]
    if value is None:
        return []
    if isinstance(value, bytes | bytearray | memoryview):
        parts = list(bytes(value).split(b"\n")) if len(value) else []
    else:
        parts = list(str(value).split("\n")) if str(value) else []
    out: list[str] = []
    left = limit
    for part in parts:
        if left <= 0:
            out.append(f"…(+{len(parts) - len(out)} lines)")
            break
        text = shown(part, left)
        left -= len(text)
        out.append(text)
    return out


def when(value: object) -> str:
    """An ISO time as ``2017-11-03 01:16:00`` (the page states the zone); other text as is."""
    text = shown(value, 64)
    if len(text) >= 19 and text[10] == "T" and text[4] == "-":
        return text[:10] + " " + text[11:19]
    return text


def percent(value: object) -> str:
    """A share 0–1 as ``12.3%`` (empty when unknown)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return f"{float(value) * 100:.1f}%"


def link(lang: str, *segments: object, **params: object) -> str:
    """A link on this server: ``/seg/seg?k=v&lang=…``, every segment and value quoted.

    The only way a template builds a URL from data, so none can leave the
    server or carry a scheme (``javascript:`` becomes ``javascript%3A``).
    """
    path = "/" + "/".join(quoted(s) for s in segments)
    query = [(k, str(v)) for k, v in params.items() if v not in (None, "")]
    query.append(("lang", lang))
    return f"{path}?{urlencode(query)}"


def port_link(lang: str, port: object, **params: object) -> str:
    """``52869/tcp`` → the link of its port page (``/ports/52869/tcp``)."""
    number, _, proto = str(port).partition("/")
    return link(lang, "ports", number, proto or "tcp", **params)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(shown=shown, q=quoted, num=number, lines=lines, pct=percent, when=when)
    return env


ENV = _environment()


def language(request: Request) -> str:
    """The page language: ``?lang=ja|en``, else Japanese (the seed's analysts read Japanese)."""
    lang = request.query_params.get("lang", "")
    return lang if lang in LANGS else "ja"


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` filled with ``values`` (already published), as an HTML response.

    Templates get ``lang``, ``t(ja, en)`` (the label in the page language),
    ``link(*segments, **params)`` and ``port_link(port)`` besides ``values``.
    """
    lang = language(request)
    page = ENV.get_template(template).render(
        lang=lang,
        path=own_path(request.url.path),
        query=_other_lang_query(request, lang),
        t=lambda ja, en: ja if lang == "ja" else en,
        link=functools.partial(link, lang),
        port_link=functools.partial(port_link, lang),
        **values,
    )
    return HTMLResponse(page, status_code=status)


def _other_lang_query(request: Request, lang: str) -> str:
    """The query string of this page in the other language (for the switch in the header)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", "en" if lang == "ja" else "ja"))
    return urlencode(params)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page: the status and one escaped line (the message may quote the request)."""
    return render(
        request, "error.html", status=status, status_code=status, message=shown(message, 500)
    )
