"""Delivery of alerts to a webhook: JSON POST, timestamped HMAC-SHA256 signature, retries,
idempotency, no redirects.

Each alert state change is delivered once: the idempotency key
``teiten-alert-{id}-{state}-{last}`` is sent as the ``Idempotency-Key`` header
and remembered in the catalog after a 2xx answer, so re-running detection does
not send it again.

Every attempt carries ``X-Teiten-Timestamp: <unix seconds>`` and, when the
``webhook_secret`` setting is not empty,
``X-Teiten-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``.
A receiver checks both with :func:`verify_signature` (docs/webhooks.md has a
standalone copy) and so rejects a replayed request once its timestamp is older
than the tolerance. With no secret there is no signature header at all, and
every delivery record carries a warning saying so.

The body is published output: every string in it passes through the one
secrecy policy (:class:`teiten.secrecy.Secrecy` over the ``sensor_networks``
setting and the sensor addresses the caller passes), so no notation of a
sensor address leaves in a webhook.

A redirect is never followed: a 3xx answer is a failed delivery and is not
retried. Other failures (no answer, 5xx, 408, 429) are retried with exponential
backoff (0.5 s, 1 s, 2 s, …) up to ``webhook_retries`` attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from teiten.analysis.alerts import Alert
from teiten.secrecy import Secrecy

TIMEOUT_S = 10.0
BACKOFF_S = 0.5
TOLERANCE_S = 300
UNSIGNED_WARNING = "webhook_secret is empty: the delivery is not signed"


@dataclass(frozen=True)
class Webhook:
    """Where and how alerts are delivered (the ``webhook_*`` settings)."""

    url: str
    secret: str = ""
    retries: int = 4
    sensor_networks: Sequence[str] = ()
    """The sensor's networks: no notation of them leaves in a body."""

    def __repr__(self) -> str:  # the secret and the URL (it may carry a token) stay out of logs
        return f"Webhook(url=…, secret={'(set)' if self.secret else '(empty)'})"


class Ledger(Protocol):
    """Remembers which deliveries succeeded (the catalog's ``deliveries`` table)."""

    def delivered(self, key: str) -> bool: ...
    def mark_delivered(self, key: str, now: str) -> None: ...


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Teiten-Signature`` value: HMAC-SHA256 over ``"<timestamp>."`` and the body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    now: float,
    tolerance: float = TOLERANCE_S,
) -> bool:
    """Whether a received request is authentic and fresh (for receivers; copy it freely).

    ``timestamp`` and ``header`` are the raw ``X-Teiten-Timestamp`` and
    ``X-Teiten-Signature`` values, ``body`` the raw request body, ``now`` the
    receiver's clock in unix seconds. False when the secret is empty, the
    timestamp is not a whole number of seconds within ``tolerance`` of ``now``,
    or the signature does not match.
    """
    if not secret or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if not header.isascii():  # compare_digest refuses non-ASCII text
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def idempotency_key(a: Alert) -> str:
    return f"teiten-alert-{a.id}-{a.state}-{a.last}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuses every redirect: urllib then reports the 3xx answer as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST once, never following a redirect; returns the HTTP status (0 when no answer)."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with _OPENER.open(req, timeout=TIMEOUT_S) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        e.close()
        return int(e.code)
    except (urllib.error.URLError, TimeoutError, OSError):
        return 0


def _final(status: int) -> bool:
    """Whether an answer ends the attempts: success, a redirect, or a client error."""
    return 200 <= status < 500 and status not in (408, 429)


def deliver_alerts(
    store: Ledger,
    alerts: list[Alert],
    hook: Webhook,
    now: str,
    *,
    send: Callable[[str, bytes, dict[str, str]], int] = post,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    addresses: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Deliver each alert not delivered yet in its current state; returns one record each.

    Bodies are redacted with the hook's sensor networks and ``addresses``.

    A record is ``{"key", "status", "attempts", "delivered"}``, plus ``"warning"``
    when the delivery went out unsigned (empty ``webhook_secret``).
    """
    secret = hook.secret
    secrecy = Secrecy(hook.sensor_networks, addresses)
    out = []
    for a in alerts:
        key = idempotency_key(a)
        if store.delivered(key):
            continue
        data = {"type": "teiten.alert", **secrecy.redact_data(a.to_dict())}
        body = json.dumps(data, sort_keys=True).encode()
        status, attempts = 0, 0
        for attempts in range(1, hook.retries + 1):
            timestamp = str(int(clock()))
            headers = {"Idempotency-Key": key, "X-Teiten-Timestamp": timestamp}
            if secret:
                headers["X-Teiten-Signature"] = signature(secret, timestamp, body)
            status = send(hook.url, body, headers)
            if _final(status):
                break
            if attempts < hook.retries:
                sleep(BACKOFF_S * 2 ** (attempts - 1))
        ok = 200 <= status < 300
        if ok:
            store.mark_delivered(key, now)
        record: dict[str, Any] = {
            "key": key,
            "status": status,
            "attempts": attempts,
            "delivered": ok,
        }
        if not secret:
            record["warning"] = UNSIGNED_WARNING
        out.append(record)
    return out
