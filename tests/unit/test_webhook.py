"""Webhook delivery against loopback HTTP servers (127.0.0.1 only): timestamped signatures a
receiver can verify, no signature without a secret, and redirects never followed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from teiten.analysis.alerts import Alert
from teiten.app.detect import webhook_of
from teiten.config import Settings, load_settings
from teiten.export.webhook import (
    UNSIGNED_WARNING,
    deliver_alerts,
    post,
    signature,
    verify_signature,
)
from teiten.store.alerts import AlertStore

NOW = 1_700_000_000


class _Server:
    """A loopback server that records what it receives and answers with ``status``."""

    def __init__(self, status: int = 204, location: str = "") -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[list[_Server]]:
    made: list[_Server] = []
    yield made
    for s in made:
        s.close()


def _alert(n: int = 1) -> Alert:
    return Alert(
        kind="surge",
        port="23/tcp",
        segment="domestic",
        onset="2017-11-01",
        detected="2017-11-02",
        last="2017-11-03",
        ratio=12.5,
        score=9.0,
        baseline=10.0,
        peak=125.0,
        ongoing=True,
        id=n,
    )


def _settings(url: str, secret: str, retries: int = 3) -> Settings:
    return load_settings(
        env={},
        overrides={"webhook_url": url, "webhook_secret": secret, "webhook_retries": retries},
    )


def _deliver(tmp_path: Path, settings: Settings, alerts: list[Alert]) -> list[dict[str, Any]]:
    store = AlertStore(tmp_path / "catalog.sqlite")
    try:
        return deliver_alerts(
            store, alerts, webhook_of(settings), "2017-11-03T00:00:00+00:00", sleep=lambda s: None,
            clock=lambda: NOW,
        )  # fmt: skip
    finally:
        store.close()


def test_signature_verifies_and_covers_the_timestamp(
    tmp_path: Path, servers: list[_Server]
) -> None:
    servers.append(_Server())
    records = _deliver(tmp_path, _settings(servers[0].url, "k3y"), [_alert()])
    assert records[0]["delivered"] and "warning" not in records[0]
    [(headers, body)] = servers[0].received
    ts, sig = headers["X-Teiten-Timestamp"], headers["X-Teiten-Signature"]
    assert ts == str(NOW) and json.loads(body)["type"] == "teiten.alert"
    assert verify_signature("k3y", ts, body, sig, now=NOW + 10)
    assert not verify_signature("wrong", ts, body, sig, now=NOW)
    # a stale request (a replay ten minutes later) is rejected, so is one from the future
    assert not verify_signature("k3y", ts, body, sig, now=NOW + 301)
    assert not verify_signature("k3y", ts, body, sig, now=NOW - 301)
    # the timestamp is signed: a fresh timestamp on an old signature does not verify
    assert not verify_signature("k3y", str(NOW + 600), body, sig, now=NOW + 600)
    tampered = body.replace(b"23/tcp", b"24/tcp")
    assert tampered != body and not verify_signature("k3y", ts, tampered, sig, now=NOW)


@pytest.mark.parametrize("ts", ["", "-5", "1e9", "１７００", " 1700000000", "9" * 40])
def test_malformed_timestamps_are_rejected(ts: str) -> None:
    body = b"{}"
    assert not verify_signature("k", ts, body, signature("k", ts, body), now=NOW)


def test_non_ascii_signature_header_is_rejected_not_raised() -> None:
    body = b"{}"
    good = signature("k", NOW, body)
    assert not verify_signature("k", str(NOW), body, good + "é", now=NOW)
    assert not verify_signature("k", str(NOW), body, "sha256=\u0660" * 3, now=NOW)


def test_no_secret_means_no_signature_header_and_a_warning(
    tmp_path: Path, servers: list[_Server]
) -> None:
    servers.append(_Server())
    records = _deliver(tmp_path, _settings(servers[0].url, ""), [_alert()])
    assert records[0]["delivered"] and records[0]["warning"] == UNSIGNED_WARNING
    [(headers, body)] = servers[0].received
    assert "X-Teiten-Signature" not in headers and headers["X-Teiten-Timestamp"] == str(NOW)
    assert not verify_signature("", headers["X-Teiten-Timestamp"], body, "sha256=", now=NOW)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_is_a_failed_delivery_never_followed(
    tmp_path: Path, servers: list[_Server], code: int
) -> None:
    target = _Server()
    servers.append(target)
    redirector = _Server(status=code, location=target.url)
    servers.append(redirector)
    records = _deliver(tmp_path, _settings(redirector.url, "k3y", retries=4), [_alert()])
    assert records[0] == {
        "key": records[0]["key"],
        "status": code,
        "attempts": 1,
        "delivered": False,
    }
    assert len(redirector.received) == 1 and target.received == []
    assert post(redirector.url, b"{}", {}) == code and target.received == []


def test_server_errors_are_retried_and_delivered_once(
    tmp_path: Path, servers: list[_Server]
) -> None:
    servers.append(_Server(status=503))
    records = _deliver(tmp_path, _settings(servers[0].url, "k3y", retries=3), [_alert()])
    assert records[0]["attempts"] == 3 and not records[0]["delivered"]
    assert len(servers[0].received) == 3
    ok = _Server()
    servers.append(ok)
    settings = _settings(ok.url, "k3y")
    assert _deliver(tmp_path, settings, [_alert(2)])[0]["delivered"]
    assert _deliver(tmp_path, settings, [_alert(2)]) == []  # remembered: not sent again
    assert len(ok.received) == 1


def test_documented_standalone_verifier_agrees() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), scope)  # the project's own docs
    verify = scope["verify"]
    body = b'{"type": "teiten.alert"}'
    sig = signature("k3y", NOW, body)
    assert verify("k3y", str(NOW), body, sig, now=NOW + 299)
    assert not verify("k3y", str(NOW), body, sig, now=NOW + 301)
    assert not verify("k3y", str(NOW), body + b" ", sig, now=NOW)
    assert not verify("", str(NOW), body, signature("", NOW, body), now=NOW)
    assert not verify("k3y", str(NOW), body, sig + "é", now=NOW)


def test_body_never_names_the_sensor(tmp_path: Path, servers: list[_Server]) -> None:
    from teiten.secrecy import Secrecy

    servers.append(_Server())
    notations = [
        "203.0.113.5",
        "203.000.113.005",
        "0xCB007105",
        "::ffff:cb00:7105",
        "http://[64:ff9b::cb00:7105]/x.sh",
        "203%2E0%2E113%2E5",
        "198.51.100.7",
    ]
    alert = _alert()
    alert.evidence = {"backcheck": " ".join(notations), "hosts": {notations[2]: 1}}
    settings = load_settings(
        env={},
        overrides={
            "webhook_url": servers[0].url,
            "webhook_secret": "k3y",
            "sensor_networks": "203.0.113.0/24",
        },
    )
    store = AlertStore(tmp_path / "catalog.sqlite")
    try:
        deliver_alerts(store, [alert], webhook_of(settings), "now", sleep=lambda s: None,
                       addresses=["192.0.2.10"])  # fmt: skip
        alert2 = _alert(2)
        alert2.evidence = {"note": "sensor 192.0.2.10 and 0xc000020a"}
        deliver_alerts(store, [alert2], webhook_of(settings), "now", sleep=lambda s: None,
                       addresses=["192.0.2.10"])  # fmt: skip
    finally:
        store.close()
    bodies = [body.decode() for _, body in servers[0].received]
    policy = Secrecy(["203.0.113.0/24"], ["192.0.2.10"])
    assert len(bodies) == 2 and all(policy.leaks(b) == [] for b in bodies)
    assert "198.51.100.7" in bodies[0]  # an attacker's address is not the sensor's
    for text in (*notations[:6], "192.0.2.10", "0xc000020a"):
        assert text not in "".join(bodies), text


def test_detect_warns_once_on_stderr_when_deliveries_are_unsigned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    import teiten.cli.detect
    from teiten.app.detect import DetectionResult
    from teiten.cli.main import cli

    deliveries = [
        {"key": f"k{n}", "status": 204, "attempts": 1, "delivered": True,
         "warning": UNSIGNED_WARNING}
        for n in range(3)
    ]  # fmt: skip
    result = DetectionResult([], [], 0, None, deliveries)
    monkeypatch.setattr(teiten.cli.detect, "run_detection", lambda *a, **k: result)
    r = CliRunner().invoke(cli, ["detect", "--format", "json"], env={"TEITEN_CONFIG": ""})
    assert r.exit_code == 0, r.output
    assert r.stderr.count(UNSIGNED_WARNING) == 1 and r.stderr.startswith("warning: ")
