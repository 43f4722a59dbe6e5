"""``teiten sensor run`` on loopback: exploits and logins reach the store, SIGTERM loses
nothing, floods and garbage leave it answering. Every connection goes to 127.0.0.1."""

from __future__ import annotations

import json
import os
import pwd
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teiten.simulate.payloads import (
    REALTEK_VARIANTS,
    huawei_request,
    realtek_request,
    telnet_script,
)

HOST = "127.0.0.1"
WAIT = 20.0
"""Seconds a test waits for the sensor before failing: a bound against hangs, not a
speed target (the contract's "within 10 s" is measured in docs/sensor.md, not asserted)."""


_GIVEN: set[int] = set()
"""Ports handed out already: the OS may offer a just-closed port again, and one sensor's
responders and metrics must not get the same one (a CI run failed so)."""


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class Running:
    """A ``teiten sensor run`` subprocess and where its responders listen."""

    def __init__(
        self, tmp: Path, interval: float = 1.0, extra: str = "", networks: str = "192.0.2.0/24"
    ) -> None:
        self.data = tmp / "data"
        kinds = ("upnp-realtek", "huawei-hg532", "telnet", "blackhole", "http")
        self.ports = {k: free_port() for k in kinds}
        self.metrics = free_port()
        blocks = "".join(
            f'[[responder]]\nkind = "{k}"\nlisten = ["{HOST}:{p}"]\n\n'
            for k, p in self.ports.items()
        )
        config = tmp / "sensor.toml"
        config.write_text(
            f'[sensor]\nname = "lab-1"\ndata = "data"\nspool = "spool"\n'
            f'networks = ["{networks}"]\ningest_interval = {interval}\n'
            f'metrics = "{HOST}:{self.metrics}"\n{extra}\n{blocks}'
        )
        self.spool = tmp / "spool"
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "teiten", "sensor", "run", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(60):
            self.stop()
            pytest.fail("sensor did not start: " + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.strip() == "sensor: ready":
                self.ready.set()

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and stdout once it exits (with every stderr line
        in :attr:`lines`: stderr is left to the reader thread alone)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stdout is not None
        self.proc.wait(timeout=120)  # stdout holds one summary line: it never fills the pipe
        out = "" if self.proc.stdout.closed else self.proc.stdout.read()
        self.reader.join(timeout=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not self.reader.is_alive():
                stream.close()
        return self.proc.returncode, out

    def teiten(self, *args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "teiten", *args, "--data", str(self.data), "--format", "json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else None

    def counters(self) -> dict[str, float]:
        """The sensor's metrics (``GET /metrics``) by name."""
        text = exchange(self.metrics, b"GET /metrics HTTP/1.1\r\n\r\n").decode()
        assert text.startswith("HTTP/1.1 200 OK") and "text/plain; version=0.0.4" in text
        body = text.split("\r\n\r\n", 1)[1]
        lines = (x.rsplit(" ", 1) for x in body.splitlines() if x[:1] != "#")
        return {k: float(v) for k, v in lines}

    def until(self, what: str, *args: str) -> tuple[Any, float]:
        """The first JSON answer of a command that contains ``what``, and the seconds it took."""
        start = time.monotonic()
        while True:
            rows = self.teiten(*args)
            if rows and what in json.dumps(rows):
                return rows, time.monotonic() - start
            if time.monotonic() - start > 3 * WAIT:
                pytest.fail(f"{what!r} not in {args} after {3 * WAIT:g}s: {rows}")
            time.sleep(0.3)


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` and read until the server closes."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
        return bytes(out)


def telnet_login(port: int) -> None:
    """Play the simulator's successful Mirai-style login (variant 1) as the client."""
    script, _ = telnet_script(np.random.default_rng(7), 1)
    with socket.create_connection((HOST, port), timeout=10) as s:
        for from_client, data in script:
            if from_client:
                s.sendall(data)
                time.sleep(0.05)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass


@pytest.fixture(scope="module")
def sensor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    run = Running(tmp_path_factory.mktemp("sensor"))
    yield run
    run.stop()


def test_soap_exploit_reaches_payloads_classified(sensor: Running) -> None:
    request, facts = realtek_request(np.random.default_rng(1), f"{HOST}:52869", 0)
    reply = exchange(sensor.ports["upnp-realtek"], request)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Server: miniupnpd/1.0 UPnP/1.0" in reply and b"AddPortMappingResponse" in reply
    url = facts["indicators"]["urls"][0]
    rows, _ = sensor.until(url, "payloads", "--cve", "CVE-2014-8361")
    assert any("CVE-2014-8361" in r["cves"] and url in json.dumps(r) for r in rows)


def test_every_simulated_exploit_variant_is_classified(sensor: Running) -> None:
    rng = np.random.default_rng(5)
    sent = []
    for variant in range(len(REALTEK_VARIANTS)):
        request, facts = realtek_request(rng, f"{HOST}:52869", variant)
        assert exchange(sensor.ports["upnp-realtek"], request).startswith(b"HTTP/1.1 200 OK")
        sent.append(facts)
    request, facts = huawei_request(rng, f"{HOST}:37215", 0)
    assert b"UpgradeResponse" in exchange(sensor.ports["huawei-hg532"], request)
    sent.append(facts)
    rows, _ = sensor.until(facts["indicators"]["urls"][0], "payloads", "--limit", "1000")
    for f in sent:
        cve, url = f["cves"][0], f["indicators"]["urls"][0]
        assert any(cve in r["cves"] and url in json.dumps(r) for r in rows), (cve, url)


def test_telnet_login_recovered(sensor: Running) -> None:
    telnet_login(sensor.ports["telnet"])
    _, facts = telnet_script(np.random.default_rng(7), 1)
    user = facts["logins"][-1]["username"]
    sql = "SELECT username, password, commands FROM logins"
    rows, _ = sensor.until(user, "query", sql)
    pairs = {(r["username"], r["password"]) for r in rows}
    assert {(x["username"], x["password"]) for x in facts["logins"]} <= pairs


def test_description_and_http_pages(sensor: Running) -> None:
    for path in ("/picsdesc.xml", "/rootDesc.xml", "/wanipcn.xml"):
        reply = exchange(sensor.ports["upnp-realtek"], f"GET {path} HTTP/1.1\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 200 OK") and b"miniupnpd/1.0" in reply
    assert b"Realtek" in exchange(
        sensor.ports["upnp-realtek"], b"GET /picsdesc.xml HTTP/1.0\r\n\r\n"
    )
    page = exchange(sensor.ports["http"], b"GET /cgi-bin/x?a=$(id) HTTP/1.1\r\nHost: x\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 200 OK") and b"It works" in page


def test_floods_and_garbage_keep_it_answering(sensor: Running) -> None:
    port = sensor.ports["http"]
    idle = []
    for n in range(200):  # slowloris from 200 addresses: half a request line, then nothing
        s = socket.create_connection(
            (HOST, port), timeout=10, source_address=(f"127.0.1.{n + 1}", 0)
        )
        s.sendall(b"GET / HT")
        idle.append(s)
    crowd = [socket.create_connection((HOST, port), source_address=("127.0.2.1", 0))
             for _ in range(40)]  # fmt: skip
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + WAIT
    while len(closed) < 40 - 32 and time.monotonic() < deadline:  # over max_per_source (32)
        readable, _, _ = select.select([c for c in crowd if c not in closed], [], [], 1.0)
        closed.update(readable)
    assert len(closed) == 40 - 32
    answered = 0
    for c in crowd:
        if c not in closed:
            c.settimeout(10)
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answered += c.recv(65536).startswith(b"HTTP/1.1 200 OK")
    assert answered == 32
    garbage = np.random.default_rng(3).bytes(1 << 20)
    with socket.create_connection((HOST, sensor.ports["blackhole"]), timeout=10) as g:
        try:  # the sensor closes at its byte limit (64 KiB): a reset or an end of stream
            for i in range(0, len(garbage), 1 << 14):
                g.sendall(garbage[i : i + (1 << 14)])
            end = g.recv(1)
        except ConnectionError:
            end = b""
    assert end == b""
    # Still answering, while the slow clients hold their connections.
    reply = exchange(sensor.ports["upnp-realtek"], b"GET /rootDesc.xml HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK")
    for s in idle + crowd:
        s.close()
    assert sensor.proc.poll() is None


def test_metrics_endpoint_counts(sensor: Running) -> None:
    before = sensor.counters()
    exchange(sensor.ports["blackhole"], b"ping")
    after = sensor.counters()
    assert after["teiten_sensor_connections_total"] == before["teiten_sensor_connections_total"] + 1
    assert after["teiten_sensor_events_total"] == before["teiten_sensor_events_total"] + 1
    assert exchange(sensor.metrics, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 404")


def test_sigterm_loses_no_event(tmp_path: Path) -> None:
    run = Running(tmp_path, interval=3600.0)  # no ingest before the signal
    sent = 25
    for n in range(sent):
        exchange(run.ports["blackhole"], f"hello {n}\r\n".encode())
    held = [socket.create_connection((HOST, run.ports["telnet"]))]  # still open at SIGTERM
    held[0].sendall(b"root\r\n")
    for n in range(30):  # and 30 more, mid-conversation, from 30 addresses
        s = socket.create_connection(
            (HOST, run.ports["http"]), source_address=(f"127.0.3.{n + 1}", 0)
        )
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    deadline = time.monotonic() + WAIT
    while run.counters()["teiten_sensor_open_connections"] < 31:  # all accepted
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code, out = run.stop()
    for s in held:
        s.close()
    assert code == 0, run.lines
    assert f"{sent + 31} events recorded" in out
    assert run.teiten("query", "SELECT count(*) AS n FROM sessions") == [{"n": sent + 31}]
    events = run.spool / "events"
    assert not list(events.glob(".*.tmp")) and not list(events.glob("*.jsonl"))
    assert len(list((events / "ingested").glob("*.jsonl"))) == 1


def test_capture_inbox_surge_detected_on_schedule_and_status(tmp_path: Path) -> None:
    """A simulated surge renamed into spool/captures becomes a stored alert, no ``detect`` run."""
    from teiten.simulate import simulate

    run = Running(tmp_path, extra="detect_interval = 1", networks="203.0.113.0/24")
    try:
        sim = simulate("npa-2017", tmp_path / "sim", scale=0.02)
        inbox = run.spool / "captures"
        inbox.mkdir(parents=True, exist_ok=True)
        staged = inbox / ".npa-2017.pcap.tmp"  # written beside, then renamed into place
        staged.write_bytes(sim.pcap.read_bytes())
        staged.rename(inbox / "npa-2017.pcap")
        rows, _ = run.until("surge", "alerts")
        assert any(r["kind"] == "surge" for r in rows)
        assert (inbox / "ingested" / "npa-2017.pcap").exists()
        assert not (inbox / "npa-2017.pcap").exists()
        deadline = time.monotonic() + WAIT  # the alert is stored a moment before the counters
        while True:
            status = subprocess.run(
                [sys.executable, "-m", "teiten", "sensor", "status", "--config",
                 str(tmp_path / "sensor.toml"), "--format", "json"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            live = json.loads(status.stdout)[0]
            if live["last_detection"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert live["running"] is True and live["source"] == "metrics"
        assert live["alerts_open"] >= 1 and live["files_ingested"] >= 1
        assert live["last_detection"] and live["captures_waiting"] == 0
    finally:
        code, out = run.stop()
    assert code == 0, run.lines
    assert "file(s) ingested" in out
    assert any("detection: " in line and "open" in line for line in run.lines)
    assert not any("Traceback" in line for line in run.lines)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_drops_to_nobody_after_binding_a_low_port() -> None:
    """As root with ``user = "nobody"``: port 81 is bound, then the process is nobody."""
    nobody = pwd.getpwnam("nobody")
    # pytest's tmp_path lives in a root-only folder nobody cannot enter; this one is its own.
    tmp = Path(tempfile.mkdtemp(prefix="teiten-sensor-priv-"))
    try:
        os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
        low = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        run = Running(
            tmp, extra=f'user = "nobody"\n\n[[responder]]\nkind = "http"\nlisten = ["{low}:81"]\n'
        )
        try:
            status = Path(f"/proc/{run.proc.pid}/status").read_text()
            uids = next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1:]
            gids = next(x for x in status.splitlines() if x.startswith("Gid:")).split()[1:]
            groups = next(x for x in status.splitlines() if x.startswith("Groups:")).split()[1:]
            assert uids == [str(nobody.pw_uid)] * 4 and gids == [str(nobody.pw_gid)] * 4
            assert groups == []
            with socket.create_connection((low, 81), timeout=10) as s:
                s.sendall(b"GET /priv-check HTTP/1.0\r\n\r\n")
                assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
            rows, _ = run.until("81", "query", "SELECT dst_port FROM sessions")
            assert {"dst_port": 81} in rows
        finally:
            code, out = run.stop()
        assert code == 0, run.lines
        assert "1 events recorded" in out
        assert any("running as nobody" in line for line in run.lines)
        assert (tmp / "spool" / "events" / "ingested").stat().st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_unwritable_spool_after_dropping_is_one_line(tmp_path: Path) -> None:
    """tmp_path stays root's: as nobody the spool cannot be written, so the sensor refuses."""
    config = tmp_path / "sensor.toml"
    config.write_text(
        f'[sensor]\nname = "lab-1"\ndata = "data"\nspool = "spool"\nuser = "nobody"\n'
        f'[[responder]]\nkind = "http"\nlisten = ["{HOST}:{free_port()}"]\n'
    )
    (tmp_path / "spool").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "teiten", "sensor", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "not writable by uid" in last and "Traceback" not in done.stderr


RSS_CAP = 300 << 20
"""Resident memory the sensor must stay under during the load tests (bytes; VmHWM, the peak)."""
IDLE = 5000
LOAD = (
    f"max_connections = {IDLE + 500}\nmax_per_source = {IDLE + 500}\n"
    f"max_bytes = {2 << 20}\nidle_timeout = 120\n"
)
"""Limits raised for the load tests: 5,000 connections from one address, 1 MiB per client."""


def peak_rss(pid: int) -> int:
    """The highest resident set size of a process so far (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture
def many_files() -> Iterator[None]:
    """Raise this process's open-file limit (inherited by the sensor) for 5,000 connections."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + 1000
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need} needed for {IDLE} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def garbage(port: int, n: int, size: int = 1 << 20) -> int:
    """Send ``size`` random bytes on one connection and read until the sensor closes it."""
    data = np.random.default_rng(n).bytes(size)
    try:  # refused or reset once the sensor stops (the SIGTERM test): nothing sent
        with socket.create_connection((HOST, port), timeout=WAIT) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
    except (ConnectionError, OSError):  # also ENOTCONN when the shutdown comes too late
        return 0
    return size


def test_5000_idle_connections_a_new_client_is_answered(tmp_path: Path, many_files: None) -> None:
    run = Running(tmp_path, interval=3600.0, extra=LOAD)
    idle = []
    try:
        for _ in range(IDLE):
            s = socket.create_connection((HOST, run.ports["telnet"]), timeout=WAIT)
            idle.append(s)
        deadline = time.monotonic() + WAIT
        while run.counters()["teiten_sensor_open_connections"] < IDLE:
            assert time.monotonic() < deadline, run.counters()
            time.sleep(0.1)
        reply = exchange(run.ports["upnp-realtek"], b"GET /rootDesc.xml HTTP/1.1\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 OK")
        assert run.counters()["teiten_sensor_open_connections"] >= IDLE
        rss = peak_rss(run.proc.pid)
        assert rss < RSS_CAP, f"peak RSS {rss >> 20} MiB with {IDLE} idle connections"
    finally:
        for s in idle:
            s.close()
        code, out = run.stop()
    assert code == 0, run.lines
    assert f"{IDLE + 1:,} events recorded" in out and "dropped: none" in out


def test_100_mb_of_garbage_keeps_it_answering(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    run = Running(tmp_path, interval=3600.0, extra=LOAD)
    try:
        with ThreadPoolExecutor(16) as pool:  # 100 connections × 1 MiB, 16 at a time
            sent = pool.map(garbage, [run.ports["blackhole"]] * 100, range(100))
            answered = 0
            for _ in range(5):  # while the garbage flows
                reply = exchange(run.ports["http"], b"GET / HTTP/1.0\r\n\r\n")
                answered += reply.startswith(b"HTTP/1.1 200 OK")
            total = sum(sent)
        assert answered == 5
        assert total == 100 << 20
        metrics = run.counters()
        assert metrics["teiten_sensor_client_bytes_total"] >= 100 << 20
        rss = peak_rss(run.proc.pid)
        assert rss < RSS_CAP, f"peak RSS {rss >> 20} MiB after 100 MiB of garbage"
    finally:
        code, out = run.stop()
    assert code == 0, run.lines
    assert "105 events recorded" in out


def test_sigterm_during_garbage_load_loses_no_recorded_event(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    run = Running(tmp_path, interval=3600.0, extra=LOAD)
    with ThreadPoolExecutor(16) as pool:
        sent = [pool.submit(garbage, run.ports["blackhole"], n) for n in range(100)]
        deadline = time.monotonic() + WAIT
        while run.counters()["teiten_sensor_events_total"] < 20:  # well under way
            assert time.monotonic() < deadline
            time.sleep(0.05)
        live = run.counters()["teiten_sensor_events_total"]
        code, out = run.stop()
        for f in sent:  # connections the sensor ended or never accepted: no hang, no error
            f.result()
    assert code == 0, run.lines
    recorded = int(out.split(" events recorded")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert recorded >= live
    assert run.teiten("query", "SELECT count(*) AS n FROM sessions") == [{"n": recorded}]
    ends = run.teiten("query", "SELECT count(*) AS n FROM sessions WHERE client_total > 0")
    assert ends and ends[0]["n"] >= live
