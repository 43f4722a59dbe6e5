"""The server's guards: read only, loopback hosts, a token beyond loopback, strict headers,
and a request budget per client.

Every response carries a Content-Security-Policy that allows no script at all
(the pages draw their charts as server-rendered SVG), no frames, no form
target but the server itself, and no other origin: an attacker's bytes that
slip through escaping still cannot run.

Without a token the server only answers requests whose ``Host`` names a
loopback address, so a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from teiten.app.engine import EnginePool, pooled
from teiten.serve.context import ServeOptions, is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
READ_METHODS = frozenset({"GET", "HEAD"})
MAX_CLIENTS = 10_000
"""Clients whose request budget is remembered (the least recent are forgotten)."""


class Budget:
    """A token bucket per client: ``burst`` requests at once, ``rate`` per second after."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when ``client`` may make a request now, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return wait


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def authorized(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (bearer, or basic password)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.partition(":")[2].encode(), token.encode())
    return False


def _host_name(host: str) -> str:
    """``Host`` without its port (``[::1]:8080`` → ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: method, host, token and budget checks, then the security headers."""

    def __init__(self, app: ASGIApp, options: ServeOptions) -> None:
        self.app, self.options = app, options
        self.budget = Budget(options.rate, options.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _refuse(scope, send, *refusal)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        if scope["method"] not in READ_METHODS:
            return 405, "read only: GET and HEAD", [(b"allow", b"GET, HEAD")]
        token = self.options.token
        if not token and not is_loopback(_host_name(_header(scope, b"host"))):
            return 421, "this server answers only to a loopback Host (or start it with a token)", []
        if token and not authorized(_header(scope, b"authorization"), token):
            return 401, "a token is required", [(b"www-authenticate", b'Basic realm="teiten"')]
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.budget.take(str(client))
        if wait > 0:
            return 429, "too many requests", [(b"retry-after", str(max(1, round(wait))).encode())]
        return None


async def _refuse(
    scope: Scope, send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    """A refusal: JSON under ``/api/``, plain text elsewhere; never the request's text."""
    if str(scope.get("path", "")).startswith("/api/"):
        body = json.dumps({"error": message, "status": status}).encode()
        kind = b"application/json"
    else:
        body = f"{status}: {message}\n".encode()
        kind = b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + extra + [*HEADERS]}
    )
    await send({"type": "http.response.body", "body": body})


class Pooled:
    """ASGI middleware: the request's engines are leased from the server's pool."""

    def __init__(self, app: ASGIApp, pool: EnginePool) -> None:
        self.app, self.pool = app, pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with pooled(self.pool):
            await self.app(scope, receive, send)
