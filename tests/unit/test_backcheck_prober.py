"""The prober's rules, with its two socket functions replaced: nothing here opens a socket.

Refusals happen before any connection, pacing holds, and every send is counted
and logged.
"""

from __future__ import annotations

import asyncio
import doctest
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from teiten.backcheck import prober
from teiten.backcheck.prober import OFF, ProbeConfig, Wire, allow_networks, plan, run_backcheck
from teiten.backcheck.probes import Reading
from teiten.errors import ConfigError

ON = ProbeConfig(enabled=True, allow=("127.0.0.0/8",), rate=1000, interval=0, ssdp_port=None)
REPLY = b"HTTP/1.1 404 Not Found\r\nServer: miniupnpd/1.0\r\nContent-Length: 0\r\n\r\n"


class FakeWriter:
    """Enough of a StreamWriter for the prober; records what is written."""

    def __init__(self, sent: list[bytes], on_close: Callable[[], None]) -> None:
        self.sent, self.on_close, self.transport = sent, on_close, self

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.on_close()

    async def wait_closed(self) -> None:
        return None

    def abort(self) -> None:
        return None


class Net:
    """Stand-ins for prober.open_tcp and prober.exchange_udp that record every call."""

    def __init__(self, answer: bytes = REPLY, udp: Reading | None = None) -> None:
        self.answer, self.udp_answer = answer, udp or Reading(timed_out=True)
        self.calls: list[tuple[str, str, int, float]] = []
        self.sent: list[bytes] = []
        self.open_now = self.most_open = 0
        self.connect: Callable[[str, int], Awaitable[None]] | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Net:
        monkeypatch.setattr(prober, "open_tcp", self.open_tcp)
        monkeypatch.setattr(prober, "exchange_udp", self.exchange_udp)
        return self

    async def open_tcp(self, target: str, port: int) -> tuple[Any, Any]:
        self.calls.append(("tcp", target, port, time.monotonic()))
        if self.connect is not None:
            await self.connect(target, port)
        reader = asyncio.StreamReader()
        reader.feed_data(self.answer)
        reader.feed_eof()
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        return reader, FakeWriter(self.sent, self._closed)

    def _closed(self) -> None:
        self.open_now -= 1

    async def exchange_udp(self, target: str, port: int, payload: bytes, *_: Any) -> Reading:
        self.calls.append(("udp", target, port, time.monotonic()))
        self.sent.append(payload)
        return self.udp_answer


def test_doctest() -> None:
    assert doctest.testmod(prober, optionflags=doctest.ELLIPSIS).failed == 0


def test_off_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net().install(monkeypatch)
    for config in (ProbeConfig(), ProbeConfig(allow=("127.0.0.1/32",))):
        with pytest.raises(ConfigError) as e:
            run_backcheck(["127.0.0.1"], config)
        assert str(e.value) == OFF and "--enable" in OFF and "\n" not in OFF
    assert net.calls == []


def test_allowlist_is_required_and_not_too_broad() -> None:
    with pytest.raises(ConfigError, match="needs an allowlist"):
        plan(["127.0.0.1"], ProbeConfig(enabled=True))
    for broad in ("0.0.0.0/0", "10.0.0.0/7", "::/0", "2001::/16"):
        with pytest.raises(ConfigError, match="too broad"):
            allow_networks([broad])
    with pytest.raises(ConfigError, match="not a CIDR"):
        allow_networks(["example.com"])
    assert [str(n) for n in allow_networks(["127.0.0.1", "10.1.2.3/8"])] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
    ]


def test_targets_outside_or_not_literal_are_refused() -> None:
    targets = [
        "127.0.0.1",
        " 127.0.0.1",
        "192.0.2.1",
        "localhost",
        "127.0.0.1:80",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "0.0.0.0",
        "::1",
        "127.1",
    ]
    p = plan(targets, ProbeConfig(enabled=True, allow=("127.0.0.0/8", "0.0.0.0/8")))
    assert p.targets == ("127.0.0.1",)
    reasons = {r.target: r.reason for r in p.refused}
    assert reasons["192.0.2.1"] == "outside the allowlist"
    assert reasons["::1"] == "outside the allowlist"
    assert reasons["localhost"].startswith("not an IP literal")
    assert reasons["127.1"].startswith("not an IP literal")
    assert reasons["127.0.0.1:80"].startswith("not an IP literal")
    assert reasons["::ffff:127.0.0.1"].startswith("IPv4-mapped")
    assert reasons["224.0.0.1"].startswith("multicast") and reasons["0.0.0.0"].startswith("mult")


def test_refused_targets_are_never_contacted(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net().install(monkeypatch)
    config = ProbeConfig(
        enabled=True, allow=("127.0.0.1/32",), ports=(80,), rate=1000, interval=0, ssdp_port=1900
    )
    result = run_backcheck(["192.0.2.1", "127.0.0.1", "198.51.100.7", "example.com"], config)
    assert {c[1] for c in net.calls} == {"127.0.0.1"}
    assert [r.target for r in result.refused] == ["192.0.2.1", "198.51.100.7", "example.com"]
    assert {p.target for p in result.probes} == {"127.0.0.1"}


def test_the_wire_checks_again(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net().install(monkeypatch)

    async def go() -> None:
        wire = Wire(ON, prober.SendLog(None), allow_networks(ON.allow))
        with pytest.raises(ConfigError, match="outside the allowlist"):
            async with wire.tcp("192.0.2.1", 80):
                pass
        with pytest.raises(ConfigError, match="port not probed"):
            async with wire.tcp("127.0.0.1", 9):
                pass
        with pytest.raises(ConfigError, match="port not probed"):
            await wire.udp("127.0.0.1", 1900, b"x", "x")  # SSDP is off in ON

    asyncio.run(go())
    assert net.calls == []


def test_max_targets_refuses_the_whole_run(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net().install(monkeypatch)
    targets = [f"127.0.0.{i}" for i in range(1, 6)]
    with pytest.raises(ConfigError, match=r"5 targets but at most 4.*nothing was sent"):
        run_backcheck(targets, ProbeConfig(**{**ON.__dict__, "max_targets": 4}))
    assert net.calls == []
    assert (
        len(plan(targets + targets, ProbeConfig(**{**ON.__dict__, "max_targets": 5})).targets) == 5
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rate": 0}, "rate"),
        ({"ports": (0,)}, "port"),
        ({"max_bytes": 10}, "max_bytes"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"per_target": 0}, "per_target"),
        ({"paths": ("/a b",)}, "plain absolute paths"),
        ({"paths": ()}, "paths"),
        ({"ports": (), "ssdp_port": None}, "no ports"),
    ],
)
def test_config_ranges(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(["127.0.0.1"], ProbeConfig(**{**ON.__dict__, **change}))


def test_global_rate_spaces_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net().install(monkeypatch)
    config = ProbeConfig(**{**ON.__dict__, "rate": 25.0, "ports": (80,), "paths": ("/",)})
    run_backcheck([f"127.0.0.{i}" for i in range(1, 6)], config)
    starts = sorted(c[3] for c in net.calls)
    assert len(starts) == 5
    assert all(b - a >= 0.035 for a, b in itertools.pairwise(starts))


def test_per_target_interval_and_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net().install(monkeypatch)
    config = ProbeConfig(**{**ON.__dict__, "interval": 0.06, "ports": (80, 81, 82)})
    result = run_backcheck(["127.0.0.1"], config)
    starts = sorted(c[3] for c in net.calls)
    assert len(starts) == 9  # three paths on each of three ports
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(starts))
    assert net.most_open == 1 and result.sent == 18  # 9 connects + 9 GETs


def test_connect_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net().install(monkeypatch)

    async def outcome(target: str, port: int) -> None:
        if port == 81:
            raise ConnectionRefusedError
        if port == 82:
            raise OSError(101, "Network is unreachable")
        if port == 83:
            await asyncio.sleep(30)

    net.connect = outcome
    config = ProbeConfig(**{**ON.__dict__, "ports": (81, 82, 83), "connect_timeout": 0.1})
    started = time.monotonic()
    rows = run_backcheck(["127.0.0.1"], config).probes
    assert time.monotonic() - started < 2
    assert [(p.port, p.state) for p in rows] == [(81, "closed"), (82, "error"), (83, "filtered")]
    assert rows[1].note == "connect failed: OSError"


def test_everything_sent_is_logged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ssdp = b"HTTP/1.1 200 OK\r\nLOCATION: http://198.51.100.9:80/d.xml\r\nSERVER: x\r\n\r\n"
    net = Net(udp=Reading(ssdp)).install(monkeypatch)
    log = tmp_path / "sent.jsonl"
    config = ProbeConfig(**{**ON.__dict__, "ports": (80,), "ssdp_port": 1900, "log_path": log})
    result = run_backcheck(["127.0.0.1"], config)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == result.sent == 7  # 3 connects, 3 GETs, 1 M-SEARCH
    assert set(lines[0]) == {"time", "target", "port", "proto", "what", "bytes", "data"}
    whats = [(x["proto"], x["port"], x["what"]) for x in lines]
    assert whats.count(("tcp", 80, "connect")) == 3 and ("udp", 1900, "SSDP M-SEARCH") in whats
    assert {x["data"] for x in lines if x["what"].startswith("GET")} == {
        s.decode() for s in net.sent if s.startswith(b"GET")
    }
    assert result.sent_bytes == sum(len(s) for s in net.sent)
    ssdp_row = next(p for p in result.probes if p.probe == "ssdp")
    assert ssdp_row.note == "LOCATION not followed: points at another host"
    assert all(c[1] == "127.0.0.1" for c in net.calls)


def test_unwritable_log_refuses_before_sending(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    net = Net().install(monkeypatch)
    config = ProbeConfig(**{**ON.__dict__, "log_path": tmp_path / "no" / "such" / "dir.jsonl"})
    with pytest.raises(ConfigError, match="cannot write the send log"):
        run_backcheck(["127.0.0.1"], config)
    assert net.calls == []
