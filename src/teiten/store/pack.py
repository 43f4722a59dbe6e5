"""Packs: the day tables of many inputs in one file per table and UTC month.

Every input writes its own file of each day table (``SKETCH_TABLES``: the day
sketches and the port lists) per day file it fills, so a store holds as many of
them as inputs times days: 119–238 per table at 10^9 packets in 20 inputs, 8,760
a year for a sensor that ingests hourly. Every statement pays for each file it
opens and each row group whose statistics it checks (a port's rows of
``port_groups``: 70 ms from 119 files, 35 ms from the same rows in one file).

A pack holds the rows of one table for one sensor and UTC month (the files'
``date=`` folders), of every input listed in it, merged as a reader merges
them (``teiten.store.sketch.combine``, ``segment_rows``,
``teiten.store.portlists.combine_groups``, ``combine_tops``), the busy port days
of its inputs first, in the row groups of the table (``write_file``). It
replaces those inputs' files of the table in one catalog transaction
(``Catalog.packs``); a later input adds files of its own again, which the next
packing of the month takes in with the month's pack. Rebuilding the day tables
(``teiten rollup``, ``teiten enrich``) drops the packs with the other files.

``source_ports`` (``teiten.store.sourceports``) and ``address_hours`` are packed
the same way but by address: a month's rows merged one IPv4 range at a time
(then IPv6), each key once, in address order, so one address is one row group of
the pack; ``teiten enrich`` rewrites ``source_ports``' packs in place of
rebuilding them (``address_hours`` has no source columns).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.schema import ROLLUP_ROW_GROUP_ROWS, ROLLUPS
from teiten.store import hoursketch, portlists, sourceports
from teiten.store.arrow import DayTableWriter, file_options
from teiten.store.lake import Lake
from teiten.store.paths import inputs_of, month_of
from teiten.store.rollup import merged_addresses, schema
from teiten.store.sketch import (
    SKETCH_TABLES,
    SketchCut,
    busy_first,
    combine,
    port_day_keys,
    segment_rows,
)
from teiten.store.transaction import Transaction

PACKED_TABLES = (*SKETCH_TABLES, sourceports.TABLE, "address_hours")
"""The tables packed by month: the day tables, and the rollups sorted by address."""


@dataclass
class Packed:
    """What a packing did."""

    months: int = 0
    """Sensor months packed."""
    files: int = 0
    """Files (inputs' files and earlier packs) replaced."""
    packs: int = 0
    """Packs written."""
    rows: int = 0
    """Rows of the packs."""


Month = tuple[str, str]
"""A sensor and a UTC month (``YYYY-MM``)."""


@dataclass(frozen=True)
class Listing:
    """The listed files of each day table per :data:`Month`, and the inputs of each pack:
    read from the catalog once per packing."""

    files: dict[str, dict[Month, list[str]]]
    packed: dict[str, dict[str, list[int]]]

    @classmethod
    def of(cls, lake: Lake) -> Listing:
        files: dict[str, dict[Month, list[str]]] = {}
        for table in PACKED_TABLES:
            by_month = files.setdefault(table, {})
            for rel in lake.catalog.files(table):
                key = month_of(rel)
                if key is not None:
                    by_month.setdefault(key, []).append(rel)
        packed = {
            table: {path: inputs for path, _, inputs in lake.catalog.packs(table)}
            for table in PACKED_TABLES
        }
        return cls(files, packed)

    def due(self, min_files: int) -> list[Month]:
        """The months with at least ``min_files`` files (at least 2) of a day table."""
        keys = {
            k for by_month in self.files.values() for k, rels in by_month.items()
            if len(rels) >= max(2, min_files)
        }  # fmt: skip
        return sorted(keys)

    def inputs(self, table: str, rels: Sequence[str]) -> list[int]:
        """The inputs whose rows the files ``rels`` of ``table`` hold."""
        found = inputs_of(rels)  # an input's own files; a pack's from the catalog
        for rel in rels:
            found |= set(self.packed[table].get(rel, ()))
        return sorted(found)


QUIET_SCALE = 4
"""A pack's quiet row groups are this many times those of an input's file
(ROLLUP_ROW_GROUP_BYTES): a month holds 30 times the rows, and each group costs every
statement its statistics check (a port's rows of a month's ``port_groups``: 13 ms in
1,021 groups, 7 ms in 364)."""

PORTS_PER_PIECE = 4096
"""Ports a pack merges at a time (with both protocols): memory follows a sixteenth of
a month's rows, not the month's."""


def _pieces() -> list[tuple[bool, int, int]]:
    """``(busy, first port, last port)`` of each piece of a pack, in the order written:
    the busy rows of every port, then the rest by port range."""
    ranges = [(lo, lo + PORTS_PER_PIECE - 1) for lo in range(0, 1 << 16, PORTS_PER_PIECE)]
    return [(True, 0, (1 << 16) - 1)] + [(False, lo, hi) for lo, hi in ranges]


def _read(path: Path, piece: tuple[bool, int, int]) -> pa.Table:
    """The rows of one file in a piece (row groups skipped by their statistics)."""
    busy, lo, hi = piece
    where = [("busy", "=", busy), ("dst_port", ">=", lo), ("dst_port", "<=", hi)]
    return pq.read_table(path, filters=where)


def _flagged(rows: pa.Table, busy: bool) -> pa.Table:
    """``rows`` sorted by protocol, port and day (what statistics skip by), ``busy`` set."""
    keys = port_day_keys(rows) if rows.num_rows else np.zeros(0, np.int64)
    marked = busy_first(rows, np.unique(keys) if busy else np.zeros(0, np.int64))
    return marked


_COMBINE = {
    "port_sketches": combine,
    "port_groups": portlists.combine_groups,
    "port_tops": portlists.combine_tops,
    "port_hour_segments": hoursketch.combine_hours,
}
"""How the rows of many files of a day table merge (``port_segments``: from the merged
``port_sketches``)."""


def _write_pack(
    tx: Transaction, listing: Listing, table: str, key: Month, cut: SketchCut
) -> Packed:
    """Stage the pack of ``table`` (and, for ``port_sketches``, of ``port_segments``) for
    ``key`` from its listed files, piece by piece; drop the files it replaces."""
    lake = tx.lake
    rels = listing.files[table][key]
    segments = listing.files["port_segments"].get(key, []) if table == "port_sketches" else []
    targets = {table: (rels, tx.pack_target(table, *key))}
    if segments:
        targets["port_segments"] = (segments, tx.pack_target("port_segments", *key))
    schemas = {t: schema(ROLLUPS[t]) for t in targets}
    done = Packed(files=sum(len(r) for r, _ in targets.values()), packs=len(targets))
    with contextlib.ExitStack() as stack:
        out = {
            t: stack.enter_context(DayTableWriter(t, path, schemas[t], scale=QUIET_SCALE))
            for t, (_, (_, path)) in targets.items()
        }
        for piece in _pieces():
            rows = _COMBINE[table]([_read(lake.root / rel, piece) for rel in rels])
            out[table].write(_flagged(rows, piece[0]))
            if "port_segments" in out:
                out["port_segments"].write(_flagged(segment_rows(rows, cut.home), piece[0]))
    for t, (old, (rel, _)) in targets.items():
        tx.add(t, rel, out[t].rows, inputs=listing.inputs(t, old))
        done.rows += out[t].rows
        for gone in old:
            tx.remove(gone)
    return done


PIECES_BY_ADDRESS = 16
"""IPv4 ranges a pack of a table sorted by address merges at a time (then the IPv6
rows): memory follows a sixteenth of a month's rows."""

_BY_ADDRESS: dict[str, tuple[str, Callable[[Sequence[pa.Table]], pa.Table]]] = {
    sourceports.TABLE: ("src", sourceports.merged_piece),
    "address_hours": ("dst", merged_addresses),
}
"""The tables sorted by address, packed by address range: the address columns' prefix and
how rows of many files merge (each key once, in the table's order)."""


def address_pieces(prefix: str) -> list[list[tuple[str, str, Any]]]:
    """The Parquet filters of each piece of a pack sorted by the ``prefix`` addresses
    (``src``, ``dst``), in the order written: IPv4 ranges, then IPv6."""
    step = (1 << 32) // PIECES_BY_ADDRESS
    out: list[list[tuple[str, str, Any]]] = [
        [
            ("ip_version", "=", 4),
            (f"{prefix}_ip4", ">=", lo),
            (f"{prefix}_ip4", "<=", lo + step - 1),
        ]
        for lo in range(0, 1 << 32, step)
    ]
    out.append([("ip_version", "=", 6)])
    return out


def _write_address_pack(tx: Transaction, listing: Listing, table: str, key: Month) -> Packed:
    """Stage the pack of a table sorted by address (``source_ports``, ``address_hours``)
    for ``key``: its files merged piece by piece, each key once, in address order; drop
    the files it replaces."""
    prefix, merge = _BY_ADDRESS[table]
    rels = listing.files[table][key]
    rel, path = tx.pack_target(table, *key)
    declared = schema(ROLLUPS[table])
    rows = ROLLUP_ROW_GROUP_ROWS[table]  # not scaled: a lookup reads one group of a pack
    written = 0
    with pq.ParquetWriter(path, declared, **file_options(table)) as out:
        for where in address_pieces(prefix):
            found = [pq.read_table(tx.lake.root / r, filters=where, schema=declared) for r in rels]
            merged = merge(found)
            for start in range(0, merged.num_rows, rows):
                out.write_table(merged.slice(start, rows), row_group_size=rows)
            written += merged.num_rows
    tx.add(table, rel, written, inputs=listing.inputs(table, rels))
    for gone in rels:
        tx.remove(gone)
    return Packed(files=len(rels), packs=1, rows=written)


def pack_month(tx: Transaction, listing: Listing, key: Month, cut: SketchCut) -> Packed:
    """Stage, in a rewrite transaction, the packs of one (sensor, month): each day table's
    files of the month merged into one pack that replaces them."""
    done = Packed(months=1)
    for table in (*_COMBINE, *_BY_ADDRESS):
        rels = listing.files[table].get(key, [])
        if rels and not (len(rels) == 1 and rels[0] in listing.packed[table]):  # not packed yet
            if table in _BY_ADDRESS:
                one = _write_address_pack(tx, listing, table, key)
            else:
                one = _write_pack(tx, listing, table, key, cut)
            done.files += one.files
            done.packs += one.packs
            done.rows += one.rows
    return done


def pack(lake: Lake, cut: SketchCut, *, min_files: int = 2) -> Packed:
    """Pack every (sensor, month) with at least ``min_files`` files of a day table, in one
    catalog transaction (the lake's writer lock held; ``cut``: the store's)."""
    total = Packed()
    listing = Listing.of(lake)
    keys = listing.due(min_files)
    if not keys:
        return total
    with lake.rewriting() as tx:
        for key in keys:
            one = pack_month(tx, listing, key, cut)
            total.months += one.months
            total.files += one.files
            total.packs += one.packs
            total.rows += one.rows
        tx.commit_replacements()
    return total
