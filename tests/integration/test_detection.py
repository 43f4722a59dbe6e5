"""Detection on the seed scenario: the campaign is found, dated and linked; alerts are kept
and delivered to a local webhook with a valid signature."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

from teiten.app.detect import list_alerts, run_detection
from teiten.app.ingest import ingest
from teiten.config import Settings
from teiten.simulate import SimulationResult


@pytest.fixture
def seed_store(settings: Settings, npa_small: SimulationResult) -> Settings:
    ingest(npa_small.pcaps, settings)
    return settings


def _days(a: str, b: str) -> int:
    return abs((dt.date.fromisoformat(a) - dt.date.fromisoformat(b)).days)


def test_seed_campaign(seed_store: Settings, npa_small: SimulationResult) -> None:
    truth = json.loads(npa_small.truth.read_text())
    result = run_detection(seed_store)
    surges = {a.port: a for a in result.found if a.kind == "surge"}
    for port, onset in truth["onsets"].items():
        assert port in surges, port
        assert _days(surges[port].onset, onset) <= 1
    assert surges["23/tcp"].segment == surges["2323/tcp"].segment == "domestic"
    assert not surges["23/tcp"].evidence["segments"]["foreign"]["rose"]
    campaigns = {surges[p].campaign for p in truth["onsets"]}
    assert len(campaigns) == 1 and None not in campaigns
    assert surges["23/tcp"].evidence["fingerprints"]["mirai"] > 0.5
    steady = {x["port"] for x in truth["no_surge"]} - set(truth["onsets"])
    assert not [a for a in result.found if a.port in steady]
    assert len(result.found) == len(truth["onsets"])


def test_rerun_updates_instead_of_duplicating(seed_store: Settings) -> None:
    first = run_detection(seed_store)
    assert {a.state for a in first.alerts} == {"new"}
    again = run_detection(seed_store)
    assert len(again.alerts) == len(first.alerts)
    assert {a.state for a in again.alerts} == {"ongoing"}
    rows = list_alerts(seed_store, since="2017-12-01")
    assert len(rows) == len(first.alerts)
    assert set(rows[0]) == {
        "id",
        "kind",
        "port",
        "segment",
        "onset",
        "last",
        "ratio",
        "score",
        "state",
        "campaign",
    }
    # a window that ends before the surges: nothing found, the stored ones end
    early = run_detection(seed_store, first="2017-10-01", last="2017-10-25")
    assert early.found == [] and {a.state for a in early.alerts} == {"ended"}


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(503)
        else:
            _Receiver.received.append((dict(self.headers), body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_delivery_signed_retried_once_each(seed_store: Settings) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Receiver.received, _Receiver.fail_first = [], 1
        url = f"http://127.0.0.1:{server.server_port}/hook"
        s = seed_store.replace(webhook_url=url, webhook_secret="k3y", webhook_retries=3)
        result = run_detection(s)
        assert all(d["delivered"] for d in result.deliveries)
        assert result.deliveries[0]["attempts"] == 2  # the 503 was retried
        assert len(_Receiver.received) == len(result.found) == 3
        for headers, body in _Receiver.received:
            ts = headers["X-Teiten-Timestamp"]
            signed = hmac.new(b"k3y", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
            assert headers["X-Teiten-Signature"] == "sha256=" + signed
            assert json.loads(body)["type"] == "teiten.alert"
            assert headers["Idempotency-Key"].startswith("teiten-alert-")
        run_detection(s)  # state changes new → ongoing: delivered again, once
        assert len(_Receiver.received) == 6
        run_detection(s)  # nothing changed: nothing sent
        assert len(_Receiver.received) == 6
    finally:
        server.shutdown()
        server.server_close()


def test_campaign_evidence_carries_the_back_check(seed_store: Settings) -> None:
    from pathlib import Path

    from teiten.app.backcheck import store_probes
    from teiten.backcheck.scans import read_scan

    scan = read_scan(Path(__file__).parent.parent / "data" / "scans" / "nmap.xml")
    store_probes(seed_store, scan.probes, "import nmap.xml")
    result = run_detection(seed_store)
    linked = [a for a in result.found if a.campaign]
    assert linked and all("52869 open" in a.evidence["backcheck"] for a in linked)


def _catalog(settings: Settings) -> tuple[bytes, bytes]:
    """The catalog and its write-ahead log, byte for byte."""
    path = settings.data_dir / "catalog.sqlite"
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes(), wal.read_bytes() if wal.exists() else b""


def test_finding_alerts_stores_and_sends_nothing(seed_store: Settings) -> None:
    from teiten.app.detect import find_alerts_in, stored_alerts_for

    before = _catalog(seed_store)
    detected = find_alerts_in(seed_store)
    assert _catalog(seed_store) == before and detected.window is not None
    first, last = detected.window
    assert stored_alerts_for(seed_store, first, last, "UTC") is None  # nothing was stored
    assert {a.evidence["tz"] for a in detected.found} == {"UTC"}
    result = run_detection(seed_store)  # teiten detect: the same alerts, now stored
    assert [(a.kind, a.port, a.onset) for a in result.found] == [
        (a.kind, a.port, a.onset) for a in detected.found
    ]
    inside = stored_alerts_for(seed_store, first, last, "UTC")
    assert inside is not None and len(inside) == len(result.alerts)
    assert stored_alerts_for(seed_store, first, last, "Asia/Tokyo") is None  # other days
    assert stored_alerts_for(seed_store, "2017-10-01", "2017-10-20", "UTC") is None
