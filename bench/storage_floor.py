"""How far the stored packets are from their entropy (issue 14: ≤ 12 bytes a packet).

Run by hand on a data folder that holds one ingested capture::

    python bench/storage_floor.py DATA [--packets N]

Prints each stored column's bytes per packet (from the Parquet footers) and, for the
fields a darknet's sources draw at random, what any lossless coding must spend on
them, estimated from the data:

* ``ts`` and ``src_ip4`` together: the entropy of the gaps between packets in time
  order plus that of the source of each packet (both plug-in, order 0). Sorting by
  source makes the source nearly free and the time dear; the sum is what is inherent.
* ``dst_ip4``: the plug-in entropy of the destinations (16 bits in a /16).
* ``tcp_seq``: 32 bits for each packet whose stored residual (``tcp_seq`` XOR the
  destination) is not 0; scanners other than Mirai draw it at random.
* ``ip_id``: the plug-in entropy of the stored residual (random but for ZMap and
  Masscan, whose formulas make it 0 or constant).

These are order-0 estimates, not strict bounds: a plug-in entropy of a sample
underestimates a little, and context can beat order 0 where a field depends on the
source (ZMap's constant IP id). The other columns (ports, window, packed shape and
lengths, fingerprints) are mostly constant per source and are only reported as stored.

``--encodings`` then asks what any Parquet file of these rows can reach (DuckDB and
Spark read only Parquet's standard encodings): each stored column is written alone,
in each of several row orders (``_order_keys``: arrival, by source, by source then shape as teiten
stores them, by source then port, by port then source), with each encoding Parquet offers for
its type (plain, dictionary, byte-stream-split, delta) and zstd at its strongest
level (19, against teiten's 1), and the least size is kept. A file has one row order,
so its least size is the best order's sum; the sum over columns of the least of *any*
order is printed too, as a bound no single order reaches. Slow: about three minutes
for 2 M packets.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

RANDOM = ("ts_us", "src_ip4", "dst_ip4", "tcp_seq", "ip_id")


def entropy_bits(values: npt.NDArray[Any]) -> float:
    """Plug-in (order 0) entropy of ``values`` in bits per value."""
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def stored_bytes(files: list[Path]) -> dict[str, int]:
    """Compressed bytes of each stored column over ``files``."""
    out: dict[str, int] = {}
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                col = meta.row_group(g).column(c)
                out[col.path_in_schema] = out.get(col.path_in_schema, 0) + col.total_compressed_size
    return out


def floor_bits(files: list[Path]) -> dict[str, float]:
    """Bits per packet the random fields need at least (see the module docstring)."""
    t = pq.read_table(files, columns=list(RANDOM))
    ts = np.sort(t.column("ts_us").to_numpy())
    return {
        "ts_us + src_ip4": entropy_bits(np.diff(ts)) + entropy_bits(t.column("src_ip4").to_numpy()),
        "dst_ip4": entropy_bits(t.column("dst_ip4").to_numpy()),
        "tcp_seq": 32.0 * float((t.column("tcp_seq").to_numpy() != 0).mean()),
        "ip_id": entropy_bits(t.column("ip_id").to_numpy()),
    }


def _order_keys(t: pa.Table) -> dict[str, npt.NDArray[Any] | None]:
    """Row orders to try, as indices into arrival (time) order (None: as it is)."""
    src = t["src_ip4"].to_numpy().astype(np.uint64) << np.uint64(32)
    shape = t["shape"].to_numpy().astype(np.uint64) >> np.uint64(31)
    port = t["dst_port"].to_numpy().astype(np.uint64)
    return {
        "arrival": None,
        "source": np.argsort(src, kind="stable"),
        "source, shape (teiten's)": np.argsort(src | shape, kind="stable"),
        "source, port": np.argsort(src | (port << np.uint64(16)), kind="stable"),
        "port, source": np.argsort((port << np.uint64(48)) | (src >> np.uint64(16)), kind="stable"),
    }


def _encodings(kind: pa.DataType) -> list[dict[str, Any]]:
    """Writer options for each Parquet encoding of a column of type ``kind``."""
    out: list[dict[str, Any]] = [{"use_dictionary": False}, {"use_dictionary": True}]
    if pa.types.is_integer(kind):
        out.append({"use_dictionary": False, "column_encoding": "BYTE_STREAM_SPLIT"})
        if kind.bit_width >= 32:
            out.append({"use_dictionary": False, "column_encoding": "DELTA_BINARY_PACKED"})
    return out


def encoding_floor(files: list[Path], scratch: Path) -> dict[str, dict[str, float]]:
    """Least bytes per packet of each column in each order (see the module docstring)."""
    table = pq.read_table(files)
    table = table.take(pa.array(np.argsort(table["ts_us"].to_numpy(), kind="stable")))
    n = table.num_rows
    out: dict[str, dict[str, float]] = {}
    for name, order in _order_keys(table).items():
        rows = table if order is None else table.take(pa.array(order))
        out[name] = {}
        for column in rows.column_names:
            one = rows.select([column])
            sizes = []
            for options in _encodings(one.schema.field(0).type):
                if "column_encoding" in options:
                    options = {**options, "column_encoding": {column: options["column_encoding"]}}
                pq.write_table(
                    one,
                    scratch,
                    row_group_size=1 << 20,
                    compression="zstd",
                    compression_level=19,
                    write_statistics=False,
                    **options,
                )
                sizes.append(scratch.stat().st_size / n)
            out[name][column] = min(sizes)
    return out


def print_encoding_floor(floor: dict[str, dict[str, float]]) -> None:
    """The least sizes as a Markdown table: a column per order, a row per column."""
    columns = list(next(iter(floor.values())))
    print("\n| column | " + " | ".join(floor) + " |\n|---|" + "---:|" * len(floor))
    for column in columns:
        if max(floor[o][column] for o in floor) >= 0.01:
            print(f"| `{column}` | " + " | ".join(f"{floor[o][column]:.2f}" for o in floor) + " |")
    print("| **sum** | " + " | ".join(f"**{sum(floor[o].values()):.2f}**" for o in floor) + " |")
    least = sum(min(floor[o][c] for o in floor) for c in columns)
    print(f"\nSum over columns of the least of any order: {least:.2f} bytes a packet.")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("data", type=Path, help="a data folder holding one ingested capture")
    ap.add_argument(
        "--encodings",
        action="store_true",
        help="also search Parquet's encodings and row orders for the least size (slow)",
    )
    args = ap.parse_args()
    files = sorted((args.data / "packets").rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no packet files under {args.data}")
    packets = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    stored = stored_bytes(files)
    total = sum(p.stat().st_size for p in files) / packets
    print(f"{packets:,} packets, {total:.2f} bytes a packet in {len(files)} file(s)\n")
    print("| column | stored, B/packet |\n|---|---:|")
    for name, size in sorted(stored.items(), key=lambda kv: -kv[1]):
        if size / packets >= 0.01:
            print(f"| `{name}` | {size / packets:.2f} |")
    floor = floor_bits(files)
    now = {
        "ts_us + src_ip4": stored["ts_us"] + stored["src_ip4"],
        **{k: stored[k] for k in ("dst_ip4", "tcp_seq", "ip_id")},
    }
    print("\n| random fields | stored, B/packet | order-0 entropy, B/packet |\n|---|---:|---:|")
    for name, bits in floor.items():
        print(f"| {name} | {now[name] / packets:.2f} | {bits / 8:.2f} |")
    rest = total - sum(now.values()) / packets
    print(
        f"| sum | {sum(now.values()) / packets:.2f} | {sum(floor.values()) / 8:.2f} |\n"
        f"\nEvery other column and the footers: {rest:.2f} bytes a packet."
    )
    if args.encodings:
        with tempfile.TemporaryDirectory() as tmp:
            print_encoding_floor(encoding_floor(files, Path(tmp) / "column.parquet"))


if __name__ == "__main__":
    main()
