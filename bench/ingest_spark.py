"""Distributed ingest benchmark (issue 13): ``ingest --engine spark`` on local[1] and local[2]
against the local ``teiten ingest --threads 2``, over the same capture files.

Run by hand from the repository root (pyspark and Java 17 installed)::

    python bench/ingest_spark.py [--captures 4] [--packets 2500000] [--mix realistic]
                                 [--work bench/work/ingest_spark] [--repeats 1]

Writes ``--captures`` one-day captures of ``--packets`` packets with
``bench/gen_mix.py`` (seeds 1…N, consecutive days; kept and reused in
``--work``), then times, best of ``--repeats``, each into a fresh data folder:

- ``teiten ingest FILES --threads 2`` (one input after the other, decode and
  write overlapping in two threads);
- ``TEITEN_SPARK_MASTER=local[N] teiten ingest FILES --engine spark --threads T``
  for (N, T) = (1, 2), (2, 2), (2, 1) (one task per input, each decoding with T threads);
- the Spark session start alone (``session("local[N]")`` in a fresh Python), so
  the ingest's own time is the wall time less that.

Wall time is around the ``teiten`` process (``/usr/bin/time -v``; its CPU time
would miss Spark's JVM and Python workers, so it is not shown). "inputs s" adds
up the per-input seconds of the summary: one after the other for the local
run, the tasks' own times (on executors, partly at once) for Spark. Every run
must store the same number of packets (the table says so). Prints a Markdown block.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from benchlib import BENCH, Run, busy_seconds, machine, run_timed, warm
from gen_mix import generate

SENSOR_NET = "198.18.0.0/16"


def captures(work: Path, count: int, packets: int, mix: str) -> list[Path]:
    """The benchmark's captures, written once (seeds 1…count, one day each)."""
    out = []
    for i in range(count):
        path = work / f"{mix}-{packets}-{i + 1}.pcap"
        if not path.exists():
            r = generate(path, packets, mix=mix, seed=i + 1, day=f"2024-03-{i + 1:02d}")
            print(f"wrote {path} ({r.packets:,} packets) in {r.seconds:.1f}s", file=sys.stderr)
        out.append(path)
    return out


def stored_packets(data: Path) -> int:
    with sqlite3.connect(data / "catalog.sqlite") as db:
        (n,) = db.execute(
            "SELECT coalesce(sum(packets), 0) FROM inputs WHERE status='done'"
        ).fetchone()
    return int(n)


def input_seconds(run: Run) -> float:
    """The per-input seconds of an ingest summary, added up."""
    return sum(float(m) for m in re.findall(r" packets.* in ([0-9.]+)s$", run.stdout, re.M))


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captures", type=int, default=4)
    ap.add_argument("--packets", type=int, default=2_500_000)
    ap.add_argument("--mix", default="realistic")
    ap.add_argument("--work", type=Path, default=BENCH / "work" / "ingest_spark")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    files = captures(args.work, args.captures, args.packets, args.mix)
    teiten = [sys.executable, "-m", "teiten"]
    env = {"TEITEN_CONFIG": "", "SPARK_LOCAL_IP": "127.0.0.1"}
    data = args.work / "data"
    cases: list[tuple[str, list[str], dict[str, str], str, int]] = [
        ("local, --threads 2", [], env, "", 2),
        *(
            (
                f"spark {m}, --threads {t}",
                ["--engine", "spark"],
                {**env, "TEITEN_SPARK_MASTER": m},
                m,
                t,
            )
            for m, t in (("local[1]", 2), ("local[2]", 2), ("local[2]", 1))
        ),
    ]
    rows = []
    startups: dict[str, float] = {}
    busy0, wall0, load0 = busy_seconds(), time.perf_counter(), os.getloadavg()[0]
    for name, extra, case_env, master, threads in cases:
        runs, packets = [], 0
        for _ in range(args.repeats):
            shutil.rmtree(data, ignore_errors=True)
            for f in files:
                warm(f)
            cmd = [*teiten, "ingest", *map(str, files), "--data", str(data),
                   "--threads", str(threads), "--sensor-net", SENSOR_NET, *extra]  # fmt: skip
            runs.append(run_timed(cmd, env=case_env, capture=True))
            packets = stored_packets(data)
        if master and master not in startups:
            code = f"from teiten.engine.spark import session; session({master!r}).sparkContext"
            start = [sys.executable, "-c", code]
            startups[master] = best(
                [run_timed(start, env=case_env) for _ in range(args.repeats)]
            ).wall
        rows.append((name, best(runs), startups.get(master, 0.0), packets))
    shutil.rmtree(data, ignore_errors=True)
    busy, wall, load1 = busy_seconds() - busy0, time.perf_counter() - wall0, os.getloadavg()[0]
    cores = os.cpu_count() or 1

    base = rows[0][1].wall
    total = rows[0][3]
    print(f"### {args.captures} × {args.packets:,} packets ({args.mix} mix)\n")
    print(machine().markdown())
    print(
        f"- load: the CPUs were {busy / (wall * cores):.0%} busy in all ({busy:,.0f} CPU-s of all"
        f" processes, this benchmark's included, in {wall:,.0f} s on {cores} cores); load average"
        f" {load0:.1f} at the start, {load1:.1f} at the end."
    )
    print()
    print(
        "| ingest | wall s | packets/s | vs local | Spark start s | wall − start s "
        "| packets/s without start | inputs s | packets stored |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, run, startup, packets in rows:
        net = run.wall - startup
        print(
            f"| {name} | {run.wall:.1f} | {total / run.wall:,.0f} | {base / run.wall:.2f}× "
            f"| {startup:.1f} | {net:.1f} | {total / net:,.0f} | {input_seconds(run):.1f} "
            f"| {packets:,}{'' if packets == total else ' (DIFFERS)'} |"
        )
    print()
    for name, run, _startup, _packets in rows:
        print(f"- {name}: `{run.command}`")


if __name__ == "__main__":
    main()
