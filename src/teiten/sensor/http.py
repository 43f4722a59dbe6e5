"""``http``: answers any HTTP request with a bland page; the HTTP reading the other
web responders share.

Requests are read with bounded header lines and a bounded body (the
connection's byte limit); one request per connection (``Connection: close``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import formatdate

from teiten.sensor.responder import Conversation

MAX_HEADERS = 100
_EOL = (b"\n",)


@dataclass
class Request:
    """One HTTP request as read (attacker-controlled; only compared, never run)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    """Header names lowercased; a repeated header keeps its first value."""
    body: bytes = b""


async def read_request(conn: Conversation) -> Request | None:
    """The next request on the connection, or None when there is none to answer."""
    line = await conn.read_until(_EOL, conn.limits.max_line)
    while line in (b"\r\n", b"\n"):  # tolerate blank lines before the request
        line = await conn.read_until(_EOL, conn.limits.max_line)
    parts = line.decode("latin-1").split()
    if len(parts) < 2 or not parts[0].isalpha():
        return None
    req = Request(parts[0].upper(), parts[1])
    for _ in range(MAX_HEADERS):
        raw = await conn.read_until(_EOL, conn.limits.max_line)
        if not raw.strip():
            break
        name, colon, value = raw.decode("latin-1").partition(":")
        if colon:
            req.headers.setdefault(name.strip().lower(), value.strip())
    length = req.headers.get("content-length", "0").strip()
    n = int(length) if length.isdigit() and len(length) < 10 else 0
    if n and req.headers.get("expect", "").lower() == "100-continue":  # curl, for big bodies
        await conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    req.body = await conn.read_exactly(min(n, conn.limits.max_bytes))
    return req


def response(
    status: int, reason: str, body: bytes, *, server: str, ctype: str = "text/html",
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:  # fmt: skip
    """A complete HTTP/1.1 response that closes the connection."""
    head = [f"HTTP/1.1 {status} {reason}", f"Server: {server}",
            f"Date: {formatdate(usegmt=True)}", f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}", "Connection: close",
            *(f"{k}: {v}" for k, v in extra)]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head>"
    b"<body><h1>It works</h1><p>This is the default page.</p></body></html>\n"
)


class Http:
    """Any request gets the same plain page (a HEAD gets the headers only)."""

    kind = "http"
    server = "lighttpd/1.4.35"

    async def converse(self, conn: Conversation) -> None:
        req = await read_request(conn)
        if req is None:
            return
        reply = response(200, "OK", PAGE, server=self.server)
        await conn.write(reply[: reply.index(b"\r\n\r\n") + 4] if req.method == "HEAD" else reply)
