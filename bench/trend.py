"""Trend benchmark (issue 2): ``teiten trend`` and ``teiten ports`` over 100 M stored packets.

Run by hand from the repository root, after ``bench/ingest.py``::

    python bench/trend.py [--captures 10] [--packets 10000000] [--work bench/work]

Builds the store cheaply: ten one-day captures of 10 M packets, each with its
own seed and day (2024-04-01 onwards), are generated with :mod:`gen_darknet`
and ingested with ``teiten ingest --threads 2`` one at a time, each capture
deleted once ingested, so the disk holds one capture and the store. Then
each query runs once to warm up and three times measured (wall time around
the child process, CPU and peak RSS from ``/usr/bin/time -v``); the best of
the three is compared with the target (trend < 5 s). The store is deleted
afterwards unless ``--keep-store``; ``--reuse-store`` skips the build when a
kept store with the same parameters exists. Rewrites the "Trend (issue 2)"
section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gen_darknet
import numpy as np
from benchlib import (
    BENCH,
    RESULTS,
    Run,
    busy_seconds,
    children_seconds,
    human_rate,
    machine,
    rate,
    run_timed,
    tree_bytes,
    update_section,
)

FIRST_DAY = "2024-04-01"
FIRST_SEED = 101
REPEATS = 3
SECTION = "Trend (issue 2)"
QUERIES = (
    ("trend", ["teiten", "trend", "23/tcp", "2323/tcp", "--split", "domestic"]),
    ("ports", ["teiten", "ports"]),
)


@dataclass
class Built:
    """The store the queries run over."""

    packets: int
    captures: int
    parquet_bytes: int
    seconds: float
    """Generating and ingesting, all captures."""
    ingest_seconds: list[float]
    reused: bool = False


def build_store(work: Path, store: Path, captures: int, packets: int, reuse: bool) -> Built:
    """Generate, ingest and delete ``captures`` captures of ``packets`` packets into ``store``."""
    meta_path = work / "trend-store.json"
    wanted = {"captures": captures, "packets": packets, "seed": FIRST_SEED, "day": FIRST_DAY}
    if reuse and store.is_dir() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted:
            return Built(
                captures * packets,
                captures,
                tree_bytes(store / "packets", "*.parquet"),
                meta["seconds"],
                meta["ingest_seconds"],
                reused=True,
            )
    shutil.rmtree(store, ignore_errors=True)
    meta_path.unlink(missing_ok=True)
    start = time.perf_counter()
    ingest_seconds = []
    first = np.datetime64(FIRST_DAY, "D")
    for i in range(captures):
        day = str(first + i)
        capture = work / f"trend-{day}.pcap"
        print(f"[{i + 1}/{captures}] generating {capture.name}…", flush=True)
        gen_darknet.generate(capture, packets, seed=FIRST_SEED + i, day=day)
        cmd = ["teiten", "ingest", str(capture), "--data", str(store), "--threads", "2",
               "--sensor-net", gen_darknet.SENSOR_NETWORK]  # fmt: skip
        run = run_timed(cmd, capture=True)
        capture.unlink()
        ingest_seconds.append(run.wall)
        print(f"  ingested in {run.wall:.1f}s ({human_rate(rate(packets, run.wall))})", flush=True)
    seconds = time.perf_counter() - start
    meta_path.write_text(
        json.dumps({**wanted, "seconds": seconds, "ingest_seconds": ingest_seconds}) + "\n"
    )
    return Built(
        captures * packets,
        captures,
        tree_bytes(store / "packets", "*.parquet"),
        seconds,
        ingest_seconds,
    )


def measure(cmd: list[str]) -> tuple[list[Run], str]:
    """One warm-up run (its output returned), then :data:`REPEATS` measured runs."""
    warmup = run_timed(cmd, capture=True)
    return [run_timed(cmd) for _ in range(REPEATS)], warmup.stdout


def main(argv: list[str] | None = None) -> None:
    """Build the store, time the queries, print and record the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captures", type=int, default=10)
    ap.add_argument("--packets", type=int, default=10_000_000, help="packets per capture")
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--keep-store", action="store_true", help="keep the store afterwards")
    ap.add_argument("--reuse-store", action="store_true", help="reuse a kept store if it fits")
    ap.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md")
    args = ap.parse_args(argv)
    command = " ".join(["python", "bench/trend.py", *(sys.argv[1:] if argv is None else argv)])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    store = work / "trend-data"
    box = machine()

    built = build_store(work, store, args.captures, args.packets, args.reuse_store)
    rows = [
        "| query | best of 3 s | median s | runs s | CPU s (best run) | peak RSS MiB "
        "| output lines |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    best: dict[str, float] = {}
    busy0, mine0, wall0 = busy_seconds(), children_seconds(), time.perf_counter()
    for name, cmd in QUERIES:
        full = [*cmd, "--data", str(store)]
        print(f"timing {' '.join(cmd)}…", flush=True)
        runs, output = measure(full)
        walls = [r.wall for r in runs]
        fastest = min(runs, key=lambda r: r.wall)
        best[name] = fastest.wall
        shown = " ".join(cmd) + " --data DIR"
        rows.append(
            f"| `{shown}` | {fastest.wall:.2f} | {statistics.median(walls):.2f} "
            f"| {', '.join(f'{w:.2f}' for w in walls)} | {fastest.cpu:.2f} "
            f"| {max(r.max_rss_kb for r in runs) / 1024:,.0f} "
            f"| {len(output.splitlines())} |"
        )
    measuring = time.perf_counter() - wall0
    others = max(0.0, busy_seconds() - busy0 - (children_seconds() - mine0))
    if not args.keep_store:
        shutil.rmtree(store, ignore_errors=True)
        (work / "trend-store.json").unlink(missing_ok=True)

    ok = best["trend"] < 5.0
    verdict = (
        f"- **{'MET' if ok else 'MISSED'}** — trend over {built.packets:,} stored "
        f"packets: target < 5 s; best of {REPEATS}: {best['trend']:.2f} s "
        f"(`teiten ports`, no target: {best['ports']:.2f} s)"
    )
    ingests = ", ".join(f"{s:.1f}" for s in built.ingest_seconds)
    how = "reused from an earlier run" if built.reused else f"built in {built.seconds / 60:.1f} min"
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M %Z")} with:

    {command}

{box.markdown()}
- store: {built.packets:,} packets from {built.captures} one-day captures of
  {built.packets // built.captures:,} packets (seeds {FIRST_SEED}–{FIRST_SEED + built.captures - 1},
  days from {FIRST_DAY}), made by `bench/gen_darknet.py` and ingested one at a time with
  `teiten ingest --threads 2` ({how}; ingest wall times s: {ingests}).
  Parquet under `packets/`: {built.parquet_bytes / 1e9:.2f} GB,
  {built.parquet_bytes / built.packets:.2f} bytes/packet.
- each query ran once to warm up, then {REPEATS} times; wall time around the `teiten`
  process (start-up included), CPU and peak RSS from `/usr/bin/time -v`. The machine is
  shared: other processes used {others:,.0f} CPU-s while the queries took {measuring:,.0f} s
  on {box.cores} cores ({others / (measuring * box.cores):.0%} of its capacity).

{chr(10).join(rows)}

{verdict}

Re-run: `{command}` (rebuilds the store; `--keep-store` then `--reuse-store` to time the
queries again without rebuilding).
"""
    print("\n".join(rows))
    print(verdict)
    if args.no_results:
        print(body)
    else:
        update_section(SECTION, body)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
