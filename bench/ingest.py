"""Ingest benchmark (issue 2): teiten against cat, dpkt, tshark, libtrace and a struct loop.

Run by hand from the repository root::

    python bench/ingest.py [--packets 10000000] [--work bench/work] [--skip-slow-peers]

It generates (or reuses) a darknet-like capture with :mod:`gen_darknet`,
reads it once into the page cache, then times every tool on that same file,
each as a child process under ``/usr/bin/time -v`` (wall time, CPU time,
peak RSS), re-reading the file with ``cat`` before each so all start warm:

* ``cat FILE > /dev/null``, the ceiling;
* ``teiten ingest`` with ``--threads 1`` pinned to one core (``taskset -c 0``,
  ``NUMBA_NUM_THREADS=1``) and with ``--threads 2`` on both cores, into fresh
  data directories; the Parquet bytes per packet at rest are reported;
* ``bench/decode_only.py``: teiten's decode + fingerprint + per-port
  aggregates without Parquet, pinned to one core;
* ``bench/peer_dpkt.py`` and ``tshark -T fields`` (on the first million
  packets only with ``--skip-slow-peers``);
* ``tracereport -p`` (libtrace) and ``bench/peer_struct.py`` on the full file.

teiten is warmed up first (one small ingest and decode) so numba loads its
compiled kernels from its cache, as every run after the first does. It
prints a table and rewrites the "Ingest (issue 2)" section of
``bench/RESULTS.md``. No thresholds are enforced: the targets are reported as
met or missed.

Issue 14: ``--mix realistic payload-heavy syn`` runs the same tools on each of
those captures (:mod:`gen_mix`'s mixes, :mod:`gen_darknet`'s SYN-only one) in
one run, profiles one ``teiten ingest --threads 1`` of the realistic mix with
cProfile (seconds per area: session path, decode, write, ...) and rewrites the
"Realistic mix (issue 14, baseline)" section instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gen_darknet
import gen_mix
from benchlib import (
    BENCH,
    RESULTS,
    ROOT,
    Run,
    busy_seconds,
    children_seconds,
    cut_pcap,
    human_rate,
    machine,
    rate,
    run_timed,
    tree_bytes,
    update_section,
    warm,
)

SENSOR_NET = gen_darknet.SENSOR_NETWORK
PREFIX = 1_000_000
TSHARK_FIELDS = (
    "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw", "ip.id",
)  # fmt: skip
ONE_CORE = {"NUMBA_NUM_THREADS": "1"}
SECTION = "Ingest (issue 2)"


@dataclass
class Measured:
    """One tool's run over a capture."""

    key: str
    label: str
    run: Run
    packets: int
    inproc_seconds: float | None = None
    """Time the tool itself reports (interpreter start-up and imports excluded)."""
    check: str = ""
    """What it counted, to show every tool did the work."""
    walls: list[float] = field(default_factory=list)
    """Wall times of every repetition (the best one is ``run``)."""
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return rate(self.packets, self.run.wall)

    @property
    def inproc_rate(self) -> float | None:
        return None if self.inproc_seconds is None else rate(self.packets, self.inproc_seconds)

    @property
    def cpu_rate(self) -> float:
        """Packets per CPU second (user + system): per core, and robust to a busy machine."""
        return rate(self.packets, self.run.cpu)


def best_of(repeat: int, step: Callable[[], Measured]) -> Measured:
    """Run ``step`` ``repeat`` times; keep the run with the least wall time."""
    tries = [step() for _ in range(repeat)]
    best = min(tries, key=lambda m: m.run.wall)
    best.walls = [m.run.wall for m in tries]
    return best


def ensure_capture(
    work: Path, packets: int, seed: int, day: str, mix: str = "syn"
) -> tuple[Path, dict[str, Any]]:
    """The capture for these parameters: reused when its sidecar matches, else generated.

    ``mix`` "syn" is :mod:`gen_darknet`'s SYN-only capture; the others are
    :mod:`gen_mix`'s mixes.
    """
    size = f"{packets // 1_000_000}M" if packets % 1_000_000 == 0 else str(packets)
    name = f"darknet-{size}" if mix == "syn" else f"mix-{mix}-{size}"
    path = work / f"{name}.pcap"
    meta_path = work / f"{name}.json"
    sources = 300_000
    wanted: dict[str, Any] = {"packets": packets, "seed": seed, "day": day, "sources": sources}
    if mix != "syn":
        wanted["mix"] = mix
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted and meta.get("bytes") == path.stat().st_size:
            meta["reused"] = True
            return path, meta
    print(f"generating {path} ({packets:,} packets)…", flush=True)
    if mix == "syn":
        r = gen_darknet.generate(path, packets, seed=seed, day=day, sources=sources)
    else:
        r = gen_mix.generate(path, packets, mix=mix, seed=seed, day=day, sources=sources)
    meta = {**wanted, **{k: v for k, v in asdict(r).items() if k != "path"}}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    meta["reused"] = False
    return path, meta


def teiten_ingest(capture: Path, data: Path, threads: int, packets: int) -> Measured:
    """``teiten ingest`` into a fresh ``data`` directory; one core when ``threads`` is 1."""
    shutil.rmtree(data, ignore_errors=True)
    cmd = ["teiten", "ingest", str(capture), "--data", str(data), "--threads", str(threads),
           "--sensor-net", SENSOR_NET]  # fmt: skip
    env = None
    if threads == 1:
        cmd = ["taskset", "-c", "0", *cmd]
        env = ONE_CORE
    warm(capture)
    run = run_timed(cmd, env=env, capture=True)
    m = re.search(r"total: ([\d,]+) packets .* in ([\d.]+)s", run.stdout)
    if not m:
        raise RuntimeError(f"unexpected teiten ingest output:\n{run.stdout}")
    stored = int(m.group(1).replace(",", ""))
    if stored != packets:
        raise RuntimeError(f"teiten stored {stored:,} packets, expected {packets:,}")
    at_rest = tree_bytes(data / "packets", "*.parquet")
    label = "teiten ingest --threads 1 (1 core)" if threads == 1 else "teiten ingest --threads 2"
    check = f"{stored:,} stored, {at_rest / stored:.2f} B/pkt Parquet"
    sessions = re.search(r"([\d,]+) sessions", run.stdout)
    if sessions:
        check += f", {sessions.group(1)} sessions"
    return Measured(f"ingest{threads}", label, run, stored, float(m.group(2)), check)


def python_tool(key: str, label: str, script: str, capture: Path, *extra: str) -> Measured:
    """One of the bench scripts that prints a JSON summary with ``packets`` and ``seconds``."""
    cmd = [sys.executable, str(BENCH / script), str(capture), *extra]
    env = None
    if key == "decode":
        cmd = ["taskset", "-c", "0", *cmd]
        env = ONE_CORE
    warm(capture)
    run = run_timed(cmd, env=env, capture=True)
    out = json.loads(run.stdout)
    if key == "decode":
        fp, top = out["fingerprints"], out["syn_top_ports"]
        check = f"Mirai {fp.get('mirai', 0):,}, 23/tcp SYN {top.get('23', 0):,}"
    else:
        check = f"Mirai {out.get('mirai', 0):,}, 23/tcp {out['top_ports'].get('23', 0):,}"
    m = Measured(key, label, run, out["packets"], out["seconds"], check)
    m.stages = out.get("stages", {})
    return m


def tshark(capture: Path, packets: int) -> Measured:
    """``tshark -T fields`` with seven fields, output to /dev/null."""
    fields = " ".join(f"-e {f}" for f in TSHARK_FIELDS)
    warm(capture)
    run = run_timed(f"tshark -r {capture} -T fields {fields} > /dev/null")
    return Measured("tshark", "tshark -T fields (7 fields)", run, packets)


def tshark_text(prefix: Path, packets: int) -> tuple[int, Run]:
    """Bytes of tshark's text output for ``prefix`` (``| wc -lc``), and that run."""
    fields = " ".join(f"-e {f}" for f in TSHARK_FIELDS)
    run = run_timed(f"tshark -r {prefix} -T fields {fields} | wc -lc", capture=True)
    lines, size = (int(x) for x in run.stdout.split()[:2])
    if lines != packets:
        raise RuntimeError(f"tshark printed {lines:,} lines for {packets:,} packets")
    return size, run


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (0 if unknown)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def tracereport(capture: Path, work: Path, packets: int) -> Measured:
    """libtrace ``tracereport -p pcapfile:FILE`` (the port report, written to ports.rpt)."""
    out = work / "tracereport"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    warm(capture)
    run = run_timed(["tracereport", "-p", f"pcapfile:{capture}"], cwd=out)
    report = (out / "ports.rpt").read_text()
    m = re.search(r"^\s*telnet:\s+\S+\s+\d+\s+(\d+)", report, re.M)
    check = f"23/tcp {int(m.group(1)):,}" if m else "ports.rpt written"
    shutil.rmtree(out, ignore_errors=True)
    return Measured("tracereport", "libtrace tracereport -p", run, packets, check=check)


def cat(capture: Path, packets: int) -> Measured:
    warm(capture)
    run = run_timed(f"cat {capture} > /dev/null")
    size = capture.stat().st_size
    return Measured("cat", "cat FILE > /dev/null", run, packets, check=f"{size / 1e6:,.0f} MB")


def sha256_seconds(capture: Path) -> float:
    """Seconds to hash the capture as teiten's duplicate check does (in this process)."""
    start = time.perf_counter()
    with capture.open("rb") as fh:
        hashlib.file_digest(fh, "sha256")
    return time.perf_counter() - start


def ratio(a: float, b: float | None) -> str:
    if not b:
        return "–"
    r = a / b
    return f"{r:,.0f}×" if r >= 100 else f"{r:,.1f}×" if r >= 1 else f"{r:.2f}×"


def table(results: list[Measured], peers: dict[str, float]) -> list[str]:
    """The results as Markdown table rows."""
    rows = [
        "| tool | packets | wall s | CPU s | packets/s (wall) | packets/CPU-s "
        "| in-process packets/s | vs dpkt | vs tshark | vs tracereport | vs cat "
        "| peak RSS MiB | counted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        inproc = r.inproc_rate
        rows.append(
            f"| {r.label} | {r.packets:,} | {r.run.wall:.2f} | {r.run.cpu:.2f} "
            f"| {human_rate(r.rate)} | {human_rate(r.cpu_rate)} "
            f"| {human_rate(inproc) if inproc else '–'} "
            f"| {ratio(r.rate, peers.get('dpkt'))} | {ratio(r.rate, peers.get('tshark'))} "
            f"| {ratio(r.rate, peers.get('tracereport'))} | {ratio(r.rate, peers.get('cat'))} "
            f"| {r.run.max_rss_kb / 1024:,.0f} | {r.check} |"
        )
    return rows


def verdicts(by: dict[str, Measured], bytes_per_packet: float) -> list[str]:
    """Each target of issue 2, measured value and MET / MISSED."""
    d, t1, t2 = by["decode"], by["ingest1"], by["ingest2"]
    dpkt, tsh, trace = by["dpkt"].rate, by["tshark"].rate, by["tracereport"].rate
    d_in = d.inproc_rate or 0.0
    peak = max(r.run.max_rss_kb for r in (d, t1, t2)) * 1024

    def line(ok: bool, text: str) -> str:
        return f"- **{'MET' if ok else 'MISSED'}** — {text}"

    return [
        line(
            d_in >= 10e6,
            f"decode + fingerprint + aggregates ≥ 10 M/s/core: {human_rate(d_in)} in-process on "
            f"one core ({human_rate(d.rate)} counting interpreter start-up and imports; "
            f"{human_rate(d.cpu_rate)} per CPU-second)",
        ),
        line(
            d.rate >= 4 * trace,
            f"decode + fingerprint + aggregates ≥ 4× tracereport: {ratio(d.rate, trace)} "
            f"(wall against wall; {ratio(d_in, trace)} in-process)",
        ),
        line(
            t1.rate >= 5e6,
            f"end to end ≥ 5 M/s on one core: {human_rate(t1.rate)} "
            f"({human_rate(t1.cpu_rate)} per CPU-second)",
        ),
        line(
            t2.rate >= 8e6,
            f"end to end ≥ 8 M/s on both cores: {human_rate(t2.rate)} "
            f"(CPU {t2.run.cpu:.1f} s in {t2.run.wall:.1f} s wall)",
        ),
        line(
            t1.rate >= 50 * dpkt,
            f"end to end ≥ 50× dpkt: {ratio(t1.rate, dpkt)} on one core, "
            f"{ratio(t2.rate, dpkt)} on two",
        ),
        line(
            t1.rate >= 100 * tsh,
            f"end to end ≥ 100× tshark: {ratio(t1.rate, tsh)} on one core, "
            f"{ratio(t2.rate, tsh)} on two",
        ),
        line(
            peak < 1.5e9,
            f"peak memory < 1.5 GB: {peak / 1e9:.2f} GB (largest of the three teiten runs)",
        ),
        line(bytes_per_packet <= 12, f"≤ 12 bytes/packet at rest: {bytes_per_packet:.2f}"),
    ]


def main(argv: list[str] | None = None) -> None:
    """Generate or reuse the capture, time every tool, print and record the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=10_000_000)
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument(
        "--skip-slow-peers",
        action="store_true",
        help="run dpkt and tshark on the first 1 M packets only",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs of each fast tool; the best counts (3)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--day", default="2024-03-01")
    ap.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument(
        "--mix",
        nargs="+",
        choices=MIX_CHOICES,
        help="issue 14: measure these captures side by side (syn = gen_darknet's SYN-only, "
        "the others gen_mix's) and write the section "
        f'"{MIX_SECTION}" instead',
    )
    ap.add_argument(
        "--section",
        default=MIX_SECTION,
        help="with --mix: the RESULTS.md section to write (a new title keeps the baseline)",
    )
    args = ap.parse_args(argv)
    command = shlex.join(["python", "bench/ingest.py", *(sys.argv[1:] if argv is None else argv)])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    box = machine()
    if args.mix:
        mixes_main(args, command, work)
        return

    capture, meta = ensure_capture(work, args.packets, args.seed, args.day)
    packets = int(meta["packets"])
    prefix = work / "first-1M.pcap"
    prefix_packets = cut_pcap(capture, prefix, min(PREFIX, packets))
    warm(capture)

    print("warming up teiten (numba cache)…", flush=True)
    run_timed([sys.executable, str(BENCH / "decode_only.py"), str(prefix)])
    teiten_ingest(prefix, work / "warmup-data", 2, prefix_packets)
    shutil.rmtree(work / "warmup-data", ignore_errors=True)

    slow = prefix if args.skip_slow_peers else capture
    slow_packets = prefix_packets if args.skip_slow_peers else packets
    note = " (first 1 M packets)" if args.skip_slow_peers else ""
    # tshark keeps state for every TCP conversation: its memory grows with the packets.
    print("measuring tshark's text output on the first 1 M packets…", flush=True)
    text_bytes, text_run = tshark_text(prefix, prefix_packets)
    tshark_need = text_run.max_rss_kb * 1024 * packets / prefix_packets
    tshark_file, tshark_packets, tshark_note = slow, slow_packets, note
    if slow is capture and tshark_need > available_bytes() - (4 << 30):
        tshark_file, tshark_packets = prefix, prefix_packets
        tshark_note = f" (first 1 M packets: the full file needs ~{tshark_need / 1e9:.0f} GB)"
    n = args.repeat
    steps: list[tuple[str, int, Callable[[], Measured]]] = [
        ("cat", n, lambda: cat(capture, packets)),
        ("teiten ingest --threads 1", n,
         lambda: teiten_ingest(capture, work / "data-t1", 1, packets)),
        ("teiten ingest --threads 2", n,
         lambda: teiten_ingest(capture, work / "data-t2", 2, packets)),
        ("decode_only", n, lambda: python_tool(
            "decode", "teiten decode + fp + aggregates (1 core)", "decode_only.py", capture,
            "--sensor-net", SENSOR_NET)),
        ("struct loop", n, lambda: python_tool(
            "struct", "CPython struct loop", "peer_struct.py", capture)),
        ("tracereport", n, lambda: tracereport(capture, work, packets)),
        ("tshark", 1, lambda: tshark(tshark_file, tshark_packets)),
        ("dpkt", 1, lambda: python_tool("dpkt", "dpkt loop", "peer_dpkt.py", slow)),
    ]  # fmt: skip
    results: list[Measured] = []
    busy0, mine0, wall0 = busy_seconds(), children_seconds(), time.perf_counter()
    for name, repeat, step in steps:
        print(f"running {name} ({'best of ' + str(repeat) if repeat > 1 else 'once'})…", flush=True)
        r = best_of(repeat, step)
        r.label += {"tshark": tshark_note, "dpkt": note}.get(r.key, "")
        results.append(r)
        print(f"  {r.packets:,} packets in {r.run.wall:.2f}s: {human_rate(r.rate)}", flush=True)
    measuring = time.perf_counter() - wall0
    others = max(0.0, busy_seconds() - busy0 - (children_seconds() - mine0))
    by = {r.key: r for r in results}
    sizes = {t: tree_bytes(work / f"data-t{t}" / "packets", "*.parquet") for t in (1, 2)}
    bytes_per_packet = sizes[1] / packets
    text_per_m = text_bytes * 1_000_000 / prefix_packets
    hash_s = sha256_seconds(capture)
    for t in (1, 2):
        shutil.rmtree(work / f"data-t{t}", ignore_errors=True)
    prefix.unlink(missing_ok=True)

    peers = {k: by[k].rate for k in ("dpkt", "tshark", "tracereport", "cat")}
    rows = table(results, peers)
    targets = verdicts(by, bytes_per_packet)
    print()
    print("\n".join(rows))
    print()
    print("\n".join(targets))

    runs = "\n".join(
        f"- {r.label}: wall s of each run {', '.join(f'{w:.2f}' for w in r.walls)}"
        for r in results
        if len(r.walls) > 1
    )
    stages = by["decode"].stages
    if stages:
        split = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        runs += f"\n- decode_only's best run, seconds per stage: {split}"
    gen = (
        f"reused from an earlier run (generated in {meta['seconds']:.1f} s)"
        if meta["reused"]
        else f"generated in {meta['seconds']:.1f} s "
        f"({rate(packets, meta['seconds']) / 1e6:.2f} M packets/s)"
    )
    mix = ", ".join(f"{k} {v / packets:.1%}" for k, v in meta["by_kind"].items())
    try:
        shown = capture.relative_to(ROOT)
    except ValueError:
        shown = capture
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M %Z")} with:

    {command}

{box.markdown()}
- capture: `{shown}`, {packets:,} packets, {meta["bytes"]:,} bytes, classic µs pcap,
  one day ({args.day}, seed {args.seed}), {meta["sources_seen"]:,} sources,
  destinations in 198.18.0.0/16; mix: {mix}. {gen} by `bench/gen_darknet.py`.
- every tool reads the file from the page cache (`cat FILE > /dev/null` before each run);
  wall time around the child process, CPU time and peak RSS from `/usr/bin/time -v`.
  "1 core" runs are pinned with `taskset -c 0` and `NUMBA_NUM_THREADS=1`; the others may
  use both cores. teiten was warmed up once (numba kernels loaded from numba's cache).
  Fast tools ran {n} times and the best wall time is shown; tshark and dpkt ran once.
  Ratios divide packets/s (wall), so start-up costs count for every tool.
- the machine is shared: other processes used {others:,.0f} CPU-s while these
  measurements took {measuring:,.0f} s on {box.cores} cores
  ({others / (measuring * box.cores):.0%} of its capacity). When wall time exceeds CPU
  time for a single-threaded tool, it waited for a core; packets/CPU-s is the figure
  that busy neighbours disturb least.

{chr(10).join(rows)}

{runs}
- teiten at rest: {bytes_per_packet:.2f} bytes/packet of Parquet under `packets/`
  (`--threads 1`; `--threads 2`: {sizes[2] / packets:.2f}); the capture itself is
  {meta["bytes"] / packets:.1f} bytes/packet.
- tshark text output for the same 7 fields: {text_per_m / 1e6:.1f} bytes/packet
  ({text_per_m / 1e6:.1f} MB per million packets), measured with `| wc -c` on the first
  {prefix_packets:,} packets; tshark's peak RSS there was
  {text_run.max_rss_kb / 1024:,.0f} MiB (it keeps state for every TCP conversation).
- SHA-256 of the capture (teiten's duplicate check, part of every ingest):
  {hash_s:.2f} s here ({human_rate(rate(packets, hash_s))}).
- tracereport counts every port it sees (source and destination) and writes `ports.rpt`;
  its run includes writing that report.

Targets (issue 2):

{chr(10).join(targets)}

Re-run: `{command}` (about {measuring / 60:.1f} min of measuring here;
add `--skip-slow-peers` to run dpkt and tshark on the first million packets only).
"""
    if args.no_results:
        print(body)
    else:
        update_section(SECTION, body)
        print(f"\nwrote {RESULTS}")


MIX_CHOICES = ("realistic", "payload-heavy", "syn")
MIX_SECTION = "Realistic mix (issue 14, baseline)"
AREAS = (
    ("session path (flows, classify)", ("/teiten/flows/", "/teiten/classify/")),
    ("decode + fingerprints", ("/teiten/decode/", "/teiten/fingerprint/", "/teiten/capture/")),
    ("write (store, Arrow, Parquet)", ("/teiten/store/", "/pyarrow/")),
    ("enrich", ("/teiten/enrich/",)),
    ("pipeline, CLI", ("/teiten/",)),
)
"""Where profiled time goes: the first area whose path fragment is in a function's file."""


def _area(filename: str) -> str | None:
    for name, parts in AREAS:
        if any(p in filename for p in parts):
            return name
    return None


def time_breakdown(profile: Path) -> tuple[float, dict[str, float]]:
    """Seconds per area of :data:`AREAS` in a cProfile dump, and the profile's total.

    A function outside the areas (numpy, builtins, numba dispatchers) counts
    for the area of whoever called it, split by the time each caller spent in
    it, walking up until a caller has an area ("other" when none has).
    """
    import pstats

    stats: dict[Any, Any] = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def shares(func: Any, depth: int = 0) -> dict[str, float]:
        """How ``func``'s own time splits over the areas (fractions summing to 1)."""
        if func in memo:
            return memo[func]
        area = _area(func[0])
        if area is not None:
            out = {area: 1.0}
        else:
            callers = stats[func][4] if func in stats else {}
            total = sum(c[2] for c in callers.values())
            out = {}
            if depth > 40 or not callers or total <= 0:
                out = {"other (imports, start-up, numpy outside teiten)": 1.0}
            else:
                memo[func] = {"other (imports, start-up, numpy outside teiten)": 1.0}  # cycles
                for caller, c in callers.items():
                    for k, v in shares(caller, depth + 1).items():
                        out[k] = out.get(k, 0.0) + v * c[2] / total
        memo[func] = out
        return out

    seconds: dict[str, float] = {}
    whole = 0.0
    for func, (_cc, _nc, tt, _ct, _callers) in stats.items():
        whole += tt
        for k, v in shares(func).items():
            seconds[k] = seconds.get(k, 0.0) + tt * v
    return whole, dict(sorted(seconds.items(), key=lambda kv: -kv[1]))


def profile_ingest(capture: Path, work: Path) -> tuple[Run, float, dict[str, float]]:
    """One ``teiten ingest --threads 1`` under cProfile, pinned to one core."""
    data, dump = work / "data-profile", work / "ingest.prof"
    shutil.rmtree(data, ignore_errors=True)
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "cProfile", "-o", str(dump),
           "-m", "teiten", "ingest", str(capture), "--data", str(data), "--threads", "1",
           "--sensor-net", SENSOR_NET]  # fmt: skip
    warm(capture)
    run = run_timed(cmd, env=ONE_CORE, capture=True)
    whole, seconds = time_breakdown(dump)
    shutil.rmtree(data, ignore_errors=True)
    dump.unlink(missing_ok=True)
    return run, whole, seconds


def mix_verdicts(mix: str, by: dict[str, Measured]) -> list[str]:
    """Issue 14's targets for this capture, measured value and MET / MISSED."""
    t1, t2 = by["ingest1"], by["ingest2"]

    def line(ok: bool, text: str) -> str:
        return f"- **{'MET' if ok else 'MISSED'}** — {text}"

    if mix == "realistic":
        return [
            line(t1.rate >= 2e6, f"realistic mix ≥ 2 M/s on one core: {human_rate(t1.rate)}"),
            line(t2.rate >= 3.5e6, f"realistic mix ≥ 3.5 M/s on two cores: {human_rate(t2.rate)}"),
        ]
    if mix == "payload-heavy":
        best = max(t1.rate, t2.rate)
        return [line(best >= 1e6, f"payload-heavy mix ≥ 1 M/s: {human_rate(best)} (best of 1/2)")]
    d_in = by["decode"].inproc_rate or 0.0
    return [
        line(t1.rate >= 5e6, f"SYN-only ≥ 5 M/s on one core: {human_rate(t1.rate)}"),
        line(t2.rate >= 8e6, f"SYN-only ≥ 8 M/s on two cores: {human_rate(t2.rate)}"),
        line(d_in >= 10e6, f"decode + fp + aggregates ≥ 10 M/s/core: {human_rate(d_in)}"),
    ]


def _shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it."""
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


def mix_steps(
    capture: Path, packets: int, slow: Path, slow_packets: int, work: Path, n: int
) -> list[tuple[str, int, Callable[[], Measured]]]:
    """The tools to run on one capture of :func:`mixes_main`, with their repetitions."""
    return [
        ("cat", n, lambda: cat(capture, packets)),
        ("teiten ingest --threads 1", n,
         lambda: teiten_ingest(capture, work / "data-t1", 1, packets)),
        ("teiten ingest --threads 2", n,
         lambda: teiten_ingest(capture, work / "data-t2", 2, packets)),
        ("decode_only", n, lambda: python_tool(
            "decode", "teiten decode + fp + aggregates (1 core)", "decode_only.py", capture,
            "--sensor-net", SENSOR_NET)),
        ("struct loop", n, lambda: python_tool(
            "struct", "CPython struct loop", "peer_struct.py", capture)),
        ("tracereport", n, lambda: tracereport(capture, work, packets)),
        ("tshark", 1, lambda: tshark(slow, slow_packets)),
        ("dpkt", 1, lambda: python_tool("dpkt", "dpkt loop", "peer_dpkt.py", slow)),
    ]  # fmt: skip


def mixes_main(args: argparse.Namespace, command: str, work: Path) -> None:
    """Issue 14: every tool on each mix in one run, a profile of the realistic one."""
    box = machine()
    n = args.repeat
    parts: list[str] = []
    targets: list[str] = []
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    busy0, mine0, wall0 = busy_seconds(), children_seconds(), time.perf_counter()
    for index, mix in enumerate(args.mix):
        capture, meta = ensure_capture(work, args.packets, args.seed, args.day, mix)
        packets = int(meta["packets"])
        prefix = work / "first-1M.pcap"
        prefix_packets = cut_pcap(capture, prefix, min(PREFIX, packets))
        if index == 0:
            print("warming up teiten (numba cache)…", flush=True)
            run_timed([sys.executable, str(BENCH / "decode_only.py"), str(prefix)])
            teiten_ingest(prefix, work / "warmup-data", 2, prefix_packets)
            shutil.rmtree(work / "warmup-data", ignore_errors=True)
        slow = prefix if args.skip_slow_peers else capture
        slow_packets = prefix_packets if args.skip_slow_peers else packets
        note = " (first 1 M packets)" if args.skip_slow_peers else ""
        steps = mix_steps(capture, packets, slow, slow_packets, work, n)
        results: list[Measured] = []
        for name, repeat, step in steps:
            print(f"[{mix}] {name} ({'best of ' + str(repeat) if repeat > 1 else 'once'})…")
            r = best_of(repeat, step)
            r.label += {"tshark": note, "dpkt": note}.get(r.key, "")
            results.append(r)
            print(f"  {r.packets:,} packets in {r.run.wall:.2f}s: {human_rate(r.rate)}", flush=True)
        by = {r.key: r for r in results}
        at_rest = tree_bytes(work / "data-t1" / "packets", "*.parquet") / packets
        for t in (1, 2):
            shutil.rmtree(work / f"data-t{t}", ignore_errors=True)
        prefix.unlink(missing_ok=True)
        peers = {k: by[k].rate for k in ("dpkt", "tshark", "tracereport", "cat")}
        rows = table(results, peers)
        kinds = ", ".join(f"{k} {v / packets:.1%}" for k, v in meta["by_kind"].items())
        gen = "gen_darknet.py" if mix == "syn" else f"gen_mix.py --mix {mix}"
        walls = "; ".join(
            f"{r.label}: {', '.join(f'{w:.2f}' for w in r.walls)}" for r in results if r.walls
        )
        verdicts_ = mix_verdicts(mix, by)
        targets += verdicts_
        parts.append(
            f"### {mix}: {packets:,} packets, {meta['bytes'] / packets:.1f} bytes/packet\n\n"
            f"Capture `{_shown(capture)}` by `bench/{gen}` (seed {args.seed}); kinds: "
            f"{kinds}.\n\n" + "\n".join(rows) + f"\n\n- wall s of each run: {walls}\n"
            f"- teiten at rest: {at_rest:.2f} bytes/packet of Parquet (`--threads 1`)\n"
            + "\n".join(verdicts_)
        )
        print("\n".join(rows), flush=True)
    measuring = time.perf_counter() - wall0
    others = max(0.0, busy_seconds() - busy0 - (children_seconds() - mine0))
    load1 = Path("/proc/loadavg").read_text().split()[:3]

    breakdown = ""
    if "realistic" in args.mix:
        capture, meta = ensure_capture(work, args.packets, args.seed, args.day, "realistic")
        print("profiling one teiten ingest --threads 1 of the realistic mix…", flush=True)
        run, whole, seconds = profile_ingest(capture, work)
        lines = "\n".join(
            f"| {k} | {v:.2f} | {v / whole:.0%} |" for k, v in seconds.items() if v >= 0.005
        )
        breakdown = f"""
### Where the time goes (realistic mix, one core)

One `teiten ingest --threads 1` of the realistic capture under cProfile
(`taskset -c 0 python -m cProfile -m teiten ingest …`; {run.wall:.1f} s wall with
the profiler's overhead, {whole:.1f} s of profiled time). Each function's own time
counts for its package; time in numpy, builtins, numba kernels and other libraries
counts for the teiten package that called them.

| area | seconds | share |
|---|---:|---:|
{lines}
"""
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M %Z")} with:

    {command}

{box.markdown()}
- load average before / after: {" ".join(load0)} / {" ".join(load1)}; other processes
  used {others:,.0f} CPU-s while these measurements took {measuring:,.0f} s on
  {box.cores} cores ({others / (measuring * box.cores):.0%} of its capacity).
- method as in "Ingest (issue 2)": page cache warm, `/usr/bin/time -v`, "1 core" pinned
  with `taskset -c 0` and `NUMBA_NUM_THREADS=1`, best of {n} for the fast tools, tshark
  and dpkt once; ratios divide packets/s (wall). tshark and tracereport do no
  reassembly or payload classification: they are the floor of reading the file.

{(chr(10) * 2).join(parts)}
{breakdown}
Targets (issue 14) measured here:

{chr(10).join(targets)}
"""
    if args.no_results:
        print(body)
    else:
        update_section(args.section, body)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
