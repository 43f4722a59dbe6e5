"""The safe prober: refuses unless enabled and allowlisted, paces, bounds and logs every probe.

Rules, checked in this order before any socket is opened:

1. ``ProbeConfig.enabled`` must be true (``--enable`` on the command line).
2. The allowlist must name at least one network, none broader than /8 (IPv4)
   or /32 (IPv6).
3. Every target must be an IP literal (hostnames are never resolved) inside
   the allowlist, and not multicast, broadcast, unspecified or IPv4-mapped;
   other targets are refused, reported and never contacted.
4. At most ``max_targets`` distinct targets per run (else nothing is sent).

While running: one global rate limit on new connections and datagrams, at most
``per_target`` connections to a target at once with ``interval`` seconds
between their starts, at most ``concurrency`` open connections in all,
timeouts on connect and on every read, and at most ``max_bytes`` read per
exchange. Every connect attempt, request and datagram is counted and, with a
log path, written as a JSON line before it is sent.

>>> run_backcheck(["127.0.0.1"], ProbeConfig())
Traceback (most recent call last):
...
teiten.errors.ConfigError: back-check is off: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from teiten.backcheck.model import Probe, Refusal, RunResult
from teiten.backcheck.probes import (
    DESCRIPTION_PATHS,
    BoundedConn,
    ConnectFailed,
    Reading,
    http_paths,
    probe_ssdp,
    probe_tcp,
)
from teiten.backcheck.upnp import follow_location, safe_path
from teiten.errors import ConfigError

DEFAULT_PORTS = (52869, 52881, 80, 8080, 23, 2323, 37215)
TELNET_PORTS = (23, 2323)
SSDP_PORT = 1900
OFF = (
    "back-check is off: it connects to the hosts you name, so it runs only when enabled "
    "(--enable, or ProbeConfig(enabled=True)) and only to targets inside --allow CIDRs"
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProbeConfig:
    """How a back-check may run. Off, with an empty allowlist, until the operator says so."""

    enabled: bool = False
    allow: tuple[str, ...] = ()
    ports: tuple[int, ...] = DEFAULT_PORTS
    telnet_ports: tuple[int, ...] = TELNET_PORTS
    ssdp_port: int | None = SSDP_PORT
    paths: tuple[str, ...] = DESCRIPTION_PATHS
    follow_location: bool = True
    max_targets: int = 256
    rate: float = 10.0
    """New connections and datagrams per second, over all targets."""
    per_target: int = 1
    interval: float = 1.0
    """Seconds between the starts of two probes to the same target."""
    concurrency: int = 64
    connect_timeout: float = 3.0
    read_timeout: float = 3.0
    max_bytes: int = 64 * 1024
    log_path: Path | None = None

    def check(self) -> None:
        """ConfigError naming the first value out of its range."""
        ports = [*self.ports, *self.telnet_ports, *([self.ssdp_port] if self.ssdp_port else [])]
        for name, value, low, high in [
            ("max_targets", self.max_targets, 1, 65536),
            ("rate", self.rate, 0.01, 1000),
            ("per_target", self.per_target, 1, 16),
            ("interval", self.interval, 0, 3600),
            ("concurrency", self.concurrency, 1, 1024),
            ("max_bytes", self.max_bytes, 64, 16 << 20),
            ("connect_timeout", self.connect_timeout, 0.01, 60),
            ("read_timeout", self.read_timeout, 0.01, 60),
            *[("port", p, 1, 65535) for p in ports],
        ]:
            if not low <= value <= high:
                raise ConfigError(f"back-check {name} {value} is out of range ({low}–{high})")
        if not self.paths or not all(safe_path(x) for x in self.paths):
            raise ConfigError("back-check paths must be plain absolute paths such as /rootDesc.xml")
        if not self.ports and not self.ssdp_port:
            raise ConfigError("back-check has no ports to probe")


@dataclass(frozen=True)
class Plan:
    """The targets a run may contact (IP literals, in input order) and those refused."""

    targets: tuple[str, ...]
    refused: tuple[Refusal, ...]


def allow_networks(allow: Sequence[str]) -> tuple[Network, ...]:
    """The allowlist as networks; ConfigError if empty, unreadable or too broad."""
    if not allow:
        raise ConfigError("back-check needs an allowlist: the networks you may probe (--allow)")
    nets: list[Network] = []
    for text in allow:
        try:
            net = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"--allow {str(text)[:80]!r} is not a CIDR such as 198.51.100.0/24"
            ) from None
        if net.prefixlen < (8 if net.version == 4 else 32):
            raise ConfigError(f"--allow {net} is too broad (at most /8 for IPv4, /32 for IPv6)")
        nets.append(net)
    return tuple(nets)


def _refuse(text: str, nets: Sequence[Network]) -> tuple[str, str]:
    """The canonical IP and an empty reason, or the reason a target is refused."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return "", "not an IP literal (hostnames are not resolved)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "", "IPv4-mapped IPv6 address: give the IPv4 address"
    if ip.is_multicast or ip.is_unspecified or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "", "multicast, broadcast or unspecified address"
    if not any(ip.version == n.version and ip in n for n in nets):
        return "", "outside the allowlist"
    return str(ip), ""


def plan(targets: Sequence[str], config: ProbeConfig) -> Plan:
    """The targets a run may contact; ConfigError if the run may not start at all."""
    if not config.enabled:
        raise ConfigError(OFF)
    config.check()
    nets = allow_networks(config.allow)
    accepted: dict[str, None] = {}
    refused: list[Refusal] = []
    for raw in targets:
        text = str(raw).strip()[:100]
        ip, reason = _refuse(text, nets)
        if reason:
            refused.append(Refusal(text, reason))
        else:
            accepted.setdefault(ip)
    if len(accepted) > config.max_targets:
        raise ConfigError(
            f"{len(accepted)} targets but at most {config.max_targets} per run (--max-targets); "
            "nothing was sent"
        )
    return Plan(tuple(accepted), tuple(refused))


class SendLog:
    """Counts everything sent and, with a path, writes it as JSON lines (append)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self.bytes = 0
        self._file: IO[str] | None = None

    def __enter__(self) -> SendLog:
        if self.path is not None:
            try:
                self._file = self.path.open("a", encoding="utf-8", buffering=1)
            except OSError as e:
                raise ConfigError(f"cannot write the send log {self.path}: {e.strerror}") from None
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()

    def record(self, target: str, port: int, proto: str, what: str, data: bytes) -> None:
        """Count (and log) one thing about to be sent."""
        self.count += 1
        self.bytes += len(data)
        if self._file is not None:
            line = {
                "time": datetime.now(UTC).isoformat(),
                "target": target,
                "port": port,
                "proto": proto,
                "what": what,
                "bytes": len(data),
                "data": data.decode("ascii", "backslashreplace"),
            }
            self._file.write(json.dumps(line, ensure_ascii=True) + "\n")


class _Pace:
    """Spaces starts at least ``gap`` seconds apart (shared by every caller)."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.next = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.gap
            if start > now:
                await asyncio.sleep(start - now)


async def open_tcp(target: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The only place a TCP connection is opened (numeric host: no DNS)."""
    return await asyncio.open_connection(target, port, flags=socket.AI_NUMERICHOST)


class _Catch(asyncio.DatagramProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.got: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        if not self.got.done():
            self.got.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.got.done():
            self.got.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def exchange_udp(target: str, port: int, payload: bytes, timeout: float, cap: int) -> Reading:
    """The only place a datagram is sent: one to ``target``, the first reply from it."""
    loop = asyncio.get_running_loop()
    transport, catch = await loop.create_datagram_endpoint(
        lambda: _Catch(loop), remote_addr=(target, port), flags=socket.AI_NUMERICHOST
    )
    try:
        transport.sendto(payload)
        data = await asyncio.wait_for(catch.got, timeout)
        return Reading(data[:cap], truncated=len(data) > cap)
    except TimeoutError:
        return Reading(timed_out=True)
    except ConnectionRefusedError:
        return Reading(refused=True)
    except OSError as e:
        return Reading(error=f"{type(e).__name__}: {e.strerror or ''}".strip(": "))
    finally:
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(catch.lost), 1.0)


class Wire:
    """The guarded I/O the probes use: allowlist re-checked, paced, bounded, logged."""

    def __init__(self, config: ProbeConfig, log: SendLog, nets: Sequence[Network]) -> None:
        self.config, self.log, self.nets = config, log, tuple(nets)
        self.rate = _Pace(1.0 / config.rate)
        self.open = asyncio.Semaphore(config.concurrency)
        self.gates: dict[str, tuple[asyncio.Semaphore, _Pace]] = {}

    def http_port(self, port: int) -> bool:
        return port in self.config.ports and port not in self.config.telnet_ports

    def _guard(self, target: str, port: int, proto: str) -> None:
        _, reason = _refuse(target, self.nets)
        ports = self.config.ports if proto == "tcp" else (self.config.ssdp_port,)
        if reason or port not in ports:
            raise ConfigError(f"refused {proto} {target}:{port}: {reason or 'port not probed'}")

    @asynccontextmanager
    async def _slot(self, target: str) -> AsyncIterator[None]:
        sem, pace = self.gates.setdefault(
            target, (asyncio.Semaphore(self.config.per_target), _Pace(self.config.interval))
        )
        async with sem:
            await pace.wait()
            async with self.open:
                await self.rate.wait()
                yield

    @asynccontextmanager
    async def tcp(self, target: str, port: int) -> AsyncIterator[BoundedConn]:
        self._guard(target, port, "tcp")
        async with self._slot(target):
            self.log.record(target, port, "tcp", "connect", b"")
            try:
                streams = await asyncio.wait_for(
                    open_tcp(target, port), self.config.connect_timeout
                )
            except TimeoutError:
                raise ConnectFailed("filtered", "no answer to connect in time") from None
            except ConnectionRefusedError:
                raise ConnectFailed("closed", "connection refused") from None
            except OSError as e:
                raise ConnectFailed("error", f"connect failed: {type(e).__name__}") from None

            def record(data: bytes, what: str) -> None:
                self.log.record(target, port, "tcp", what, data)

            conn = BoundedConn(streams, record, self.config.read_timeout, self.config.max_bytes)
            try:
                yield conn
            finally:
                await conn.close()

    async def udp(self, target: str, port: int, payload: bytes, what: str) -> Reading:
        self._guard(target, port, "udp")
        async with self._slot(target):
            self.log.record(target, port, "udp", what, payload)
            return await exchange_udp(
                target, port, payload, self.config.read_timeout, self.config.max_bytes
            )


async def _follow(
    wire: Wire, target: str, row: Probe, location: str, done: list[Probe]
) -> list[Probe]:
    """The SSDP row, then the LOCATION's description if it may be fetched and was not."""
    try:
        port, path = follow_location(location, target, wire.http_port)
    except ValueError as e:
        return [dataclasses.replace(row, note=f"LOCATION not followed: {e}")]
    if any(p.probe == "http" and (p.port, p.path) == (port, path) for p in done):
        return [dataclasses.replace(row, note="LOCATION already fetched")]
    if not any(p.probe == "connect" and p.port == port and p.state == "open" for p in done):
        return [dataclasses.replace(row, note=f"LOCATION not followed: port {port} not open")]
    return [row, *await http_paths(wire, target, port, (path,), note="from SSDP LOCATION")]


async def _probe_target(wire: Wire, target: str) -> list[Probe]:
    config = wire.config
    ports = dict.fromkeys(config.ports)
    found = await asyncio.gather(*(probe_tcp(wire, target, p, config.paths) for p in ports))
    rows = [row for rows in found for row in rows]
    if config.ssdp_port:
        row, location = await probe_ssdp(wire, target, config.ssdp_port)
        if location and config.follow_location:
            rows += await _follow(wire, target, row, location, rows)
        else:
            rows.append(row)
    return rows


async def backcheck(targets: Sequence[str], config: ProbeConfig) -> RunResult:
    """Probe the allowed targets (see the module's rules); refused ones are only reported."""
    started = time.monotonic()
    p = plan(targets, config)
    nets = allow_networks(config.allow)
    with SendLog(config.log_path) as log:
        wire = Wire(config, log, nets)
        found = await asyncio.gather(*(_probe_target(wire, t) for t in p.targets))
    rows = tuple(row for rows in found for row in rows)
    return RunResult(rows, p.refused, p.targets, log.count, log.bytes, time.monotonic() - started)


def run_backcheck(targets: Sequence[str], config: ProbeConfig) -> RunResult:
    """:func:`backcheck` in a new event loop (for scripts and the CLI)."""
    plan(targets, config)  # refuse before an event loop is even made
    return asyncio.run(backcheck(targets, config))
