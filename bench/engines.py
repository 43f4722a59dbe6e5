"""Engines benchmark (issue 13): the same commands on DuckDB and on Spark local[1] and local[2].

Run by hand from the repository root (pyspark and Java 17 installed)::

    python bench/engines.py [--captures 10] [--packets 10000000] [--work bench/work]
                            [--keep-store] [--reuse-store] [--repeats 3] [--cli-repeats N]
                            [--queries trend,ports,…] [--engines duckdb,local[1],local[2]]
                            [--no-warm] [--no-vectorized]

The store is the one of ``bench/trend.py`` (its builder is reused: one-day
captures of ``--packets`` packets from ``bench/gen_darknet.py``, ingested one
at a time), so ``--keep-store``/``--reuse-store`` share it with that script.

Two timings, best of ``--repeats``:

- **CLI**: wall time around the ``teiten`` process (Python start, a Spark
  session start of 5–15 s, the query, output), CPU and peak RSS from
  ``/usr/bin/time -v``. That RSS is the Python process's: Spark's JVM is
  started by it but not waited for, so it is not counted there.
- **warm**: one process per engine that opens the engine once (the Spark
  session start is timed on its own) and then runs every command through the
  CLI's code in-process, so only the command's own work is timed; its peak
  RSS adds up the peaks of the Python process and of its children (the JVM).

Every engine's output must equal DuckDB's (the table says so). The
vectorized-reader part times the trend query warm on Spark over the first
day of the store three ways: as stored (BYTE_STREAM_SPLIT unsigned columns,
row-wise reader, teiten's setting), the same day rewritten with those columns
PLAIN (row-wise reader), and that rewrite with the vectorized reader; the
stored day with the vectorized reader is tried too (Spark refuses it).
Results go to a ``### N packets`` block of the "Engines (issue 13)" section of
``bench/RESULTS.md``; other blocks of that section are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BENCH,
    RESULTS,
    ROOT,
    Run,
    busy_seconds,
    children_seconds,
    machine,
    run_timed,
)
from trend import FIRST_DAY, build_store

SECTION = "Engines (issue 13)"
QUERIES: dict[str, list[str]] = {
    "trend": ["trend", "23/tcp", "2323/tcp", "--split", "domestic"],
    "ports": ["ports"],
    "detect": ["detect"],
    "payloads": ["payloads", "--cve", "CVE-2014-8361"],
    "query": [
        "query",
        "SELECT src_cc, count(*) AS packets, count(DISTINCT src) AS sources FROM packets"
        " WHERE proto = 'tcp' GROUP BY src_cc ORDER BY packets DESC, src_cc LIMIT 10",
    ],
}
"""The measured commands (without ``--data``)."""
ENGINES: dict[str, dict[str, str]] = {
    "duckdb": {"TEITEN_ENGINE": "duckdb"},
    "local[1]": {"TEITEN_ENGINE": "spark", "TEITEN_SPARK_MASTER": "local[1]"},
    "local[2]": {"TEITEN_ENGINE": "spark", "TEITEN_SPARK_MASTER": "local[2]"},
}
"""Engine label → the settings (as ``TEITEN_*`` variables) that choose it."""
VECTORIZED = "spark.sql.parquet.enableVectorizedReader"


@dataclass
class Timed:
    """The runs of one command on one engine, in one mode."""

    walls: list[float]
    output: str
    cpu: float = 0.0
    """CPU seconds of the fastest run (CLI mode)."""
    rss_kb: int = 0
    """Peak RSS over the runs (CLI mode: the Python process only)."""

    @property
    def best(self) -> float:
        return min(self.walls)


def _env(engine: str) -> dict[str, str]:
    return {
        "TEITEN_CONFIG": "",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TEITEN_TZ": "UTC",
        **ENGINES[engine],
    }


def cli(engine: str, name: str, store: Path, repeats: int) -> Timed:
    """``teiten COMMAND --data STORE`` as a child process, ``repeats`` times."""
    cmd = ["teiten", *QUERIES[name], "--data", str(store)]
    runs: list[Run] = [run_timed(cmd, env=_env(engine), capture=True) for _ in range(repeats)]
    fastest = min(runs, key=lambda r: r.wall)
    return Timed(
        [r.wall for r in runs], runs[0].stdout, fastest.cpu, max(r.max_rss_kb for r in runs)
    )


def _peak_rss_kb(pid: int) -> int:
    """Peak RSS (VmHWM) of a process plus that of its live descendants."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_peak_rss_kb(int(c)) for c in children)


def warm_child(engine: str, store: Path, names: Sequence[str], repeats: int, vector: bool) -> dict:
    """In this process: start the engine's session once, then run each command ``repeats`` times.

    Returns ``{"start": s, "queries": {name: {"walls": [...], "output": text}}, "rss_kb": n}``.
    """
    os.environ.update(_env(engine))
    from click.testing import CliRunner

    from teiten.cli.main import cli as teiten_cli

    start = 0.0
    if ENGINES[engine]["TEITEN_ENGINE"] == "spark":
        from teiten.engine import spark

        if vector:
            spark.NEEDED = tuple((k, "true" if k == VECTORIZED else v) for k, v in spark.NEEDED)
        t0 = time.perf_counter()
        spark.session(ENGINES[engine]["TEITEN_SPARK_MASTER"])
        start = time.perf_counter() - t0
    runner = CliRunner()
    out: dict[str, dict] = {}
    for name in names:
        walls, output = [], ""
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = runner.invoke(teiten_cli, [*QUERIES[name], "--data", str(store)])
            walls.append(time.perf_counter() - t0)
            if r.exit_code != 0:
                out[name] = {"walls": [], "output": "", "error": r.output.strip()[-300:]}
                break
            output = r.output
        else:
            out[name] = {"walls": walls, "output": output}
    return {"start": start, "queries": out, "rss_kb": _peak_rss_kb(os.getpid())}


def warm(
    engine: str, store: Path, names: Sequence[str], repeats: int, *, vector: bool = False
) -> dict:
    """:func:`warm_child` in a fresh Python process (one Spark master per process)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--warm-child", engine, "--data",
           str(store), "--queries", ",".join(names), "--repeats", str(repeats)]  # fmt: skip
    if vector:
        cmd.append("--vectorized-child")
    proc = subprocess.run(
        cmd, env={**os.environ, **_env(engine)}, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"warm run on {engine} failed:\n{proc.stderr[-2000:]}")
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def one_day_stores(store: Path, work: Path) -> tuple[Path, Path, int]:
    """Copies of the store's first day: as stored, and with the unsigned BYTE_STREAM_SPLIT
    columns rewritten PLAIN.

    Returns both folders and the day's packet count. Other tables' files are
    hard links; the catalogs list only the first day's packet files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from teiten.store.arrow import writer_options

    day = f"date={FIRST_DAY}"
    stored, plain = work / "day-stored", work / "day-plain"
    packets = 0
    for target in (stored, plain):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy2(store / "catalog.sqlite", target / "catalog.sqlite")
        with sqlite3.connect(target / "catalog.sqlite") as db:
            db.execute(
                "DELETE FROM files WHERE tbl = 'packets' AND path NOT LIKE ?", (f"%/{day}/%",)
            )
            listed = [(t, p, n) for t, p, n in db.execute("SELECT tbl, path, rows FROM files")]
        db.close()
        for table, rel, rows in listed:
            src, dst = store / rel, target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if target is plain and table == "packets":
                options = writer_options()
                f = pq.ParquetFile(src)
                unsigned = {
                    c.name
                    for c in f.schema_arrow
                    if pa.types.is_unsigned_integer(c.type)
                    and options["column_encoding"].get(c.name) == "BYTE_STREAM_SPLIT"
                }
                options["column_encoding"] = {
                    k: v for k, v in options["column_encoding"].items() if k not in unsigned
                }
                with pq.ParquetWriter(dst, f.schema_arrow, **options) as w:
                    for i in range(f.num_row_groups):
                        w.write_table(f.read_row_group(i))
            else:
                os.link(src, dst)
            if table == "packets" and target is stored:
                packets += rows
    return stored, plain, packets


def vectorized(store: Path, work: Path, repeats: int) -> tuple[list[str], int]:
    """The vectorized-reader rows (markdown) and the day's packet count."""
    stored, plain, packets = one_day_stores(store, work)
    rows = []
    cases = (
        ("as stored (BYTE_STREAM_SPLIT uint), row-wise reader (teiten)", stored, False),
        ("rewritten PLAIN uint, row-wise reader", plain, False),
        ("rewritten PLAIN uint, vectorized reader", plain, True),
        ("as stored, vectorized reader", stored, True),
    )
    expected = warm("duckdb", stored, ["trend"], 1)["queries"]["trend"]["output"]
    for label, folder, vector in cases:
        print(f"vectorized reader: {label}…", flush=True)
        result = warm("local[2]", folder, ["trend"], repeats, vector=vector)
        q = result["queries"]["trend"]
        if q["walls"]:
            walls = ", ".join(f"{w:.2f}" for w in q["walls"])
            same = "yes" if q["output"] == expected else "NO"
            rows.append(f"| {label} | {min(q['walls']):.2f} | {walls} | {same} |")
        else:
            error = q["error"].splitlines()[-1][:160].replace("|", "/")
            rows.append(f"| {label} | fails | `{error}` | – |")
    shutil.rmtree(stored, ignore_errors=True)
    shutil.rmtree(plain, ignore_errors=True)
    return rows, packets


def update_block(block: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the ``### block`` of the engines section; other blocks are kept."""
    text = path.read_text()
    head = f"## {SECTION}\n"
    if head not in text:
        text = text.rstrip() + f"\n\n{head}\nWritten by `bench/engines.py`.\n"
    start = text.index(head)
    nxt = text.find("\n## ", start + len(head))
    end = len(text) if nxt < 0 else nxt + 1
    section = text[start:end]
    new = f"### {block}\n\n{body.strip()}\n\n"
    marker = f"### {block}\n"
    if marker in section:
        a = section.index(marker)
        b = section.find("\n### ", a + len(marker))
        section = section[:a] + new + ("" if b < 0 else section[b + 1 :])
    else:
        section = section.rstrip() + "\n\n" + new
    text = text[:start] + section.rstrip() + "\n" + ("\n" + text[end:] if end < len(text) else "")
    path.write_text(text)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b > 0 else "–"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--captures", type=int, default=10)
    ap.add_argument("--packets", type=int, default=10_000_000, help="packets per capture")
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--keep-store", action="store_true", help="keep the store afterwards")
    ap.add_argument("--reuse-store", action="store_true", help="reuse a kept store if it fits")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per command (best taken)")
    ap.add_argument("--cli-repeats", type=int, help="timed CLI runs (default: --repeats)")
    ap.add_argument("--queries", default=",".join(QUERIES), help="commands to time")
    ap.add_argument("--engines", default=",".join(ENGINES), help="engines to time")
    ap.add_argument("--no-warm", action="store_true", help="CLI timings only")
    ap.add_argument("--no-vectorized", action="store_true", help="skip the vectorized-reader part")
    ap.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md")
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--warm-child", help=argparse.SUPPRESS)
    ap.add_argument("--vectorized-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cli_repeats = args.cli_repeats or args.repeats
    names = [q for q in args.queries.split(",") if q]
    engines = [e for e in args.engines.split(",") if e]
    unknown = [n for n in names if n not in QUERIES] + [e for e in engines if e not in ENGINES]
    if unknown:
        ap.error(f"unknown query or engine: {', '.join(unknown)}")
    if args.warm_child:
        result = warm_child(args.warm_child, args.data, names, args.repeats, args.vectorized_child)
        print(json.dumps(result))
        return

    command = " ".join(["python", "bench/engines.py", *(sys.argv[1:] if argv is None else argv)])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    store = work / "trend-data"
    box = machine()
    built = build_store(work, store, args.captures, args.packets, args.reuse_store)
    sessions = _catalog_rows(store, "sessions")
    busy0, mine0, wall0 = busy_seconds(), children_seconds(), time.perf_counter()
    load0 = os.getloadavg()[0]

    cli_times: dict[tuple[str, str], Timed] = {}
    warm_times: dict[str, dict] = {}
    for engine in engines:
        for name in names:
            print(f"CLI {engine}: {' '.join(QUERIES[name])[:60]}…", flush=True)
            cli_times[engine, name] = cli(engine, name, store, cli_repeats)
        if not args.no_warm:
            print(f"warm {engine}…", flush=True)
            warm_times[engine] = warm(engine, store, names, args.repeats)
    vector_rows: list[str] = []
    day_packets = 0
    if not args.no_vectorized and any(e != "duckdb" for e in engines):
        vector_rows, day_packets = vectorized(store, work, args.repeats)
    measuring = time.perf_counter() - wall0
    others = max(0.0, busy_seconds() - busy0 - (children_seconds() - mine0))
    load1 = os.getloadavg()[0]
    if not args.keep_store:
        shutil.rmtree(store, ignore_errors=True)
        (work / "trend-store.json").unlink(missing_ok=True)

    base = "duckdb" if "duckdb" in engines else engines[0]
    rows = [
        "| command | engine | CLI best s | CLI runs s | CLI CPU s | CLI peak RSS MiB (Python) "
        "| warm best s | warm runs s | CLI ratio | warm ratio | same output as DuckDB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in names:
        for engine in engines:
            c = cli_times[engine, name]
            w = warm_times.get(engine, {}).get("queries", {}).get(name)
            b = cli_times[base, name]
            wb = warm_times.get(base, {}).get("queries", {}).get(name)
            wbest = f"{min(w['walls']):.2f}" if w and w["walls"] else "–"
            wruns = ", ".join(f"{x:.2f}" for x in w["walls"]) if w and w["walls"] else "–"
            wratio = (
                _ratio(min(w["walls"]), min(wb["walls"]))
                if w and w["walls"] and wb and wb["walls"]
                else "–"
            )
            same = c.output == b.output and (not w or not wb or w["output"] == wb["output"])
            rows.append(
                f"| `{name}` | {engine} | {c.best:.2f} | {', '.join(f'{x:.2f}' for x in c.walls)} "
                f"| {c.cpu:.2f} | {c.rss_kb / 1024:,.0f} | {wbest} | {wruns} "
                f"| {_ratio(c.best, b.best)} | {wratio} | {'yes' if same else 'NO'} |"
            )
    starts = ", ".join(
        f"{e} {warm_times[e]['start']:.1f} s" for e in engines if e in warm_times and e != "duckdb"
    )
    rss = ", ".join(f"{e} {warm_times[e]['rss_kb'] / 1024:,.0f} MiB" for e in warm_times)
    queries = "\n".join(f"  - `{n}`: `teiten {' '.join(QUERIES[n])}`" for n in names)
    warm_note = (
        f"""- **warm**: one process per engine runs the same commands in-process (click's runner)
  after the engine's session has started (Spark session start: {starts or "–"}); best of
  {args.repeats}. Peak RSS of the warm process with its JVM: {rss}.
"""
        if warm_times
        else ""
    )
    how = "reused from an earlier run" if built.reused else f"built in {built.seconds / 60:.1f} min"
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M %Z")} with:

    {command}

{box.markdown()}, pyspark {_pyspark()}, {_java()}
- teiten imported from `{_teiten_dir()}`; repository HEAD {_head()}.
- store: {built.packets:,} packets ({built.captures} one-day captures of
  {built.packets // built.captures:,} packets from `bench/gen_darknet.py`, days from {FIRST_DAY};
  {how}); Parquet under `packets/`: {built.parquet_bytes / 1e9:.2f} GB; {sessions:,} session
  files (gen_darknet sends no payloads, so `payloads` lists nothing and times the fixed costs).
- commands (each with `--data DIR`; engine chosen by `TEITEN_ENGINE` and `TEITEN_SPARK_MASTER`):
{queries}
- **CLI**: wall time around the `teiten` process, Spark session start included; best of
  {cli_repeats} run(s) (no separate warm-up: the first run warms the page cache); CPU and peak
  RSS from `/usr/bin/time -v`, of the Python process only (Spark's JVM is not counted there).
{warm_note}- ratios are engine / DuckDB for the same command and mode.
- the machine is shared: other processes used {others:,.0f} CPU-s while this ran
  {measuring:,.0f} s on {box.cores} cores ({others / (measuring * box.cores):.0%} of its
  capacity); load average {load0:.1f} at the start, {load1:.1f} at the end.

{chr(10).join(rows)}
"""
    if vector_rows:
        body += f"""
Spark's vectorized Parquet reader (`{VECTORIZED}`), `trend` warm on `local[2]` over the
first day of the store ({day_packets:,} packets), best of {args.repeats}:

| files and reader | best s | runs s | same output as DuckDB |
|---|---:|---|---|
{chr(10).join(vector_rows)}
"""
    print(body)
    if not args.no_results:
        update_block(f"{built.packets:,} packets", body)
        print(f"wrote {RESULTS}")


def _catalog_rows(store: Path, table: str) -> int:
    with sqlite3.connect(store / "catalog.sqlite") as db:
        (n,) = db.execute("SELECT count(*) FROM files WHERE tbl = ?", (table,)).fetchone()
    db.close()
    return int(n)


def _pyspark() -> str:
    try:
        import pyspark
    except ImportError:
        return "not installed"
    return str(pyspark.__version__)


def _java() -> str:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    lines = out.stderr.strip().splitlines()
    return lines[0] if lines else "java ?"


def _teiten_dir() -> str:
    import teiten

    return str(Path(teiten.__file__).parent)


def _head() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()
