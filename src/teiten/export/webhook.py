"""Delivery of alerts to a webhook: JSON POST, HMAC-SHA256 signature, retries, idempotency.

Each alert state change is delivered once: the idempotency key
``teiten-alert-{id}-{state}-{last}`` is sent as the ``Idempotency-Key`` header
and remembered in the catalog after a 2xx answer, so re-running detection does
not send it again. The body is signed with the ``webhook_secret`` setting:
``X-Teiten-Signature: sha256=<hex HMAC of the raw body>``. Failed attempts are
retried with exponential backoff (0.5 s, 1 s, 2 s, …) up to ``webhook_retries``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from teiten.analysis.alerts import Alert
from teiten.config import Settings
from teiten.store.alerts import AlertStore

TIMEOUT_S = 10.0
BACKOFF_S = 0.5


def signature(secret: str, body: bytes) -> str:
    """The ``X-Teiten-Signature`` header value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def idempotency_key(a: Alert) -> str:
    return f"teiten-alert-{a.id}-{a.state}-{a.last}"


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST once; returns the HTTP status (0 when no answer)."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        e.close()
        return int(e.code)
    except (urllib.error.URLError, TimeoutError, OSError):
        return 0


def deliver_alerts(
    store: AlertStore,
    alerts: list[Alert],
    settings: Settings,
    now: str,
    *,
    send: Callable[[str, bytes, dict[str, str]], int] = post,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """Deliver each alert not delivered yet in its current state; returns one record each."""
    out = []
    for a in alerts:
        key = idempotency_key(a)
        if store.delivered(key):
            continue
        body = json.dumps({"type": "teiten.alert", **a.to_dict()}, sort_keys=True).encode()
        headers = {
            "Idempotency-Key": key,
            "X-Teiten-Signature": signature(str(settings.webhook_secret), body),
        }
        status, attempts = 0, 0
        for attempts in range(1, int(settings.webhook_retries) + 1):
            status = send(str(settings.webhook_url), body, headers)
            if 200 <= status < 300 or (400 <= status < 500 and status not in (408, 429)):
                break
            if attempts < int(settings.webhook_retries):
                sleep(BACKOFF_S * 2 ** (attempts - 1))
        ok = 200 <= status < 300
        if ok:
            store.mark_delivered(key, now)
        out.append({"key": key, "status": status, "attempts": attempts, "delivered": ok})
    return out
