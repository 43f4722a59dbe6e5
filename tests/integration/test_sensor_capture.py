"""Passive capture on a veth pair the test creates: a SYN scan from a network namespace
reaches the store, and SIGTERM during a flood leaves only complete files.

Each test makes its own namespace and veth pair (198.18.x.0/24, the benchmarking range)
and removes them in a finalizer. The sensor captures on the host's end; the scanner runs
in the namespace and sends only to the host's end of the pair, so nothing leaves the
machine. Needs root (``ip netns``, packet sockets) and iproute2 (installed by
scripts/test); CI runs as root.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_sensor import WAIT, Running

from teiten.capture import open_source

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="network namespaces, packet sockets and switching user need root"
)

PORTS = (22, 23, 80, 443, 2323, 5555, 7547, 8080, 37215, 52869)

SCAN = r"""
import socket, struct, sys, time
src, dst, sport, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ports = [int(p) for p in sys.argv[5].split(",")]

def checksum(data):
    data += b"\0" * (len(data) % 2)
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF

def syn(dport, seq):
    a, b = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 1024, 0, 0)
    pseudo = a + b + struct.pack("!BBH", 0, 6, 20)
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 54321, 0, 64, 6, 0, a, b)
    return ip + tcp

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent, end = 0, time.monotonic() + seconds
while True:
    for p in ports:
        s.sendto(syn(p, sent), (dst, 0))
        sent += 1
    if time.monotonic() >= end:
        break
print(sent)
"""


@dataclass(frozen=True)
class Veth:
    """A namespace with one end of a veth pair; the other end stays on the host."""

    namespace: str
    host_if: str
    host_ip: str
    ns_ip: str

    def scan(self, seconds: float = 0.0, sport: int = 40123) -> subprocess.Popen[str]:
        """SYNs to every port of :data:`PORTS` from the namespace (once, or for ``seconds``)."""
        ports = ",".join(map(str, PORTS))
        return subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", SCAN,
             self.ns_ip, self.host_ip, str(sport), str(seconds), ports],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


_PAIRS = itertools.count()


@pytest.fixture
def veth() -> Iterator[Veth]:
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (ip; installed by scripts/test)")
    n = (os.getpid() % 10000) * 10 + next(_PAIRS) % 10  # a fresh name for every test
    net = f"198.18.{n % 250 + 1}"
    pair = Veth(f"teiten-test-{n}", f"tt{n}h", f"{net}.1", f"{net}.2")
    peer = f"tt{n}n"
    try:
        _ip("netns", "add", pair.namespace)
        _ip("link", "add", pair.host_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", pair.namespace)
        _ip("addr", "add", f"{pair.host_ip}/24", "dev", pair.host_if)
        _ip("link", "set", pair.host_if, "up")
        for args in (("addr", "add", f"{pair.ns_ip}/24", "dev", peer), ("link", "set", peer, "up"),
                     ("link", "set", "lo", "up")):  # fmt: skip
            _ip("netns", "exec", pair.namespace, "ip", *args)
        yield pair
    finally:
        subprocess.run(["ip", "link", "del", pair.host_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", pair.namespace], capture_output=True, timeout=30)


def _capture_config(veth: Veth, rotate: float) -> str:
    return (f'detect_interval = 0\nkeep_ingested_days = 1\n\n[capture]\n'
            f'interface = "{veth.host_if}"\nrotate_seconds = {rotate}\nring_mb = 8\n')  # fmt: skip


def _records(path: Path) -> int:
    """Records in a capture file, read by teiten; the file must be complete (no damage)."""
    source = open_source(path)
    n = sum(len(chunk) for chunk in source.chunks())
    assert not source.stats.skipped, (path.name, source.stats.skipped)
    return n


@pytest.mark.netns
def test_syn_scan_from_a_namespace_reaches_the_store(tmp_path: Path, veth: Veth) -> None:
    sensor = Running(tmp_path, extra=_capture_config(veth, 1), networks=f"{veth.host_ip}/32")
    try:
        assert any(f"capture: {veth.host_if}, 'dst net {veth.host_ip}/32'" in x
                   for x in sensor.lines)  # fmt: skip
        scan = veth.scan()
        out, _ = scan.communicate(timeout=60)
        assert scan.returncode == 0 and int(out) == len(PORTS)
        sql = ("SELECT src, dst, dst_port, src_port, tcp_flags, direction FROM packets "
               "WHERE proto = 'tcp' ORDER BY dst_port")  # fmt: skip
        rows, _ = sensor.until('"dst_port": 52869', "query", sql)
        counters = sensor.counters()
        status = subprocess.run(
            [sys.executable, "-m", "teiten", "sensor", "status", "--config",
             str(tmp_path / "sensor.toml"), "--format", "json"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
    finally:
        code, _ = sensor.stop()
    assert code == 0, sensor.lines
    [state] = json.loads(status.stdout)
    assert state["capture_running"] == 1 and state["capture_kernel_drops"] == 0
    assert state["capture_packets"] >= counters["teiten_sensor_capture_packets_total"]
    assert [tuple(r.values()) for r in rows] == [
        (veth.ns_ip, veth.host_ip, p, 40123, 2, "in") for p in PORTS
    ]  # the host's RSTs leave by the same veth; the default filter (dst net) keeps them out
    captured = counters["teiten_sensor_capture_packets_total"]
    assert captured >= len(PORTS)  # and the namespace's ARP requests for the host's address
    assert counters["teiten_sensor_capture_kernel_drops_total"] == 0
    assert counters["teiten_sensor_capture_files_total"] >= 1
    assert counters["teiten_sensor_captures_ingested_total"] >= 1
    ingested = sorted((sensor.spool / "captures" / "ingested").glob("lab-1-tt*.pcap"))
    written = sum(_records(p) for p in ingested)  # ARP may have come after the counters
    assert written >= captured
    assert sensor.teiten("query", "SELECT count(*) AS n FROM packets") == [{"n": written}]


@pytest.mark.netns
def test_sigterm_during_a_flood_leaves_only_complete_files(tmp_path: Path, veth: Veth) -> None:
    sensor = Running(tmp_path, extra=_capture_config(veth, 3600), networks=f"{veth.host_ip}/32")
    flood = veth.scan(seconds=30)
    try:
        deadline = time.monotonic() + WAIT
        inbox = sensor.spool / "captures"
        while (sensor.counters()["teiten_sensor_capture_packets_total"] < 20_000
               or not list(inbox.glob(".*.part"))):  # fmt: skip
            assert time.monotonic() < deadline, ("the flood did not reach the file", sensor.lines)
            time.sleep(0.1)
        early = list(inbox.glob("*.pcap"))  # rotation is an hour away: only the .part file
        assert not early, (early, sensor.lines)
        code, _ = sensor.stop()  # SIGTERM while the flood goes on
    finally:
        flood.send_signal(signal.SIGKILL)
        flood.communicate(timeout=30)
        sensor.stop()
    assert code == 0, sensor.lines
    inbox = sensor.spool / "captures"
    left = sorted(p.name for p in inbox.rglob("*"))
    assert not [x for x in left if x.startswith(".")], (left, sensor.lines)
    files = list((inbox / "ingested").glob("*.pcap"))  # published at SIGTERM, then ingested
    assert len(files) == 1, (left, sensor.lines)
    records = _records(files[0])
    path = files[0]
    line = f"sensor: capture: {path.name} ({records} packets"
    for _ in range(50):  # the test's reader thread may still be taking the last lines
        if any(x.startswith(line) for x in sensor.lines):
            break
        time.sleep(0.1)
    assert any(x.startswith(line) for x in sensor.lines), (line, sensor.lines[-6:])
    assert records >= 20_000
    stored = sensor.teiten("query", "SELECT count(*) AS n FROM packets")
    assert stored == [{"n": records}], sensor.lines


@pytest.mark.netns
def test_capture_keeps_running_after_dropping_to_nobody(veth: Veth) -> None:
    """The packet socket is opened as root, then the sensor becomes nobody and captures on."""
    nobody = pwd.getpwnam("nobody")
    tmp = Path(tempfile.mkdtemp(prefix="teiten-capture-priv-"))  # nobody can enter this one
    try:
        os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
        extra = 'user = "nobody"\n' + _capture_config(veth, 1)
        sensor = Running(tmp, extra=extra, networks=f"{veth.host_ip}/32")
        try:
            status = Path(f"/proc/{sensor.proc.pid}/status").read_text()
            assert f"Uid:\t{nobody.pw_uid}\t" in status
            veth.scan().communicate(timeout=60)
            sql = "SELECT dst_port FROM packets WHERE proto = 'tcp' ORDER BY dst_port"
            rows, _ = sensor.until('"dst_port": 52869', "query", sql)
        finally:
            code, _ = sensor.stop()
        assert code == 0, sensor.lines
        assert [r["dst_port"] for r in rows] == list(PORTS)
        [first, *_] = sorted((tmp / "spool" / "captures" / "ingested").glob("*.pcap"))
        assert first.stat().st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sensor(tmp: Path, capture: str) -> list[str]:
    (tmp / "sensor.toml").write_text(
        '[sensor]\nname = "t"\ndata = "d"\nspool = "s"\nnetworks = ["192.0.2.0/24"]\n\n'
        f'[capture]\n{capture}\n\n[[responder]]\nkind = "http"\nlisten = ["127.0.0.1:1"]\n'
    )
    return [sys.executable, "-m", "teiten", "sensor"]


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    errors = [x for x in done.stderr.splitlines() if not x.startswith("warning:")]
    assert done.returncode == 1 and len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return errors[0]


def test_bad_filters_and_interfaces_are_one_line_at_check_and_run(tmp_path: Path) -> None:
    for capture, message in [
        ('interface = "lo"\nfilter = "tcp port 99999"', "capture.filter 'tcp port 99999': "),
        ('interface = "lo"\nfilter = "dst net 192.0.2.0/24 and ("', "capture.filter "),
        ('interface = "no-such-if0"', "capture.interface 'no-such-if0': no such network"),
    ]:
        teiten = _sensor(tmp_path, capture)
        for command in ("check", "run"):
            done = subprocess.run([*teiten, command, "--config", "sensor.toml"], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            assert message in _one_line(done), (command, done.stderr)


PR_CAPBSET_DROP, CAP_NET_RAW = 24, 13


def test_without_cap_net_raw_run_is_one_line(tmp_path: Path) -> None:
    teiten = _sensor(tmp_path, 'interface = "lo"')

    def drop_net_raw() -> None:  # root without CAP_NET_RAW after exec (bounding set)
        if ctypes.CDLL(None, use_errno=True).prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0):
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    done = subprocess.run([*teiten, "run", "--config", "sensor.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=drop_net_raw)  # fmt: skip
    assert "capture: opening a packet socket needs CAP_NET_RAW" in _one_line(done)


@pytest.mark.netns
def test_a_file_left_by_kill_9_is_finished_and_stored_at_the_next_start(
    tmp_path: Path, veth: Veth
) -> None:
    sensor = Running(tmp_path, extra=_capture_config(veth, 3600), networks=f"{veth.host_ip}/32")
    flood = veth.scan(seconds=30)
    inbox = sensor.spool / "captures"
    try:
        deadline = time.monotonic() + WAIT
        while not [p for p in inbox.glob(".*.part") if p.stat().st_size > 100_000]:
            assert time.monotonic() < deadline, "the flood did not reach the capture file"
            time.sleep(0.1)
        sensor.proc.kill()  # no chance to publish: the .part file stays, maybe cut mid-record
        sensor.proc.communicate(timeout=60)
    finally:
        flood.send_signal(signal.SIGKILL)
        flood.communicate(timeout=30)
    [part] = inbox.glob(".*.part")
    again = Running(tmp_path, extra=_capture_config(veth, 3600), networks=f"{veth.host_ip}/32")
    try:
        name = part.name[1 : -len(".part")]
        assert any(f"{name}: finished a capture file a previous run left" in x for x in again.lines)
        finished = inbox / "ingested" / name
        deadline = time.monotonic() + 3 * WAIT
        while not finished.exists():  # published at the start, ingested by the first round
            assert time.monotonic() < deadline, again.lines
            time.sleep(0.2)
        rows = again.teiten("query", "SELECT count(*) AS n FROM packets")
    finally:
        code, _ = again.stop()
    assert code == 0, again.lines
    assert rows == [{"n": _records(finished)}] and rows[0]["n"] > 1000
    assert not list(inbox.glob(".*"))
