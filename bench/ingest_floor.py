"""What ingest cannot go below: the pieces the issue requires, each done by a library alone.

Issue 14 asks ingest to store every packet (at most 12 bytes each) and to write the
rollups, at 5 M packets/s on one core for SYN scans and 2 M/s for the realistic mix.
This script measures, on one core, the least time the libraries teiten builds on
(Arrow's C++ compute and Parquet writer, DuckDB's vectorised engine, numpy) take for
a *subset* of that work, on the very rows an ingest stored:

* **decode**: teiten's decode + fingerprints + per-port aggregates
  (``bench/decode_only.py``, in process);
* **order**: sorting each row group (2^20 packets) of arrival order by source and
  shape, as ingest does (the order that brings the stored bytes from about 20 to 14 a
  packet; session 10), and gathering every column in that order: numpy ``argsort`` +
  Arrow ``take``, or Arrow ``sort_indices`` + ``take``, or DuckDB ``ORDER BY``;
* **write**: those packets to Parquet with teiten's writer options (zstd level 1, the
  declared encodings), or DuckDB ``COPY … (FORMAT parquet)``; and, for the bytes only,
  the packets sorted as a whole and in arrival order;
* **group**: the three groupings every ingest needs, by Arrow's hash ``group_by`` and by
  DuckDB's ``GROUP BY``: ``port_hours`` (hour, protocol, port, source, ASN,
  fingerprints: packets), ``source_ports`` (source, port: packets, first and last time)
  and ``address_hours`` (hour, destination).

The sum of the fastest library for each piece estimates the floor of a store of this
design: it leaves out sessions, sketches, port lists and top sources, the rollup files,
the catalog and start-up (the start-up of a process that imports the libraries is shown
beside it; reading the capture is in the decode), while a kernel written for one piece
may beat a general library at it.
The script first times ``teiten ingest --threads 1`` on the capture, on the same core,
and measures the pieces on the rows it stored::

    python bench/ingest_floor.py CAPTURE --sensor-net 198.18.0.0/15

Prints a Markdown table; ``--section TITLE`` also writes it into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

# One core for everything measured here, numba's threads included (set before import).
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
os.environ["NUMBA_NUM_THREADS"] = "1"

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from benchlib import machine, run_timed, update_section  # noqa: E402
from decode_only import run as decode_run  # noqa: E402

from teiten.store.arrow import writer_options  # noqa: E402
from teiten.store.layout import PACKED  # noqa: E402

HOUR_US = 3_600_000_000
ROW_GROUP = 1 << 20


def _proto_shift() -> int:
    """Where the protocol sits in the packed ``shape`` column."""
    shape = next(p for p in PACKED if p.name == "shape")
    return next(shift for column, shift, _ in shape.shifts() if column == "proto")


def _best(repeat: int, job: Callable[[], Any]) -> float:
    """The least wall seconds of ``repeat`` runs of ``job``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        job()
        best = min(best, time.perf_counter() - start)
    return best


def arrival_table(data: Path) -> pa.Table:
    """The stored packets of ``data``, back in arrival (time) order, with the
    rollups' derived keys (``hour``, ``proto``) as columns."""
    files = sorted((data / "packets").rglob("*.parquet"))
    table = pa.concat_tables(pq.read_table(f) for f in files).combine_chunks()
    ts = table["ts_us"].to_numpy()
    table = table.take(pa.array(np.argsort(ts, kind="stable")))
    shape = table["shape"].to_numpy()
    proto = ((shape >> _proto_shift()) & 0xFF).astype(np.uint8)
    hour = (table["ts_us"].to_numpy() // HOUR_US).astype(np.int32)
    return table.append_column("hour", pa.array(hour)).append_column("proto", pa.array(proto))


def _packet_columns(table: pa.Table) -> pa.Table:
    return table.drop_columns(["hour", "proto"])


def _key(table: pa.Table) -> npt.NDArray[np.uint64]:
    """The packets' sort key: source, then the shape's top 32 bits (ingest's
    ``store/order.py: packet_order`` keeps its top ``SHAPE_KEY_BITS``, 24: the same
    order but for the options length, which the Arrow and DuckDB sorts here also
    order by, with the whole shape)."""
    source = np.asarray(table["src_ip4"].to_numpy(), np.uint64) << np.uint64(32)
    return source | (np.asarray(table["shape"].to_numpy(), np.uint64) >> np.uint64(31))


def _runs(n: int, run: int) -> list[tuple[int, int]]:
    return [(start, min(start + run, n)) for start in range(0, n, run)]


def _run_order(key: npt.NDArray[np.uint64], spans: list[tuple[int, int]]) -> pa.Array:
    """The rows in order of ``key`` within each span (numpy's stable ``argsort``)."""
    return pa.array(np.concatenate([np.argsort(key[a:b], kind="stable") + a for a, b in spans]))


def order_pieces(table: pa.Table, repeat: int, run: int) -> dict[str, float]:
    """Seconds to sort each ``run`` rows of ``table`` by source then shape and gather
    every column in that order."""
    packets = _packet_columns(table)
    spans = _runs(packets.num_rows, run)
    con = duckdb.connect()
    con.execute("SET threads = 1")

    def numpy_order() -> pa.Table:
        return packets.take(_run_order(_key(packets), spans))

    def arrow_order() -> pa.Table:
        keys = [("src_ip4", "ascending"), ("shape", "ascending")]
        order = [
            pc.add(pc.sort_indices(packets.slice(a, b - a), keys), pa.scalar(a, pa.uint64()))
            for a, b in spans
        ]
        return packets.take(pa.chunked_array(order))

    def duckdb_order() -> pa.Table:
        parts = []
        for a, b in spans:
            con.register("part", packets.slice(a, b - a))
            parts.append(con.sql("SELECT * FROM part ORDER BY src_ip4, shape").to_arrow_table())
        return pa.concat_tables(parts)

    given = _run_order(_key(packets), spans)

    return {
        "Arrow take alone (the order given)": _best(repeat, lambda: packets.take(given)),
        "numpy argsort + Arrow take": _best(repeat, numpy_order),
        "Arrow sort_indices + take": _best(repeat, arrow_order),
        "DuckDB ORDER BY": _best(repeat, duckdb_order),
    }


def write_pieces(table: pa.Table, repeat: int, work: Path) -> dict[str, tuple[float, float]]:
    """Seconds and bytes a packet to write the packets as Parquet, sorted in row groups
    (as ingest stores them), sorted as a whole, and in arrival order."""
    packets = _packet_columns(table)
    n = packets.num_rows
    key = _key(packets)
    ordered = packets.take(_run_order(key, _runs(n, ROW_GROUP)))
    whole = packets.take(pa.array(np.argsort(key, kind="stable")))
    options = writer_options()
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("ordered", ordered.drop_columns(["src_as_org"]))
    out: dict[str, tuple[float, float]] = {}

    def arrow(rows: pa.Table, path: Path) -> Callable[[], None]:
        return lambda: pq.write_table(rows, path, row_group_size=ROW_GROUP, **options)

    a, b, c, d = (work / f"{x}.parquet" for x in "abcd")
    cases: list[tuple[str, Path, Callable[[], object]]] = [
        ("Arrow, teiten's options, row groups sorted", a, arrow(ordered, a)),
        (
            "DuckDB COPY (zstd), row groups sorted",
            d,
            lambda: con.execute(
                f"COPY ordered TO '{d}' (FORMAT parquet, COMPRESSION zstd, "
                f"ROW_GROUP_SIZE {ROW_GROUP})"
            ),
        ),
        ("Arrow, teiten's options, all rows sorted", b, arrow(whole, b)),
        ("Arrow, teiten's options, arrival order", c, arrow(packets, c)),
    ]
    for name, path, job in cases:
        seconds = _best(repeat, job)
        out[name] = (seconds, path.stat().st_size / n)
    return out


GROUPINGS: dict[str, tuple[list[str], str]] = {
    "port_hours": (["hour", "proto", "dst_port", "src_ip4", "src_asn", "fp"], "count(*)"),
    "source_ports": (["src_ip4", "dst_port"], "count(*), min(ts_us), max(ts_us)"),
    "address_hours": (["hour", "dst_ip4"], "count(*)"),
}


def group_pieces(table: pa.Table, repeat: int) -> dict[str, dict[str, tuple[float, int]]]:
    """Seconds and groups of each rollup's grouping, by Arrow and by DuckDB."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("arrival", table.drop_columns(["src_as_org"]))
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for rollup, (keys, aggregates) in GROUPINGS.items():
        aggs: list[tuple[str, str]] = [("ts_us", "count")]
        if "min(" in aggregates:
            aggs += [("ts_us", "min"), ("ts_us", "max")]
        sql = f"SELECT {', '.join(keys)}, {aggregates} FROM arrival GROUP BY ALL"

        def by_arrow(k: list[str] = keys, a: list[tuple[str, str]] = aggs) -> pa.Table:
            return table.group_by(k, use_threads=False).aggregate(a)

        def by_duckdb(statement: str = sql) -> pa.Table:
            return con.sql(statement).to_arrow_table()

        groups: dict[str, Callable[[], pa.Table]] = {
            "Arrow group_by": by_arrow,
            "DuckDB GROUP BY": by_duckdb,
        }
        out[rollup] = {}
        for name, job in groups.items():
            rows = job().num_rows
            out[rollup][name] = (_best(repeat, job), rows)
    return out


def _row(piece: str, library: str, seconds: float, n: int, note: str = "") -> str:
    return f"| {piece} | {library} | {seconds:.2f} | {seconds / n * 1e9:,.0f} | {note} |"


def ingest(capture: Path, data: Path, sensor_nets: list[str]) -> float:
    """Wall seconds of ``teiten ingest --threads 1`` on this process's core."""
    nets = [arg for net in sensor_nets for arg in ("--sensor-net", net)]
    core = str(min(os.sched_getaffinity(0)))
    cmd = ["taskset", "-c", core, "teiten", "ingest", str(capture), "--data", str(data)]
    return run_timed([*cmd, "--threads", "1", *nets], env={"NUMBA_NUM_THREADS": "1"}).wall


def start_up(repeat: int) -> float:
    """Least wall seconds of a Python process that imports the libraries ingest needs
    (numpy, numba, Arrow's Parquet) and does nothing else."""
    imports = "import numpy, numba, pyarrow, pyarrow.parquet"
    return min(run_timed([sys.executable, "-c", imports]).wall for _ in range(repeat))


def report(capture: Path, work: Path, sensor_nets: list[str], repeat: int) -> str:
    """Time teiten's ingest, then measure every piece; return the Markdown."""
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    whole = ingest(capture, work / "data", sensor_nets)
    started = start_up(repeat)
    decoded = decode_run(capture, sensor_nets)
    n = int(decoded["packets"])
    table = arrival_table(work / "data")
    if table.num_rows != n:
        raise SystemExit(f"the ingest stored {table.num_rows:,} packets of {n:,}")
    writes = write_pieces(table, repeat, work)
    orders = order_pieces(table, repeat, ROW_GROUP)
    groups = group_pieces(table, repeat)

    lines = [
        f"Capture `{capture}`, {n:,} packets; one core (`taskset`, numba, Arrow and DuckDB "
        f"with one thread); best of {repeat} for each library piece.",
        "",
        machine().markdown(),
        "",
        "| piece | library | seconds | ns a packet | |",
        "|---|---|---:|---:|---|",
        _row("whole ingest, `--threads 1`", "teiten", whole, n, f"{n / whole / 1e6:.2f} M/s"),
        _row("start-up: import numpy, numba, Arrow", "Python", started, n, "not in the sum"),
        _row("decode + fingerprints + aggregates", "teiten (numba)", decoded["seconds"], n),
    ]
    floor = float(decoded["seconds"])
    least = min(s for name, s in orders.items() if "alone" not in name)
    for name, seconds in orders.items():
        mark = (
            "fastest"
            if seconds == least
            else ("not a sort: its least part" if "alone" in name else "")
        )
        lines.append(_row("order by source, shape, in row groups", name, seconds, n, mark))
    floor += least
    sorted_writes = {k: v for k, v in writes.items() if "row groups" in k}
    least = min(s for s, _ in sorted_writes.values())
    for name, (seconds, per) in writes.items():
        mark = "fastest" if seconds == least and name in sorted_writes else ""
        lines.append(_row("write packets", name, seconds, n, f"{per:.2f} B/packet {mark}".strip()))
    floor += least
    for rollup, by in groups.items():
        least = min(s for s, _ in by.values())
        for name, (seconds, rows) in by.items():
            mark = ", fastest" if seconds == least else ""
            lines.append(_row(f"group `{rollup}`", name, seconds, n, f"{rows:,} groups{mark}"))
        floor += least
    lines += [
        "",
        f"Sum of the fastest of each piece: **{floor:.2f} s, {floor / n * 1e9:,.0f} ns a packet: "
        f"a ceiling of {n / floor / 1e6:.2f} M packets/s** on one core for this subset of "
        "ingest's work.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--sensor-net", action="append", default=[], metavar="CIDR")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--section", help="also write the table as this section of bench/RESULTS.md")
    args = ap.parse_args(argv)
    with TemporaryDirectory(dir=args.work) as tmp:
        text = report(args.capture, Path(tmp), args.sensor_net, args.repeat)
    print(text)
    if args.section:
        update_section(args.section, text)


if __name__ == "__main__":
    main()
