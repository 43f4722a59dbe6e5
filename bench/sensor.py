"""Benchmark of ``teiten sensor run`` on loopback (issue 11), beside a plain asyncio echo server.

Two measurements, each against the sensor and against the peer, both pinned to one core
(``taskset -c 0``) while this process (the clients) runs on the other:

1. new connections per second: clients connect, send one small HTTP request, half-close
   and read until the server closes; for the sensor a connection counts only when its
   event was recorded (``teiten_sensor_events_total`` from its metrics endpoint);
2. resident memory (VmRSS) with N idle open connections (default 10,000; the file
   descriptor limit is raised with ``resource.setrlimit`` up to the hard limit and N is cut
   to what it allows; what was reached is printed).

Bounded: a fixed number of connections per run and a deadline per phase; every server it
starts is stopped (SIGTERM, then SIGKILL after a grace period) before it returns. Only
127.0.0.1 is used. Prints a Markdown section for bench/RESULTS.md.

    python bench/sensor.py [--connections 20000] [--concurrency 64] [--idle 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
REQUEST = b"GET / HTTP/1.0\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n"
PHASE_DEADLINE = 120.0
"""Seconds any one phase may take before the bench gives up on it."""

ECHO = """
import asyncio, sys
async def echo(reader, writer):
    try:
        data = await reader.read(65536)
        writer.write(data)
        await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics(port: int) -> dict[str, float]:
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    body = out.decode().split("\r\n\r\n", 1)[1]
    pairs = (x.rsplit(" ", 1) for x in body.splitlines() if x[:1] != "#")
    return {k: float(v) for k, v in pairs}


class Server:
    """A server process pinned to CPU 0, started and waited for."""

    def __init__(self, argv: list[str], ready: str, cwd: Path) -> None:
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        self.proc = subprocess.Popen(
            [*pin, *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        seen = threading.Event()

        def read(stream: object) -> None:
            for line in stream:  # type: ignore[attr-defined]
                self.lines.append(line.rstrip("\n"))
                if ready in line:
                    seen.set()

        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=read, args=(stream,), daemon=True).start()
        if not seen.wait(60):
            self.stop()
            raise SystemExit("server did not start: " + "\n".join(self.lines[-5:]))

    def stop(self, grace: float = 120.0) -> float:
        """SIGTERM, wait (SIGKILL after ``grace``); the seconds it took to exit."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.monotonic() - start


class Exchange(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[bool]) -> None:
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REQUEST)
        transport.write_eof()

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(exc is None)


async def hammer(port: int, total: int, concurrency: int) -> tuple[int, int, float]:
    """``total`` exchanges, ``concurrency`` at a time: (completed, failed, seconds)."""
    loop = asyncio.get_running_loop()
    left, ok, failed = total, 0, 0

    async def worker() -> None:
        nonlocal left, ok, failed
        while left > 0:
            left -= 1
            done: asyncio.Future[bool] = loop.create_future()
            try:
                await loop.create_connection(functools.partial(Exchange, done), HOST, port)
                good = await asyncio.wait_for(done, 30)
            except (OSError, TimeoutError):
                good = False
            ok, failed = ok + good, failed + (not good)

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), PHASE_DEADLINE)
    return ok, failed, time.perf_counter() - start


async def hold(port: int, n: int) -> tuple[list[socket.socket], float]:
    """Open ``n`` idle connections (batches of 500); the sockets and the seconds it took."""
    loop = asyncio.get_running_loop()
    held: list[socket.socket] = []
    start = time.perf_counter()

    async def one() -> socket.socket | None:
        s = socket.socket()
        s.setblocking(False)
        try:
            await loop.sock_connect(s, (HOST, port))
        except OSError:
            s.close()
            return None
        return s

    while len(held) < n and time.perf_counter() - start < PHASE_DEADLINE:
        batch = await asyncio.gather(*(one() for _ in range(min(500, n - len(held)))))
        got = [s for s in batch if s is not None]
        held.extend(got)
        if not got:
            break
    return held, time.perf_counter() - start


def sensor_config(tmp: Path, port: int, bport: int, mport: int, idle: int) -> Path:
    config = tmp / "sensor.toml"
    config.write_text(
        '[sensor]\nname = "bench"\ndata = "data"\nspool = "spool"\n'
        'networks = ["192.0.2.0/24"]\ningest_interval = 3600\ndetect_interval = 0\n'
        f'metrics = "{HOST}:{mport}"\nmax_connections = {idle + 1000}\n'
        f"max_per_source = {idle + 1000}\nidle_timeout = 600\ntotal_timeout = 900\n\n"
        f'[[responder]]\nkind = "http"\nlisten = ["{HOST}:{port}"]\n\n'
        f'[[responder]]\nkind = "blackhole"\nlisten = ["{HOST}:{bport}"]\n'
    )
    return config


def wait_open(mport: int, n: int) -> float:
    deadline = time.monotonic() + PHASE_DEADLINE
    while (now := metrics(mport)["teiten_sensor_open_connections"]) < n:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--idle", type=int, default=10_000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.idle + 1024
    limit = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, limit), hard))  # children inherit
    idle = min(args.idle, limit - 1024)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})  # the clients stay off the servers' core
    tmp = Path(tempfile.mkdtemp(prefix="teiten-bench-sensor-"))
    rows: list[str] = []
    notes: list[str] = []
    try:
        # Sensor: connections/s recorded, then memory with idle connections.
        port, bport, mport = free_port(), free_port(), free_port()
        config = sensor_config(tmp, port, bport, mport, idle)
        exe = [sys.executable, "-m", "teiten", "sensor", "run", "--config", str(config)]
        sensor = Server(exe, "sensor: ready", tmp)
        try:
            base = rss_mib(sensor.proc.pid)
            asyncio.run(hammer(port, 500, args.concurrency))  # warm-up
            before = metrics(mport)["teiten_sensor_events_total"]
            cpu0 = cpu_s(sensor.proc.pid)
            ok, failed, secs = asyncio.run(hammer(port, args.connections, args.concurrency))
            cpu = cpu_s(sensor.proc.pid) - cpu0
            deadline = time.monotonic() + 30
            while (after := metrics(mport)["teiten_sensor_events_total"]) - before < ok:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            recorded = int(after - before)
            busy = rss_mib(sensor.proc.pid)
            rows.append(
                f"| teiten sensor (http responder) | {ok:,} | {failed:,} | {recorded:,} | "
                f"{secs:.2f} | {ok / secs:,.0f} | {cpu:.2f} | {busy:.0f} |"
            )
            held, opened_s = asyncio.run(hold(bport, idle))
            reached = wait_open(mport, len(held))
            mem = rss_mib(sensor.proc.pid)
            notes.append(
                f"- sensor with {int(reached):,} idle connections open (blackhole responder, "
                f"{len(held):,} opened by the clients in {opened_s:.1f} s): **{mem:.0f} MiB** "
                f"resident (at start {base:.0f} MiB, after the connection run {busy:.0f} MiB); "
                f"{(mem - busy) * 1024 / max(len(held), 1):.1f} KiB per idle connection"
            )
            for s in held:
                s.close()
            events_total = int(metrics(mport)["teiten_sensor_events_total"])
        finally:
            took = sensor.stop()
        last = sensor.lines[-1] if sensor.lines else ""
        notes.append(
            f"- SIGTERM with {events_total:,} events recorded in the run: the sensor ended "
            f"the rest, ingested its event files and exited in {took:.1f} s "
            f"(exit {sensor.proc.returncode}); its summary: `{last}`"
        )
        # Peer: a plain asyncio echo server, same client, same core.
        eport = free_port()
        echo = Server([sys.executable, "-c", ECHO, str(eport)], "ready", tmp)
        try:
            ebase = rss_mib(echo.proc.pid)
            asyncio.run(hammer(eport, 500, args.concurrency))
            ecpu0 = cpu_s(echo.proc.pid)
            eok, efailed, esecs = asyncio.run(hammer(eport, args.connections, args.concurrency))
            ecpu = cpu_s(echo.proc.pid) - ecpu0
            ebusy = rss_mib(echo.proc.pid)
            rows.append(
                f"| plain asyncio echo server | {eok:,} | {efailed:,} | – | {esecs:.2f} | "
                f"{eok / esecs:,.0f} | {ecpu:.2f} | {ebusy:.0f} |"
            )
            held, _ = asyncio.run(hold(eport, idle))
            time.sleep(1.0)  # let it accept the backlog
            emem = rss_mib(echo.proc.pid)
            notes.append(
                f"- echo server with {len(held):,} idle connections open: **{emem:.0f} MiB** "
                f"resident (at start {ebase:.0f} MiB)"
            )
            for s in held:
                s.close()
        finally:
            echo.stop(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("## Sensor (issue 11)\n")
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with:\n")
    print(f"    python bench/sensor.py --connections {args.connections} "
          f"--concurrency {args.concurrency} --idle {args.idle}\n")  # fmt: skip
    print(
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}; servers pinned "
        "with `taskset -c 0`, the clients (one asyncio process, this script) on CPU 1; all on "
        "127.0.0.1\n"
        f"- file descriptors: soft limit raised to {limit:,} (hard {hard:,}); "
        f"idle connections tried: {idle:,}\n"
        "- a connection: connect, send a 52-byte HTTP request, half-close, read until the "
        f"server closes; {args.concurrency} at a time; 500 warm-up connections first. "
        '"recorded" is the rise of `teiten_sensor_events_total` (events written to the '
        "event file); server CPU s is the server process's user + system time during the "
        "timed connections (near the seconds column: the server's core was the limit)\n"
    )
    head = ("server (1 core)", "completed", "failed", "recorded", "seconds", "connections/s",
            "server CPU s", "RSS MiB after")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
