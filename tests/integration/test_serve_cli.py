"""``teiten serve`` as an operator runs it: refusals in one line, a real server on loopback
that answers and stops cleanly on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from teiten.cli.main import cli
from teiten.config import Settings

TEITEN = [sys.executable, "-m", "teiten"]


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "0.0.0.0"], "is not loopback: give a token"),
        (["--host", "192.0.2.1", "--token", "short"], "at least 16 characters"),
        (["--port", "70000"], "70000 is not in the range"),
        (["--bogus"], "No such option '--bogus'"),
    ],
)
def test_refusals(seed_store: Settings, args: list[str], says: str) -> None:
    code, out = _run("serve", "--data", str(seed_store.data_dir), *args, env={})
    assert code == 1 and says in out and "Traceback" not in out


def test_no_store(tmp_path: Path) -> None:
    code, out = _run("serve", "--data", str(tmp_path / "none"))
    assert code == 1 and "no store in" in out and len(out.strip().splitlines()) == 1


def test_port_in_use(seed_store: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, out = _run("serve", "--data", str(seed_store.data_dir), "--port", str(port))
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in out


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_real_server_answers_and_stops_on_sigterm(seed_store: Settings) -> None:
    token = "a-token-of-some-length-" + "x" * 8
    env = {**os.environ, "TEITEN_SERVE_TOKEN": token}
    proc = subprocess.Popen(
        [*TEITEN, "serve", "--data", str(seed_store.data_dir), "--port", "0",
         "--tz", "Asia/Tokyo"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/ \(read only, token required", line)
        assert found, line
        port = int(found.group(1))
        status, _ = _get(port, "/api/v1/alerts")
        assert status == 401
        status, body = _get(port, "/api/v1/alerts", {"Authorization": f"Bearer {token}"})
        assert status == 200 and any(a["port"] == "52869/tcp" for a in json.loads(body))
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 30
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
