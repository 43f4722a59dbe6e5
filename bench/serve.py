"""Serve benchmark (issue 12): latency of ``teiten serve``'s pages and JSON API on a big store.

Run by hand from the repository root::

    python bench/serve.py [--captures 20] [--days 79] [--packets 4600000] \\
        [--mix-packets 300000] [--scenario-scale 1] [--work /tmp/serve-bench]

Builds (or, with ``--reuse-store``, reuses) a store the way ``bench/trend.py``
does: ``--captures`` one-day captures of ``--packets`` scanner packets from
``bench/gen_darknet.py``, spread evenly over ``--days`` days (from 2017-10-01,
the seed case's period), each with ``--mix-packets`` packets of
``bench/gen_mix.py``'s realistic mix beside it so that sessions and indicators
exist; every day is ingested on its own (so every input has its rollup files)
and deleted once ingested. The seed case (``teiten simulate npa-2017`` at
``--scenario-scale``: the 52869/tcp surge and the domestic Telnet rise of
2017-11-01, with sessions) is ingested beside them, then ``teiten detect``
runs once so alerts and campaigns exist. The build runs under ``nice``.

Then ``teiten serve --rate 0`` starts on a free loopback port and every URL of
:data:`PROBES` is asked over real HTTP (one kept-alive ``http.client``
connection): the first answer (cold: the server's per-data-version caches —
the sensor address scan of the secrecy policy, the report the campaign
answers are cut from — are filled by the URL that first needs them, as the
table's "cold includes" column says; the OS page cache is not dropped), then
up to ``--repeats`` warm answers within ``--budget`` seconds per URL (at least
three), reported as median and p95, with the server's resident memory. The
same answers are then computed by the CLI (:data:`PEERS`, whole process under
``/usr/bin/time -v``) and the API's JSON is compared with the CLI's.

The server runs as :data:`TRACER`: ``teiten serve`` with every engine statement
timed inside it, so each URL that misses the target is shown with the
statements it ran (named as in ``teiten.sql``) and the time spent outside them.
``--notes FILE`` adds written findings to the section.

Each run's numbers are kept in ``WORK/serve-runs.json`` by store size, so the
section of ``bench/RESULTS.md`` ("Serve (issue 12)") shows how the answers
grow with packets and days across the stores measured so far.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from benchlib import BENCH, RESULTS, busy_seconds, children_seconds, machine, run_timed
from benchlib import update_section as update

SECTION = "Serve (issue 12)"
FIRST_DAY = "2017-10-01"
"""The seed scenario's first day: the bulk traffic is spread over its period."""
FIRST_SEED = 301
TARGET_MS = 300.0
SENSOR_NET = "198.18.0.0/15"
SCENARIO_NET = "203.0.113.0/24"
"""The sensor network of ``teiten simulate npa-2017``."""
NICE = ["nice", "-n", "10"]
TEITEN = str(Path(sys.executable).with_name("teiten"))


TRACER = """
import json, sys, time
import teiten.sql.statement as registry
from teiten.engine.duckdb import DuckDBEngine

log = open(sys.argv.pop(1), "a", buffering=1)


class Built(set):
    last = ""

    def add(self, name):
        Built.last = name
        super().add(name)


registry.USED = Built(registry.USED)


def note(what, start, rows):
    ms = (time.perf_counter() - start) * 1000
    log.write(json.dumps({"what": what, "ms": ms, "rows": rows}) + "\\n")


def name(sql):
    what, Built.last = Built.last, ""
    return what or "unregistered: " + " ".join(sql.split())[:60]


def query(self, sql, params=None, _query=DuckDBEngine.query):
    what, start = name(sql), time.perf_counter()
    table = _query(self, sql, params)
    note(what, start, table.num_rows)
    return table


def stream(self, sql, _stream=DuckDBEngine.stream, **kw):
    what, start, rows = name(sql), time.perf_counter(), 0
    for batch in _stream(self, sql, **kw):
        rows += batch.num_rows
        yield batch
    note(what + " (streamed)", start, rows)


def init(self, *a, _init=DuckDBEngine.__init__, **kw):
    start = time.perf_counter()
    _init(self, *a, **kw)
    note("engine open (views over the listed files)", start, 0)


DuckDBEngine.query, DuckDBEngine.stream, DuckDBEngine.__init__ = query, stream, init
from teiten.cli.main import cli

sys.exit(cli())
"""
"""The server as a ``python -c`` program: ``teiten serve`` with each engine statement timed
(perf_counter around DuckDBEngine.query/stream/open, named by the last statement built,
one JSON line per statement to the file given first). Costs microseconds per statement."""


@dataclass(frozen=True)
class Probe:
    """One URL to time. ``{name}`` fields are filled from the store's facts."""

    name: str
    path: str
    cold: str = ""
    """What the first answer also computes (a cache it fills), if anything."""
    learn: str = ""
    """A fact this answer teaches later probes (a key of :data:`LEARN`)."""


LEARN: dict[str, Callable[[Any], str]] = {
    "campaign": lambda rows: str(rows[0]["id"]),
    "session": lambda page: str(page["sessions"][0]["id"]),
}
"""How a fact is read from the JSON answer that teaches it (when it is not empty)."""


PROBES = (
    Probe("advisory check", "/api/v1/advisories/check?model=LAN-W300N&version=1.0",
          "the sensor address scan (secrecy policy)"),
    Probe("ports, all data", "/api/v1/ports"),
    Probe("ports, last 7 days", "/api/v1/ports?from={week_from}&to={last}"),
    Probe("trend 23+2323 domestic", "/api/v1/trend?port=23/tcp&port=2323/tcp&split=domestic"),
    Probe("trend 23 by hour, 2 days",
          "/api/v1/trend?port=23/tcp&by=hour&from={hour_from}&to={last}"),
    Probe("alerts", "/api/v1/alerts"),
    Probe("campaigns", "/api/v1/campaigns", "the report of all data", learn="campaign"),
    Probe("campaign", "/api/v1/campaigns/{campaign}"),
    Probe("sessions", "/api/v1/sessions?limit=100", learn="session"),
    Probe("session", "/api/v1/sessions/{session}"),
    Probe("source (busy)", "/api/v1/sources/{source}"),
    Probe("indicators", "/api/v1/indicators"),
    Probe("page: overview", "/"),
    Probe("page: port 23/tcp", "/ports/23/tcp"),
    Probe("page: campaign", "/campaigns/{campaign}"),
    Probe("page: source (busy)", "/sources/{source}"),
    Probe("page: session", "/sessions/{session}"),
    Probe("page: advisory checker", "/advisories"),
    Probe("report download (en, html)", "/reports/report.en.html", "writing the report"),
)  # fmt: skip
"""Every URL measured, in order; a new page is one line."""

PEERS = (
    ("ports, all data", ["ports", "--format", "json"]),
    ("ports, last 7 days",
     ["ports", "--from", "{week_from}", "--to", "{last}", "--format", "json"]),
    ("trend 23+2323 domestic",
     ["trend", "23/tcp", "2323/tcp", "--split", "domestic", "--format", "json"]),
    ("trend 23 by hour, 2 days",
     ["trend", "23/tcp", "--by", "hour", "--from", "{hour_from}", "--to", "{last}",
      "--format", "json"]),
)  # fmt: skip
"""The CLI command whose JSON each of these probes must equal."""


@dataclass
class Store:
    """The store the server reads, and how it was made."""

    packets: int
    captures: int
    days: int
    bytes: int
    packet_bytes: int
    build_seconds: float
    detect_seconds: float
    alerts: int
    reused: bool = False
    rows: dict[str, int] = field(default_factory=dict)
    """Rows of the tables the answers read (from the Parquet footers)."""


@dataclass
class Timing:
    """One URL's answers."""

    name: str
    path: str
    status: int
    size: int
    cold_ms: float
    warm_ms: list[float] = field(default_factory=list)
    rss_mib: float = 0.0
    cold_trace: list[dict[str, Any]] = field(default_factory=list)
    """The engine statements of the cold answer (see :data:`TRACER`)."""
    warm_trace: list[dict[str, Any]] = field(default_factory=list)
    """The engine statements of the last warm answer."""

    @property
    def median(self) -> float:
        return statistics.median(self.warm_ms) if self.warm_ms else self.cold_ms

    @property
    def p95(self) -> float:
        return nearest_rank(self.warm_ms, 0.95) if self.warm_ms else self.cold_ms


def nearest_rank(values: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (with few answers: the slowest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(q * len(ordered))) - 1))]


# --- the store ------------------------------------------------------------------------


def capture_days(captures: int, days: int) -> list[str]:
    """The day of each capture: ``captures`` days spread evenly over ``days`` from FIRST_DAY."""
    first = np.datetime64(FIRST_DAY, "D")
    span = max(days, captures)
    return [str(first + (i * (span - 1)) // max(captures - 1, 1)) for i in range(captures)]


def niced(*argv: str | Path) -> list[str]:
    """A build step's command line, under ``nice`` (the machine is shared)."""
    return [*NICE, *map(str, argv)]


def ingest_day(work: Path, store: Path, day: str, seed: int, packets: int, mix: int) -> float:
    """Generate one day's captures, ingest them, delete them; the ingest's wall seconds."""
    scan, extra = work / f"serve-{day}.pcap", work / f"serve-{day}-mix.pcap"
    inputs = [scan, extra] if mix else [scan]
    gens = [(BENCH / "gen_darknet.py", scan, packets), (BENCH / "gen_mix.py", extra, mix)]
    try:
        for script, out, n in gens[: len(inputs)]:
            cmd = niced(sys.executable, script, out, "--packets", str(n), "--seed", str(seed),
                        "--day", day)  # fmt: skip
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        cmd = niced(TEITEN, "ingest", *inputs, "--data", store, "--threads", "2",
                    "--sensor-net", SENSOR_NET)  # fmt: skip
        return run_timed(cmd, capture=True).wall
    finally:
        for p in inputs:
            p.unlink(missing_ok=True)


def build_store(work: Path, store: Path, args: argparse.Namespace) -> Store:
    """Build the store of ``args`` (or reuse a kept one made with the same arguments)."""
    meta_path = store.with_suffix(".json")
    wanted = {
        "captures": args.captures,
        "days": args.days,
        "packets": args.packets,
        "mix": args.mix_packets,
        "scenario": args.scenario_scale,
        "seed": FIRST_SEED,
        "day": FIRST_DAY,
    }
    if args.reuse_store and store.is_dir() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted:
            return Store(**meta["store"], reused=True)
    shutil.rmtree(store, ignore_errors=True)
    meta_path.unlink(missing_ok=True)
    start = time.perf_counter()
    days = capture_days(args.captures, args.days)
    for i, day in enumerate(days):
        wall = ingest_day(work, store, day, FIRST_SEED + i, args.packets, args.mix_packets)
        print(f"[{i + 1}/{len(days)}] {day} ingested in {wall:.1f}s", flush=True)
    seeded = seed_case(work, store, args.scenario_scale)
    built = time.perf_counter() - start
    detect = run_timed(niced(TEITEN, "detect", "--data", store, "--format", "json"), capture=True)
    made = Store(
        packets=args.captures * (args.packets + args.mix_packets) + seeded,
        captures=args.captures,
        days=int((np.datetime64(days[-1]) - np.datetime64(days[0])).astype(int)) + 1,
        bytes=sum(p.stat().st_size for p in store.rglob("*") if p.is_file()),
        packet_bytes=sum(p.stat().st_size for p in (store / "packets").rglob("*.parquet")),
        build_seconds=built,
        detect_seconds=detect.wall,
        alerts=count_alerts(detect.stdout),
    )
    stored = {k: v for k, v in asdict(made).items() if k != "reused"}
    meta_path.write_text(json.dumps({**wanted, "store": stored}) + "\n")
    return made


def seed_case(work: Path, store: Path, scale: float) -> int:
    """Simulate the seed case (``teiten simulate npa-2017 --scale``) and ingest it, so that
    detect has rises to find and the dashboard campaigns to show; its packet count."""
    if scale <= 0:
        return 0
    out = work / "seed-case"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    run_timed(niced(TEITEN, "simulate", "npa-2017", "--out", out, "--scale", str(scale)))
    packets = int(json.loads((out / "truth.json").read_text())["packets"]["total"])
    cmd = niced(TEITEN, "ingest", out / "npa-2017.pcap", "--data", store, "--threads", "2",
                "--sensor-net", SCENARIO_NET)  # fmt: skip
    run_timed(cmd, capture=True)
    shutil.rmtree(out)
    print(f"seed case (scale {scale:g}): {packets:,} packets ingested", flush=True)
    return packets


def table_rows(store: Path) -> dict[str, int]:
    """Rows of the packets, rollups and sessions, from the Parquet footers."""
    return {
        table: sum(pq.ParquetFile(f).metadata.num_rows for f in (store / table).rglob("*.parquet"))
        for table in ("packets", "port_hours", "address_hours", "sessions")
    }


def count_alerts(text: str) -> int:
    """How many alerts ``teiten detect --format json`` printed (0 when it printed none)."""
    try:
        rows = json.loads(text or "[]")
    except json.JSONDecodeError:
        return 0
    return len(rows) if isinstance(rows, list) else 0


def facts(store: Path, days: list[str]) -> dict[str, str]:
    """What the URL templates need: the window's days and the busiest source of the last day."""
    last = np.datetime64(days[-1], "D")
    files = sorted((store / "port_hours").rglob(f"date={days[-1]}/*.parquet"))
    table = pa.concat_tables(pq.read_table(f, columns=["src_ip4", "packets"]) for f in files)
    busy = table.group_by("src_ip4").aggregate([("packets", "sum")])
    top = busy.sort_by([("packets_sum", "descending")]).column("src_ip4")[0].as_py()
    return {
        "first": days[0],
        "last": str(last),
        "week_from": str(last - 6),
        "hour_from": str(last - 1),
        "source": str(ipaddress.IPv4Address(top)),
        **dict.fromkeys(LEARN, ""),
    }


# --- the server -----------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_mib(pid: int, key: str = "VmRSS") -> float:
    """``key`` (VmRSS: now, VmHWM: peak) of process ``pid`` from /proc, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def server(
    store: Path, log: Path, trace: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int, float]]:
    """``teiten serve`` on 127.0.0.1, its statements timed into ``trace``: the process, its
    port, seconds until it answered."""
    port = free_port()
    trace.write_text("")
    cmd = [sys.executable, "-c", TRACER, str(trace), "serve", "--data", str(store),
           "--host", "127.0.0.1", "--port", str(port), "--rate", "0"]  # fmt: skip
    start = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        ready = wait_ready(proc, port, start)
        yield proc, port, ready
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process (all its threads) has used, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_settled(pid: int, limit: float = 600.0) -> float:
    """Seconds until the server stopped warming its caches (``teiten serve`` fills the
    secrecy policy's address scan and the report of all data in a thread when it starts):
    until it used under 5 % of a core over a second, at most ``limit``."""
    start = time.perf_counter()
    before = cpu_seconds(pid)
    while time.perf_counter() - start < limit:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.05:
            break
        before = now
    return time.perf_counter() - start


def wait_ready(proc: subprocess.Popen[bytes], port: int, start: float) -> float:
    """Seconds until the server answered its OpenAPI document (which reads no data)."""
    while time.perf_counter() - start < 120:
        if proc.poll() is not None:
            raise SystemExit(f"teiten serve ended with {proc.returncode} before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                conn.close()
                return time.perf_counter() - start
        except OSError:
            time.sleep(0.1)
    raise SystemExit("teiten serve did not answer within 120 s")


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes, float]:
    """One answer: status, body, milliseconds from request to the last byte."""
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    return response.status, body, (time.perf_counter() - start) * 1000


@dataclass
class Live:
    """The running server: one kept-alive connection, its process, its statement trace."""

    conn: http.client.HTTPConnection
    pid: int
    trace: Path
    offset: int = 0

    def ask(self, path: str) -> tuple[int, bytes, float, list[dict[str, Any]]]:
        """One answer (status, body, ms) and the statements the server ran for it."""
        status, body, ms = get(self.conn, path)
        with self.trace.open() as fh:
            fh.seek(self.offset)
            text = fh.read()
            self.offset = fh.tell()
        return status, body, ms, [json.loads(line) for line in text.splitlines()]


def time_url(live: Live, name: str, path: str, args: argparse.Namespace) -> tuple[Timing, bytes]:
    """The cold answer, then warm ones until ``--repeats`` or ``--budget`` s (at least 3)."""
    status, body, cold, trace = live.ask(path)
    timing = Timing(name, path, status, len(body), cold, cold_trace=trace)
    spent = time.perf_counter()
    while status == 200 and len(timing.warm_ms) < args.repeats:
        if len(timing.warm_ms) >= 3 and time.perf_counter() - spent > args.budget:
            break
        _, _, ms, timing.warm_trace = live.ask(path)
        timing.warm_ms.append(ms)
    timing.rss_mib = memory_mib(live.pid)
    return timing, body


def time_probes(
    live: Live, known: dict[str, str], args: argparse.Namespace
) -> tuple[list[Timing], dict[str, Any]]:
    """Every probe in order; the parsed JSON answers by probe name (for the CLI comparison)."""
    timings, answers = [], {}
    for probe in PROBES:
        missing = [k for k in LEARN if "{" + k + "}" in probe.path and not known[k]]
        if missing:
            print(f"skipping {probe.name}: no {missing[0]} in the store", flush=True)
            continue
        path = probe.path.format(**known)
        print(f"timing {path}…", flush=True)
        timing, body = time_url(live, probe.name, path, args)
        timings.append(timing)
        print(
            f"  {timing.status}: cold {timing.cold_ms:,.0f} ms, warm median "
            f"{timing.median:,.0f} ms",
            flush=True,
        )
        if timing.status == 200 and path.startswith("/api/"):
            answers[probe.name] = json.loads(body)
        if probe.learn and probe.name in answers:
            with contextlib.suppress(LookupError, TypeError):  # nothing to learn: stays ""
                known[probe.learn] = LEARN[probe.learn](answers[probe.name])
    return timings, answers


# --- the CLI peer ---------------------------------------------------------------------


@dataclass
class Peer:
    """One CLI command beside its URL."""

    name: str
    command: str
    walls: list[float]
    rss_mib: float
    equal: bool


def time_peers(
    store: Path, known: dict[str, str], answers: dict[str, Any], repeats: int
) -> list[Peer]:
    """Each :data:`PEERS` command ``repeats`` times; its JSON compared with the API's."""
    peers = []
    for name, argv in PEERS:
        cmd = [TEITEN, *(a.format(**known) for a in argv), "--data", str(store)]
        print(f"timing teiten {' '.join(cmd[1:-2])}…", flush=True)
        runs = [run_timed(cmd, capture=True) for _ in range(repeats)]
        shown = "teiten " + " ".join(a.format(**known) for a in argv) + " --data DIR"
        peers.append(
            Peer(
                name,
                shown,
                [r.wall for r in runs],
                max(r.max_rss_kb for r in runs) / 1024,
                json.loads(runs[0].stdout) == answers.get(name),
            )
        )
    return peers


# --- results --------------------------------------------------------------------------


NOT_SERVED = "not served: the route does not exist in this build (pages are being written)."


def url_verdict(t: Timing) -> str:
    """``met`` (cold and warm p95 under the target), ``warm only``, ``median only``, ``MISSED``."""
    if t.status != 200:
        return "not served" if t.status == 404 and not t.path.startswith("/api/") else "error"
    if max(t.cold_ms, t.p95) < TARGET_MS:
        return "met"
    if t.p95 < TARGET_MS:
        return "warm only"
    return "median only" if t.median < TARGET_MS else "MISSED"


def url_rows(timings: list[Timing]) -> list[str]:
    """The main table: one row per URL."""
    cold_notes = {p.name: p.cold for p in PROBES}
    rows = [
        "| URL | status | bytes | cold ms | cold includes | warm n | warm median ms "
        "| warm p95 ms | server RSS MiB | < 300 ms |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for t in timings:
        rows.append(
            f"| `{t.path}` | {t.status} | {t.size:,} | {t.cold_ms:,.0f} "
            f"| {cold_notes.get(t.name) or '–'} | {len(t.warm_ms)} | {t.median:,.0f} "
            f"| {t.p95:,.0f} | {t.rss_mib:,.0f} | {url_verdict(t)} |"
        )
    return rows


def top_statements(trace: list[dict[str, Any]], keep: int = 3) -> tuple[float, str]:
    """The statements' total ms, and the ``keep`` costliest (summed by name) as text."""
    by_name: dict[str, list[float]] = {}
    for row in trace:
        acc = by_name.setdefault(row["what"], [0.0, 0, 0])
        acc[0] += row["ms"]
        acc[1] += 1
        acc[2] += row["rows"]
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1][0])[:keep]
    text = "; ".join(
        f"`{name}`{f' ×{int(n)}' if n > 1 else ''} {ms:,.0f} ms ({int(rows):,} rows)"
        for name, (ms, n, rows) in ranked
    )
    return sum(r["ms"] for r in trace), text or "none"


def trace_rows(timings: list[Timing]) -> list[str]:
    """Where the time of every URL that missed the target went: engine statements vs the rest."""
    rows = [
        "| URL | answer | ms | in statements ms | rest ms | costliest statements |",
        "|---|---|---:|---:|---:|---|",
    ]
    for t in timings:
        if url_verdict(t) in ("met", "not served", "error"):
            continue
        answers = [("cold", t.cold_ms, t.cold_trace)]
        if t.warm_ms:
            answers.append(("last warm", t.warm_ms[-1], t.warm_trace))
        for label, ms, trace in answers:
            inside, text = top_statements(trace)
            rows.append(
                f"| `{t.path}` | {label} | {ms:,.0f} | {inside:,.0f} | {ms - inside:,.0f} "
                f"| {text} |"
            )
    return rows


def peer_rows(peers: list[Peer], timings: list[Timing]) -> list[str]:
    api = {t.name: t for t in timings}
    rows = [
        "| CLI command (whole process) | runs s | peak RSS MiB | API warm median ms "
        "| JSON equal to the API's |",
        "|---|---:|---:|---:|---|",
    ]
    for p in peers:
        warm = api[p.name].median if p.name in api else float("nan")
        rows.append(
            f"| `{p.command}` | {', '.join(f'{w:.2f}' for w in p.walls)} | {p.rss_mib:,.0f} "
            f"| {warm:,.0f} | {'yes' if p.equal else 'NO'} |"
        )
    return rows


def growth_rows(history: dict[str, Any]) -> list[str]:
    """Warm medians of every API URL across the stores measured so far, by packets."""
    runs = sorted(history.values(), key=lambda r: r["store"]["packets"])
    names = [p.name for p in PROBES]
    head = " | ".join(
        f"{r['store']['packets']:,} packets, {r['store']['days']} days, "
        f"{r['store'].get('rows', {}).get('port_hours', 0):,} `port_hours` rows"
        for r in runs
    )
    rows = [f"| URL (warm median ms; cold ms) | {head} |", "|---|" + "---:|" * len(runs)]
    for name in names:
        cells = []
        for r in runs:
            t = r["urls"].get(name)
            cells.append(
                "–" if not t or t["status"] != 200 else f"{t['median']:,.0f}; {t['cold']:,.0f}"
            )
        if any(c != "–" for c in cells):
            rows.append(f"| {name} | {' | '.join(cells)} |")
    rows.append("")
    rows += [
        f"- {r['store']['packets']:,} packets: `{r.get('command', '?')}` ({r.get('measured', '?')})"
        for r in runs
    ]
    return rows


def remember(work: Path, store: Store, timings: list[Timing], command: str) -> dict[str, Any]:
    """Add this run to ``WORK/serve-runs.json`` (by store size) and return every run kept."""
    path = work / "serve-runs.json"
    history = json.loads(path.read_text()) if path.exists() else {}
    history[f"{store.packets}/{store.days}"] = {
        "store": {k: v for k, v in asdict(store).items() if k != "reused"},
        "command": command,
        "measured": time.strftime("%Y-%m-%d %H:%M %Z"),
        "urls": {
            t.name: {"status": t.status, "median": t.median, "cold": t.cold_ms} for t in timings
        },
    }
    path.write_text(json.dumps(history, indent=1) + "\n")
    return history


def verdict(timings: list[Timing], store: Store) -> str:
    """One line: how many served URLs met the target, cold and warm."""
    served = [t for t in timings if t.status == 200]
    warm = sum(t.p95 < TARGET_MS for t in served)
    cold = sum(max(t.cold_ms, t.p95) < TARGET_MS for t in served)
    met = cold == len(served) and store.packets >= 10**9
    return (
        f"- **{'MET' if met else 'MISSED'}** — target: every page and API answer < "
        f"{TARGET_MS:.0f} ms on 10^9 packets. This store ({store.packets:,} packets): "
        f"{warm} of {len(served)} served URLs answer under it warm (p95), {cold} cold too."
    )


def render(
    args: argparse.Namespace,
    command: str,
    store: Store,
    ready: tuple[float, float],
    peak: float,
    load: str,
    timings: list[Timing],
    peers: list[Peer],
    history: dict[str, Any],
) -> str:
    """The section's markdown."""
    settled = (
        f"Timed once it had warmed its caches (`--settle`: CPU idle {ready[1]:.0f} s after it "
        "answered; what cold includes then was done by the warming thread). "
        if args.settle
        else ""
    )
    how = f"built in {store.build_seconds / 60:.1f} min"
    how += " by an earlier run of this command without `--reuse-store`" if store.reused else ""
    rows = ", ".join(f"`{t}` {n:,}" for t, n in store.rows.items())
    notes = args.notes.read_text().strip() if args.notes else ""
    return f"""
Measured {time.strftime("%Y-%m-%d %H:%M %Z")} with:

    {command}

{machine().markdown()}
- store: {store.packets:,} packets over {store.days} days ({store.captures} one-day inputs, each
  {args.packets:,} `bench/gen_darknet.py` packets + {args.mix_packets:,} of `bench/gen_mix.py`'s
  realistic mix, days from {FIRST_DAY}; plus the seed case, `teiten simulate npa-2017
  --scale {args.scenario_scale:g}`); {store.bytes / 1e9:.2f} GB on disk, of which
  {store.packet_bytes / 1e9:.2f} GB packet Parquet; rows: {rows}; {how}, under `nice`.
  `teiten detect` once: {store.detect_seconds:.1f} s, {store.alerts} alert(s).
- server: `teiten serve --data DIR --host 127.0.0.1 --port FREE --rate 0` (sensor addresses
  masked); answered its OpenAPI document {ready[0]:.1f} s after start; peak RSS {peak:,.0f} MiB.
  {settled}One kept-alive HTTP/1.1 connection; times from request to last byte. Cold: the first
  answer of the URL in this server, after the URLs above it (the OS page cache is warm);
  warm: up to {args.repeats} more answers within {args.budget:g} s (at least 3).
- load: {load}

{chr(10).join(url_rows(timings))}

{NOT_SERVED if any(url_verdict(t) == "not served" for t in timings) else ""}
{verdict(timings, store)}

Where the time goes, for every URL that missed: the engine statements the server ran
for the answer (named by their `teiten.sql` function; timed in the server around
`DuckDBEngine.query`/`stream` and engine opening) and the rest (Python: use case, JSON,
secrecy masking, page rendering; HTTP):

{chr(10).join(trace_rows(timings))}

The analyst's alternative, the CLI (whole process, start-up included; first run's JSON
compared with the API's answer):

{chr(10).join(peer_rows(peers, timings))}

How the answers grow — every store measured with this script so far (from
`{args.work}/serve-runs.json`):

{chr(10).join(growth_rows(history))}

{notes}

Re-run: `{command}` (`--keep-store` then `--reuse-store` to time the server again without
rebuilding).
"""


OPTIONS = (
    ("--captures", int, 20, "one-day inputs of bulk traffic"),
    ("--days", int, 79, "days the inputs are spread over"),
    ("--packets", int, 4_600_000, "gen_darknet packets per input"),
    ("--mix-packets", int, 300_000, "gen_mix realistic-mix packets per input (sessions)"),
    ("--scenario-scale", float, 1.0, "scale of the seed case beside (npa-2017; 0: none)"),
    ("--work", Path, Path("/tmp/serve-bench"), "where stores and logs are kept"),
    ("--repeats", int, 10, "warm answers per URL, at most"),
    ("--budget", float, 60.0, "seconds of warm answers per URL (at least 3 answers)"),
    ("--timeout", float, 900.0, "seconds one answer may take"),
    ("--cli-repeats", int, 2, "runs of each CLI command"),
    ("--notes", Path, None, "a markdown file of findings to add to the section"),
)
FLAGS = (
    ("--keep-store", "keep the store afterwards"),
    ("--reuse-store", "reuse a kept store made with the same arguments"),
    ("--no-results", "print only; leave RESULTS.md"),
    ("--build-only", "build (or reuse) the store, print its facts and stop; implies --keep-store"),
    ("--settle", "time the URLs once the server has warmed its caches (its CPU idle)"),
)


def main(argv: list[str] | None = None) -> None:
    """Build the store, time the server's URLs and the CLI, print and record the results."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for flag, kind, default, text in OPTIONS:
        ap.add_argument(flag, type=kind, default=default, help=text)
    for flag, text in FLAGS:
        ap.add_argument(flag, action="store_true", help=text)
    args = ap.parse_args(argv)
    command = " ".join(["python", "bench/serve.py", *(sys.argv[1:] if argv is None else argv)])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    name = f"store-{args.captures}x{args.packets}+{args.mix_packets}-{args.days}d"
    name += f"-s{args.scenario_scale:g}"
    store_dir = work / name
    store = build_store(work, store_dir, args)
    store.rows = table_rows(store_dir)
    if args.build_only:
        print(json.dumps({"store": str(store_dir), **asdict(store)}, indent=1))
        return
    known = facts(store_dir, capture_days(args.captures, args.days))
    busy0, mine0, wall0 = busy_seconds(), children_seconds(), time.perf_counter()
    trace = work / "serve-trace.jsonl"
    with server(store_dir, work / "serve.log", trace) as (proc, port, ready):
        settled = wait_settled(proc.pid) if args.settle else 0.0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=args.timeout)
        timings, answers = time_probes(Live(conn, proc.pid, trace), known, args)
        peak = memory_mib(proc.pid, "VmHWM")
        conn.close()
    peers = time_peers(store_dir, known, answers, args.cli_repeats)
    spent = time.perf_counter() - wall0
    others = max(0.0, busy_seconds() - busy0 - (children_seconds() - mine0))
    cores = len(os.sched_getaffinity(0))
    load = (
        f"other processes used {others:,.0f} CPU-s while this measured for {spent:,.0f} s "
        f"on {cores} cores ({others / (spent * cores):.0%} of the machine; the server's "
        f"and the CLI's own CPU left out)"
    )
    history = remember(work, store, timings, command)
    if not args.keep_store:
        shutil.rmtree(store_dir, ignore_errors=True)
        store_dir.with_suffix(".json").unlink(missing_ok=True)
    body = render(args, command, store, (ready, settled), peak, load, timings, peers, history)
    print(body)
    if not args.no_results:
        update(SECTION, body)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
