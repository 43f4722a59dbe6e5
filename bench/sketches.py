"""Day sketches benchmark (issue 14): trend, ports and detect over a big store.

Run by hand from the repository root, on a store built beforehand (for 10^9
packets: ``python bench/serve.py --captures 20 --packets 49700000 --build-only``)::

    python bench/sketches.py --store DIR [--with-packets]

Times ``teiten trend 23/tcp 2323/tcp --split domestic``, ``teiten ports`` and
``teiten detect`` as shipped (over this store they read the day sketches,
``port_sketches``, ``port_segments``) and forced onto the exact hourly rollup (setting
``exact_rollup_rows`` above the store's rollup rows), and with ``--with-packets``
onto the packets (``teiten.sql.traffic.USE_ROLLUPS`` cleared in the child). Each
runs once to warm up, then ``--repeats`` times; wall time around the child process
(start-up included), CPU and peak RSS from ``/usr/bin/time -v``. Compares the
outputs: packets must be equal, sources are reported as the sketches' error
against the exact counts. ``trend`` is also timed over the first half of the days
(how it grows with days). Rewrites the "Day sketches (issue 14)" section of
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from benchlib import Run, busy_seconds, children_seconds, machine, run_timed
from benchlib import update_section as update

SECTION = "Day sketches (issue 14)"
TARGETS = {"trend": 0.5, "ports": 1.0, "detect": 30.0}
"""The issue's targets in seconds (10^9 packets; detect: a year of every port)."""

EXACT = str(10**15)


def child(mode: str, args: list[str], store: Path) -> tuple[list[str], dict[str, str]]:
    """A ``teiten`` process reading the sketches, the hourly rollup, or the packets."""
    env = dict(os.environ)
    env.pop("TEITEN_EXACT_ROLLUP_ROWS", None)
    if mode != "sketches":
        env["TEITEN_EXACT_ROLLUP_ROWS"] = EXACT
    prelude = (
        "import sys, teiten.sql.traffic as t; "
        f"t.USE_ROLLUPS = {mode != 'packets'}; "
        "from teiten.cli.main import cli; sys.exit(cli())"
    )
    return [sys.executable, "-c", prelude, *args, "--data", str(store)], env


def measure(mode: str, args: list[str], store: Path, repeats: int) -> tuple[list[Run], str]:
    cmd, env = child(mode, args, store)
    warmup = run_timed(cmd, env=env, capture=True)
    return [run_timed(cmd, env=env) for _ in range(repeats)], warmup.stdout


IN_PROCESS = """
import json, sys, time
import teiten.sql.traffic as t
t.USE_ROLLUPS = {rollups}
from teiten.app.traffic import port_ranking, port_trend
from teiten.config import load_settings
settings = load_settings(overrides={{"data": {store!r}}})
calls = {{
    "trend": lambda: port_trend(settings, ["23/tcp", "2323/tcp"], split="domestic"),
    "ports": lambda: port_ranking(settings),
}}
call = calls[{name!r}]
call()
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""
"""A child that answers one question ``repeats`` times after a warm-up, in one process
(as the API does: an engine opened per answer), and prints the seconds of each."""


def in_process(mode: str, name: str, store: Path, repeats: int) -> list[float]:
    """Seconds per answer of ``trend``/``ports`` inside one process (no start-up)."""
    code = IN_PROCESS.format(
        rollups=mode != "packets", store=str(store), name=name, repeats=repeats
    )
    _, env = child(mode, [], store)
    run = run_timed([sys.executable, "-c", code], env=env, capture=True)
    times: list[float] = json.loads(run.stdout.strip().splitlines()[-1])
    return times


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def key_columns(name: str) -> tuple[str, ...]:
    return {"trend": ("port", "date", "segment"), "ports": ("port",)}.get(name, ())


def compare(name: str, exact: str, sketched: str) -> str:
    """How the sketches' answer differs from the exact one."""
    if name == "detect":
        a, b = json.loads(exact or "[]"), json.loads(sketched or "[]")
        same = [(x.get("port"), x.get("onset")) for x in a] == [
            (x.get("port"), x.get("onset")) for x in b
        ]
        verdict = "equal" if same else "DIFFER"
        return f"{len(b)} alert(s) vs {len(a)} exact; ports and onsets {verdict}"
    a, b = rows_of(exact), rows_of(sketched)
    keys = key_columns(name)
    ka = {tuple(r[k] for k in keys): r for r in a}
    kb = {tuple(r[k] for k in keys): r for r in b}
    common = sorted(set(ka) & set(kb))
    packets_equal = all(ka[k]["packets"] == kb[k]["packets"] for k in common)
    errors = [
        int(kb[k]["sources"]) / int(ka[k]["sources"]) - 1
        for k in common
        if int(ka[k]["sources"]) >= 100
    ]
    if not errors:
        return f"{len(common)} rows in both; packets {'equal' if packets_equal else 'DIFFER'}"
    rms = math.sqrt(sum(e * e for e in errors) / len(errors))
    worst = max(errors, key=abs)
    same_set = set(ka) == set(kb)
    return (
        f"{len(common)} rows in both{'' if same_set else ' (row sets differ)'}; packets "
        f"{'equal' if packets_equal else 'DIFFER'}; sources (rows with ≥ 100): rms error "
        f"{rms:.2%}, worst {worst:+.2%} over {len(errors)} rows"
    )


def storage(store: Path) -> list[tuple[str, int, int]]:
    out = []
    for table in ("packets", "port_hours", "port_sketches", "port_segments", "address_hours"):
        files = list((store / table).rglob("*.parquet"))
        out.append(
            (
                table,
                sum(f.stat().st_size for f in files),
                sum(pq.ParquetFile(f).metadata.num_rows for f in files),
            )
        )
    return out


def span_days(store: Path) -> list[str]:
    return sorted(p.name.removeprefix("date=") for p in (store / "packets").rglob("date=*"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="a data folder built beforehand")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs on the sketches")
    ap.add_argument(
        "--exact-repeats", type=int, default=1, help="timed runs on the exact rollup, packets"
    )
    ap.add_argument("--with-packets", action="store_true", help="also time the packets")
    ap.add_argument(
        "--queries", default="trend,ports,detect", help="which of trend, ports, detect to time"
    )
    ap.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md")
    args = ap.parse_args(argv)
    store = args.store.resolve()
    command = " ".join(["python", "bench/sketches.py", *(sys.argv[1:] if argv is None else argv)])
    tables = storage(store)
    packets = tables[0][2]
    days = span_days(store)
    half = days[len(days) // 2 - 1] if len(days) > 1 else days[0]
    queries: list[tuple[str, str, list[str]]] = [
        ("trend", "trend 23/tcp 2323/tcp --split domestic",
         ["trend", "23/tcp", "2323/tcp", "--split", "domestic", "--format", "csv"]),
        ("trend", f"trend … --to {half}",
         ["trend", "23/tcp", "2323/tcp", "--split", "domestic", "--to", half, "--format", "csv"]),
        ("ports", "ports", ["ports", "--format", "csv"]),
        ("detect", "detect", ["detect", "--format", "json"]),
    ]  # fmt: skip
    wanted = set(args.queries.split(","))
    queries = [q for q in queries if q[0] in wanted]
    modes = ["sketches", "exact", *(["packets"] if args.with_packets else [])]
    busy0, mine0 = busy_seconds(), children_seconds()
    results: list[dict[str, Any]] = []
    for name, label, argv_ in queries:
        outputs = {}
        for mode in modes:
            repeats = args.repeats if mode == "sketches" else args.exact_repeats
            runs, out = measure(mode, argv_, store, repeats)
            outputs[mode] = out
            walls = [r.wall for r in runs]
            best = min(runs, key=lambda r: r.wall)
            results.append(
                {
                    "name": name, "label": label, "mode": mode, "best": best.wall,
                    "median": statistics.median(walls), "runs": walls,
                    "cpu": best.user + best.sys, "rss": max(r.max_rss_kb for r in runs) / 1024,
                }
            )  # fmt: skip
            if name in ("trend", "ports") and "--to" not in label:
                inner = in_process(mode, name, store, repeats)
                results[-1]["inner"] = min(inner)
            print(f"{label} [{mode}]: best {best.wall:.2f} s", flush=True)
        results[-len(modes)]["compare"] = compare(name, outputs["exact"], outputs["sketches"])
    others = max(0.0, busy_seconds() - busy0 - (children_seconds() - mine0))
    body = render(command, store, packets, days, tables, results, others)
    print(body)
    if not args.no_results:
        update(SECTION, body)


def render(
    command: str,
    store: Path,
    packets: int,
    days: list[str],
    tables: list[tuple[str, int, int]],
    results: list[dict[str, Any]],
    others: float,
) -> str:
    m = machine()
    lines = [
        f"Measured with:\n\n    {command}\n",
        f"- machine: {m.cores} cores, {m.cpu}, {m.memory_gib:.0f} GiB RAM; other processes "
        f"used {others:,.0f} CPU-s meanwhile",
        f"- store `{store.name}`: {packets:,} packets over {len(days)} day files "
        f"({days[0]}..{days[-1]})",
        "",
        "| table | bytes | bytes/packet | rows |",
        "|---|---:|---:|---:|",
    ]
    for table, size, rows in tables:
        lines.append(f"| `{table}` | {size:,} | {size / max(packets, 1):.2f} | {rows:,} |")
    lines += [
        "",
        "| query | reads | best s | median s | runs s | CPU s | peak RSS MiB | in-process s "
        "| sketches vs exact |",
        "|---|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in results:
        runs = ", ".join(f"{w:.2f}" for w in r["runs"])
        inner = f"{r['inner']:.3f}" if "inner" in r else "–"
        lines.append(
            f"| `teiten {r['label']}` | {r['mode']} | {r['best']:.2f} | {r['median']:.2f} | "
            f"{runs} | {r['cpu']:.2f} | {r['rss']:,.0f} | {inner} | {r.get('compare', '')} |"
        )
    lines.append("")
    for r in results:
        if r["mode"] != "sketches" or "--to" in r["label"]:
            continue
        target = TARGETS[r["name"]]
        small = r["rss"] < 1024

        what = f"`teiten {r['label']}` < {target:g} s and < 1 GiB over {packets:,} packets"
        if "inner" in r:  # the answer (as the API gives it), then the command
            lines.append(
                f"- {_verdict(r['inner'] < target, small)} in process,"
                f" {_verdict(r['best'] < target, small)}"
                f" as a command — {what}: {r['inner']:.3f} s in process (engine opened"
                f" per answer), {r['best']:.2f} s whole process, peak {r['rss']:,.0f} MiB"
            )
        else:
            lines.append(
                f"- {_verdict(r['best'] < target, small)} — {what}: {r['best']:.2f} s whole"
                f" process, peak {r['rss']:,.0f} MiB"
            )
    return "\n".join(lines) + "\n"


def _verdict(fast: bool, small: bool) -> str:
    return "**MET**" if fast and small else "**MISSED**"


if __name__ == "__main__":
    main()
