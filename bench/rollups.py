"""Rollups benchmark (issue 14): the per-port commands on the rollups vs the packets.

Run by hand from the repository root::

    python bench/rollups.py [--captures 10] [--packets 10000000] [--work bench/work]

Builds (or, with ``--reuse-store``, reuses) the store of ``bench/trend.py``:
``--captures`` one-day captures of ``--packets`` packets from
``bench/gen_darknet.py``, ingested one at a time, so every input has its
rollup files. Then times ``teiten trend 23/tcp 2323/tcp --split domestic``,
``teiten ports`` and ``teiten detect`` twice: as shipped (the statements read
the rollups) and forced onto the packets (``teiten.sql.traffic.USE_ROLLUPS``
cleared in the child process before the CLI starts: the same code path, no
user option). Each runs once to warm up, then three times; wall time around
the child process (start-up included), CPU and peak RSS from
``/usr/bin/time -v``. The outputs of trend and ports must be equal in both
modes. ``trend`` is timed once more over the first half of the days, to show
how it grows with days. Also reported: the rollup tables' bytes per stored
packet and rows per counted packet, and what computing the rollups costs
per packet (``teiten.store.rollup.Rollup.add`` over the stored packets, in
this process). Rewrites the "Rollups (issue 14)" section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gen_darknet
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import trend
from benchlib import BENCH, RESULTS, Run, busy_seconds, children_seconds, machine, run_timed
from benchlib import update_section as update

import teiten.store.writers as writers_module
from teiten.app.ingest import ingest
from teiten.config import load_settings
from teiten.schema import ROLLUPS
from teiten.store.lake import Lake
from teiten.store.rewrite import read_columns
from teiten.store.rollup import Rollup, to_table

SECTION = "Rollups (issue 14)"
REPEATS = 3
QUERIES = (
    ("trend", ["trend", "23/tcp", "2323/tcp", "--split", "domestic"], 0.5),
    ("ports", ["ports"], 1.0),
    ("detect", ["detect"], 30.0),
)
"""Name, arguments and the issue's target in seconds (for 10^9 packets; detect: a year)."""

MODES = {"rollups": True, "packets": False}


def child(rollups: bool, args: list[str], store: Path) -> list[str]:
    """A ``teiten`` process whose statements read the rollups or not."""
    prelude = (
        "import sys, teiten.sql.traffic as t; "
        f"t.USE_ROLLUPS = {rollups}; "
        "from teiten.cli.main import cli; sys.exit(cli())"
    )
    return [sys.executable, "-c", prelude, *args, "--data", str(store)]


def measure(cmd: list[str]) -> tuple[list[Run], str]:
    warmup = run_timed(cmd, capture=True)
    return [run_timed(cmd) for _ in range(REPEATS)], warmup.stdout


def rollup_cost(store: Path, limit: int = 4_000_000) -> tuple[int, float]:
    """Seconds per packet of :meth:`Rollup.add` over up to ``limit`` stored packets."""
    names = (
        "ts", "ip_version", "proto", "dst_port", "src_ip4", "src_ip6", "dst_ip4", "dst_ip6",
        "src_cc", "src_asn", "fp", "is_outbound", "decode_error",
    )  # fmt: skip
    rollup, n, seconds = Rollup(), 0, 0.0
    with Lake(store) as lake:
        for c in read_columns(lake, "packets", names):
            rows = np.arange(len(c["ts"]), dtype=np.int64)
            start = time.perf_counter()
            rollup.add(0, c, rows)
            seconds += time.perf_counter() - start
            n += len(rows)
            if n >= limit:
                break
        start = time.perf_counter()
        rollup.tables(0)
        seconds += time.perf_counter() - start
    return n, seconds / max(n, 1)


class _NoRollup(Rollup):
    """A rollup that keeps nothing: ingest as it was before the rollups."""

    def add(self, day: int, columns: Any, rows: Any) -> None:
        return None

    def tables(self, day: int) -> dict[str, pa.Table]:
        return {t: to_table(None, c) for t, c in ROLLUPS.items()}


def ingest_cost(work: Path, packets: int) -> list[str]:
    """``ingest`` of one generated capture, in this process, with and without the rollups
    (``teiten.store.writers.Rollup`` swapped for one that keeps nothing), best of 2 each."""
    capture = work / "rollups-ingest.pcap"
    gen_darknet.generate(capture, packets, seed=7, day="2024-05-01")
    lines = ["| threads | rollups | best of 2 s | M packets/s |", "|---:|---|---:|---:|"]
    try:
        for threads in (1, 2):
            for label, cls in (("written", Rollup), ("none", _NoRollup)):
                best = math.inf
                for _ in range(2):
                    writers_module.Rollup = cls  # type: ignore[misc]
                    shutil.rmtree(work / "ingest-data", ignore_errors=True)
                    settings = load_settings(
                        env={},
                        overrides={
                            "data": str(work / "ingest-data"),
                            "sensor_networks": [gen_darknet.SENSOR_NETWORK],
                            "threads": threads,
                        },
                    )
                    start = time.perf_counter()
                    ingest([capture], settings)
                    best = min(best, time.perf_counter() - start)
                lines.append(f"| {threads} | {label} | {best:.2f} | {packets / best / 1e6:.2f} |")
    finally:
        writers_module.Rollup = Rollup  # type: ignore[misc]
        capture.unlink(missing_ok=True)
        shutil.rmtree(work / "ingest-data", ignore_errors=True)
    return lines


def storage(store: Path) -> dict[str, tuple[int, int]]:
    """Bytes and rows of each table's listed files."""
    out = {}
    with Lake(store) as lake:
        for table in ("packets", "port_hours", "address_hours"):
            files = lake.files(table)
            out[table] = (
                sum(f.stat().st_size for f in files),
                sum(pq.ParquetFile(f).metadata.num_rows for f in files),
            )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captures", type=int, default=10)
    ap.add_argument("--packets", type=int, default=10_000_000, help="packets per capture")
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--keep-store", action="store_true", help="keep the store afterwards")
    ap.add_argument("--reuse-store", action="store_true", help="reuse a kept store if it fits")
    ap.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md")
    ap.add_argument(
        "--ingest-only",
        type=int,
        default=0,
        metavar="N",
        help="only time ingest of an N-packet capture with and without rollups; print it",
    )
    args = ap.parse_args(argv)
    if args.ingest_only:
        args.work.mkdir(parents=True, exist_ok=True)
        print("\n".join(ingest_cost(args.work.resolve(), args.ingest_only)))
        return
    command = " ".join(["python", "bench/rollups.py", *(sys.argv[1:] if argv is None else argv)])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    store = work / "trend-data"
    box = machine()
    built = trend.build_store(work, store, args.captures, args.packets, args.reuse_store)
    sizes = storage(store)
    if sizes["port_hours"][1] == 0:
        raise SystemExit(f"{store} has no rollups (built before them?): run without --reuse-store")

    rows = [
        "| query | reads | best of 3 s | median s | runs s | CPU s (best run) | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    best: dict[tuple[str, str], float] = {}
    rss: dict[tuple[str, str], float] = {}
    busy0, mine0, wall0 = busy_seconds(), children_seconds(), time.perf_counter()
    half_to = str(np.datetime64(trend.FIRST_DAY, "D") + max(args.captures // 2 - 1, 0))
    queries = [*QUERIES, ("trend, first half of the days", [*QUERIES[0][1], "--to", half_to], 0)]
    for name, cmd, _target in queries:
        outputs = {}
        for mode, flag in MODES.items():
            print(f"timing {name} on the {mode}…", flush=True)
            runs, outputs[mode] = measure(child(flag, cmd, store))
            walls = [r.wall for r in runs]
            fastest = min(runs, key=lambda r: r.wall)
            best[(name, mode)] = fastest.wall
            rss[(name, mode)] = max(r.max_rss_kb for r in runs) / 1024
            rows.append(
                f"| `teiten {' '.join(cmd)}` | {mode} | {fastest.wall:.2f} "
                f"| {statistics.median(walls):.2f} | {', '.join(f'{w:.2f}' for w in walls)} "
                f"| {fastest.cpu:.2f} | {rss[(name, mode)]:,.0f} |"
            )
        if name != "detect" and outputs["rollups"] != outputs["packets"]:
            raise SystemExit(f"{name}: the rollups and the packets printed different answers")
    measuring = time.perf_counter() - wall0
    others = max(0.0, busy_seconds() - busy0 - (children_seconds() - mine0))
    counted, per_packet = rollup_cost(store)
    if not args.keep_store:
        shutil.rmtree(store, ignore_errors=True)
        (work / "trend-store.json").unlink(missing_ok=True)

    packets = built.packets
    verdicts = []
    for name, cmd, target in QUERIES:
        fast, slow = best[(name, "rollups")], best[(name, "packets")]
        met = fast < target and rss[(name, "rollups")] < 1024 and packets >= 10**9
        verdicts.append(
            f"- **{'MET' if met else 'MISSED'}** — `teiten {' '.join(cmd)}`: {fast:.2f} s on "
            f"the rollups vs {slow:.2f} s on the packets ({slow / fast:.1f}×), peak "
            f"{rss[(name, 'rollups')]:,.0f} MiB; target < {target:g} s and < 1 GiB over 10^9 "
            f"packets{'' if packets >= 10**9 else f' (this store: {packets:,})'}"
        )
    half = best[("trend, first half of the days", "rollups")]
    lines = [f"| `{t}` | {b:,} | {b / packets:.2f} | {r:,} |" for t, (b, r) in sizes.items()]
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M %Z")} with:

    {command}

{box.markdown()}
- store: {packets:,} packets from {built.captures} one-day captures (`bench/trend.py`'s store,
  {"reused" if built.reused else f"built in {built.seconds / 60:.1f} min"}; ingest wall
  times s: {", ".join(f"{s:.1f}" for s in built.ingest_seconds)}).
- "rollups": the commands as shipped; "packets": the same statements forced onto
  `packets_raw` (`teiten.sql.traffic.USE_ROLLUPS = False` in the child). Outputs of trend
  and ports were compared: equal. Wall time includes start-up (about 0.4 s of imports).
  The machine is shared: other processes used {others:,.0f} CPU-s while the queries took
  {measuring:,.0f} s on {box.cores} cores.

| table | bytes | bytes/packet | rows |
|---|---:|---:|---:|
{chr(10).join(lines)}

Computing the rollups at ingest (`Rollup.add` over {counted:,} stored packets, one thread):
{per_packet * 1e9:.0f} ns/packet.

{chr(10).join(rows)}

{chr(10).join(verdicts)}

How they grow: on the rollups, each query reads the `port_hours` rows of its window
(`hour` is the first sort key and the only statistic), so it grows with the distinct
(hour, port, source, country, ASN, fingerprints) combinations the sensor saw in the
window — with packets only as far as they bring new sources or ports per hour: a
source that probes one port a thousand times an hour is one row. `trend` over the first
half of the days: {half:.2f} s vs {best[("trend", "rollups")]:.2f} s over all of them.
Sources stay exact (count distinct over the rows), so the generator's traffic — 300,000
sources, about 1.4 packets per source and hour — gives
{sizes["port_hours"][1] / packets:.2f} `port_hours` rows per packet; a darknet whose
sources sweep it (many packets per source, port and hour) rolls up much further.
`ports` and `detect` read every port; `trend` reads the same rows and keeps 2 ports.
"""
    print("\n".join(rows))
    print("\n".join(verdicts))
    if args.no_results:
        print(body)
    else:
        update(SECTION, body)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
