"""Port lists: who reached each port each day, kept for the port page.

The port page lists, for one port over a window, the fingerprint mix, the
source ASNs and the busiest sources. Counted exactly from ``port_hours`` they
read one row per source, port and hour: 38–44 s for 23/tcp at 10^9 packets.
Two day tables, computed from the same ``port_hours`` rows as the day sketches
(``teiten.store.sketch.DaySketch``) and cut into the same local days, keep what
those lists need:

- ``port_groups``: per local day, protocol and port, one sketch row (packets and
  the sources' HyperLogLog registers, ``teiten.store.registers``) per source ASN
  and per fingerprint bit, and one for the packets without a fingerprint. A port
  day keeps its :data:`~teiten.schema.daytables.PORT_ASNS_KEPT` ASNs with most sources; the
  others are merged into one row (``key`` :data:`OTHER_ASN`).
- ``port_tops``: per local day, protocol and port, its
  :data:`~teiten.schema.daytables.PORT_TOPS_KEPT` sources with most packets and a ``floor``:
  packets a source left out of the list may have sent that day (0 when the list
  is complete). Summed over a window, a source's listed packets are a lower bound
  of its packets, and the floors of the window's lists bound what it may lack.

Both merge over any window of whole days, inputs and sensors, like the sketches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.schema.daytables import PORT_ASNS_KEPT, PORT_GROUPS, PORT_TOPS, PORT_TOPS_KEPT
from teiten.store.arrow import binary_lengths, bytes16_values
from teiten.store.order import radix_order
from teiten.store.registers import Registers, merge, row_registers, run_starts, sketch
from teiten.store.rollup import schema

Ints = npt.NDArray[np.int64]

DIM_ASN, DIM_FINGERPRINT, DIM_NONE = 1, 2, 3
"""``port_groups.dim``: the row counts one source ASN (``key`` the ASN), one fingerprint
bit (``key`` the bit), or the packets without any fingerprint (``key`` 0)."""

OTHER_ASN = 0xFFFFFFFF
"""``key`` of the ``port_groups`` row merging a port day's ASNs beyond the kept ones."""


def _ints(table: pa.Table, name: str) -> Ints:
    values: Ints = table.column(name).to_numpy().astype(np.int64)
    return values


def _group_key(day: Ints, proto: Ints, port: Ints, dim: Ints, key: Ints) -> Ints:
    """One integer per ``port_groups`` row: day (from the first), protocol, port, dim, key."""
    out: Ints = (day - int(day.min())) << 51 | (proto == 17) << 50 | port << 34 | dim << 32 | key
    return out


def _group_table(first_day: int, group: Ints, packets: Ints, registers: pa.Array) -> pa.Table:
    target = schema(PORT_GROUPS)
    arrays = {
        "busy": pa.array(np.zeros(len(group), bool)),  # DaySketch marks them
        "day": pa.array(first_day + (group >> 51)),
        "proto": pa.array(np.where(group >> 50 & 1, 17, 6)),
        "dst_port": pa.array(group >> 34 & 0xFFFF),
        "dim": pa.array(group >> 32 & 3),
        "key": pa.array(group & 0xFFFFFFFF),
        "packets": pa.array(packets),
        "registers": registers,
    }
    return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in target], schema=target)


def _kept_asns(group: Ints, packets: Ints, registers: pa.Array) -> Ints:
    """``group`` with the ASN rows beyond a port day's :data:`PORT_ASNS_KEPT` (most sources
    first, then packets, then ASN) moved to the port day's :data:`OTHER_ASN` row."""
    is_asn = (group >> 32 & 3) == DIM_ASN
    if int(is_asn.sum()) <= PORT_ASNS_KEPT:
        return group
    rows = np.flatnonzero(is_asn)
    if int(np.unique(group[rows] >> 34, return_counts=True)[1].max()) <= PORT_ASNS_KEPT:
        return group  # no port day has more ASNs than it keeps
    sources = merge(np.arange(len(rows)), packets[rows], registers.take(pa.array(rows))).sources
    port_day = group[rows] >> 34
    order = np.lexsort((group[rows] & 0xFFFFFFFF, -packets[rows], -sources, port_day))
    starts = run_starts(port_day[order])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    dropped = rows[order[rank >= PORT_ASNS_KEPT]]
    out = group.copy()
    out[dropped] = (group[dropped] >> 32) << 32 | OTHER_ASN
    return out


def _finish(first_day: int, group: Ints, packets: Ints, registers: pa.Array) -> pa.Table:
    """The rows, one per group, with the ASNs beyond the kept ones folded into others and
    the sole unknown ASN of a port day stored without registers (:func:`expand`)."""
    folded = _kept_asns(group, packets, registers)
    if not np.array_equal(folded, group):
        m = merge(folded, packets, registers, keep=True)
        assert m.registers is not None
        group, packets, registers = m.group, m.packets, m.registers
    return _group_table(first_day, group, packets, _elided(group, registers))


def _elided(group: Ints, registers: pa.Array) -> pa.Array:
    """``registers`` with those of each port day's ASN row emptied where it is the port
    day's only ASN row and the ASN is unknown (0): its sources are then all the port
    day's, which its fingerprint rows (every packet is in one) already hold — on a store
    without an AS source, half of the table."""
    asn = np.flatnonzero((group >> 32 & 3) == DIM_ASN)
    if len(asn) == 0:
        return registers
    port_day = group[asn] >> 34
    _, first, count = np.unique(port_day, return_index=True, return_counts=True)
    sole = asn[first[count == 1]]
    sole = sole[(group[sole] & 0xFFFFFFFF) == 0]
    if len(sole) == 0:
        return registers
    index = np.arange(len(group))
    index[sole] = len(group)  # the empty value appended below
    return pa.concat_arrays([registers, pa.array([b""], pa.binary())]).take(pa.array(index))


def expand(rows: pa.Table, lists: Ints | None = None) -> pa.Table:
    """``port_groups`` rows with the registers an ASN row was stored without
    (:func:`_elided`) put back: the merged registers of its port day's fingerprint rows.
    ``lists`` tells apart the rows of different files (a key per row); without it the
    rows are of one file."""
    registers = rows.column("registers").combine_chunks()
    dim = _ints(rows, "dim")
    empty = np.flatnonzero((dim == DIM_ASN) & (binary_lengths(registers) == 0))
    if len(empty) == 0:
        return rows
    port_day = (
        _ints(rows, "day") << 17 | (_ints(rows, "proto") == 17) << 16 | _ints(rows, "dst_port")
    )
    if lists is not None:
        port_day = np.asarray(lists, np.int64) << 40 | port_day
    sources = np.flatnonzero(dim != DIM_ASN)  # fingerprint bits and none: every source
    m = merge(port_day[sources], _ints(rows, "packets")[sources],
              registers.take(pa.array(sources)), keep=True)  # fmt: skip
    assert m.registers is not None
    at = np.searchsorted(m.group, port_day[empty])
    index = np.arange(rows.num_rows)
    index[empty] = rows.num_rows + at
    filled = pa.concat_arrays([registers, m.registers]).take(pa.array(index))
    at_field = rows.schema.get_field_index("registers")
    return rows.set_column(at_field, rows.schema.field(at_field), filled)


def _with_unknown_asns(
    groups: Ints, packets: Ints, registers: pa.Array, asn_key: Ints, counted: Ints
) -> tuple[Ints, Ints, pa.Array]:
    """Sketched groups with each port day's ASN row added (``asn_key``: each row's key
    for it, ``counted`` its packets), without registers, in key order."""
    order = radix_order(asn_key)
    starts = run_starts(asn_key[order])
    asn_groups = asn_key[order[starts]]
    asn_packets = np.add.reduceat(counted[order], starts) if len(order) else counted[:0]
    merged = radix_order(np.concatenate([groups, asn_groups]))
    offsets = pa.py_buffer(np.zeros(len(asn_groups) + 1, np.int32))
    empty = pa.Array.from_buffers(pa.binary(), len(asn_groups), [None, offsets, pa.py_buffer(b"")])
    return (
        np.concatenate([groups, asn_groups])[merged],
        np.concatenate([packets, asn_packets])[merged],
        pa.concat_arrays([registers, empty]).take(pa.array(merged)),
    )


def group_rows(
    port_hours: pa.Table, days: npt.NDArray[Any], registers: Registers | None = None
) -> pa.Table:
    """The ``port_groups`` rows of ``port_hours`` rows whose local days are ``days``
    (``registers``: the rows' :func:`~teiten.store.registers.row_registers`, when known)."""
    if port_hours.num_rows == 0:
        return schema(PORT_GROUPS).empty_table()
    reg, rank = row_registers(port_hours) if registers is None else registers
    fp = _ints(port_hours, "fp")
    asn = _ints(port_hours, "src_asn")
    asns, asn_index = np.zeros(1, np.int64), np.zeros(len(asn), np.int64)
    if int(asn.min()) != int(asn.max()):  # ASNs as small numbers, so the key needs no sort
        asns, found = np.unique(asn, return_inverse=True)
        asn_index = found.reshape(-1).astype(np.int64)
    else:
        asns[0] = asn[0]
    # With no AS source every row's ASN is 0: a port day's one ASN row is stored
    # without registers (:func:`_elided`), so only its packets are found.
    unknown = int(asn.min()) == int(asn.max()) == 0
    rows, dims, keys = [np.arange(len(fp))], [np.full(len(fp), DIM_ASN)], [asn_index]
    if unknown:
        rows, dims, keys = [], [], []
    present = int(np.bitwise_or.reduce(fp)) if len(fp) else 0
    for bit in (b for b in range(32) if present >> b & 1):
        carrying = np.flatnonzero(fp >> bit & 1)
        rows.append(carrying)
        dims.append(np.full(len(carrying), DIM_FINGERPRINT))
        keys.append(np.full(len(carrying), bit))
    bare = np.flatnonzero(fp == 0)
    rows, dims, keys = [*rows, bare], [*dims, np.full(len(bare), DIM_NONE)], [*keys, bare * 0]
    at = np.concatenate(rows)
    day = np.asarray(days, np.int64)
    first = int(day.min())
    proto, port, counted = (_ints(port_hours, n) for n in ("proto", "dst_port", "packets"))
    port_day = (day - first) << 41 | (proto == 17) << 40 | port << 24
    compact = (  # day, protocol, port, dim and key (an ASN's index) in 44 bits
        port_day[at] | np.concatenate(dims).astype(np.int64) << 22 | np.concatenate(keys)
    )
    found_groups, packets, registers = sketch(compact, reg[at], rank[at], counted[at])
    if unknown:
        found_groups, packets, registers = _with_unknown_asns(
            found_groups, packets, registers, port_day | DIM_ASN << 22, counted
        )
    g_dim = found_groups >> 22 & 3
    g_key = found_groups & 0x3FFFFF
    g_key = np.where(g_dim == DIM_ASN, asns[np.minimum(g_key, len(asns) - 1)], g_key)
    group = _group_key(  # the same order: ASN indices grow with the ASNs
        first + (found_groups >> 41), np.where(found_groups >> 40 & 1, 17, 6),
        found_groups >> 24 & 0xFFFF, g_dim, g_key,
    )  # fmt: skip
    return _finish(first, group, packets, registers)


def combine_groups(parts: Sequence[pa.Table]) -> pa.Table:
    """``port_groups`` rows of several tables (the parts of one day file) as one."""
    rows = [p for p in parts if p.num_rows]
    if len(rows) <= 1:
        return rows[0] if rows else schema(PORT_GROUPS).empty_table()
    t = pa.concat_tables([expand(p) for p in rows])  # each part's own port days
    day = _ints(t, "day")
    group = _group_key(
        day, _ints(t, "proto"), _ints(t, "dst_port"), _ints(t, "dim"), _ints(t, "key")
    )
    m = merge(group, _ints(t, "packets"), t.column("registers"), keep=True)  # one row a group
    assert m.registers is not None  # then ranked (ASNs by their sources over all parts)
    return _finish(int(day.min()), m.group, m.packets, m.registers)


def _source_ids(table: pa.Table) -> Ints:
    """One integer per row naming its source: the IPv4 address, or 2**32 plus the index
    of the IPv6 address among the table's distinct ones."""
    ids = _ints(table, "src_ip4")
    v6 = np.flatnonzero(_ints(table, "ip_version") == 6)
    if len(v6):
        raw = np.ascontiguousarray(bytes16_values(table.column("src_ip6"))[v6])
        _, index = np.unique(raw.view(np.dtype((np.void, 16))).ravel(), return_inverse=True)
        ids[v6] = (1 << 32) + index.reshape(-1)
    return ids


def _port_day(day: Ints, proto: Ints, port: Ints, first: int) -> Ints:
    out: Ints = (day - first) << 17 | (proto == 17) << 16 | port
    return out


def _tops(table: pa.Table, day: Ints, floors: tuple[Ints, Ints] | None = None) -> pa.Table:
    """The ``port_tops`` rows of ``table``'s rows (``port_hours`` or ``port_tops``, their
    local days ``day``): packets summed per port day and source, the
    :data:`PORT_TOPS_KEPT` sources with most packets kept per port day (ties by the
    address), and each port day's floor: the packets of the best source left out, plus
    the ``floors`` (port day keys, floors) the rows' own lists already had."""
    first = int(day.min())
    port_day = _port_day(day, _ints(table, "proto"), _ints(table, "dst_port"), first)
    sid = _source_ids(table)
    key = port_day << 34 | sid
    order = radix_order(key)  # a run's rows share their port day and source
    starts = run_starts(key[order])
    packets = np.add.reduceat(_ints(table, "packets")[order], starts)
    cc = np.maximum.reduceat(_ints(table, "src_cc")[order], starts)
    asn = np.maximum.reduceat(_ints(table, "src_asn")[order], starts)
    at = order[starts]  # one row of each (port day, source)
    most = (1 << 40) - 1  # rows are by port day and source: a stable sort keeps ties so
    ranked = radix_order(port_day[at] << 40 | (most - np.minimum(packets, most)))
    pd = port_day[at][ranked]
    firsts = run_starts(pd)
    rank = np.arange(len(pd)) - np.repeat(firsts, np.diff(np.r_[firsts, len(pd)]))
    floor = np.zeros(len(pd), np.int64)
    left = rank == PORT_TOPS_KEPT  # the best source left out of each list
    floor[np.searchsorted(pd, pd[left])] = packets[ranked][left]
    if floors is not None:
        np.add.at(floor, np.searchsorted(pd, floors[0]), floors[1])
    floor = floor[np.repeat(firsts, np.diff(np.r_[firsts, len(pd)]))]  # on every row
    keep = rank < PORT_TOPS_KEPT
    chosen = at[ranked][keep]
    target = schema(PORT_TOPS)
    arrays = {
        "busy": pa.array(np.zeros(len(chosen), bool)),
        "day": pa.array(day[chosen]),
        "proto": table.column("proto").take(pa.array(chosen)),
        "dst_port": table.column("dst_port").take(pa.array(chosen)),
        "ip_version": table.column("ip_version").take(pa.array(chosen)),
        "src_ip4": table.column("src_ip4").take(pa.array(chosen)),
        "src_ip6": table.column("src_ip6").take(pa.array(chosen)),
        "src_cc": pa.array(cc[ranked][keep]),
        "src_asn": pa.array(asn[ranked][keep]),
        "packets": pa.array(packets[ranked][keep]),
        "floor": pa.array(floor[keep]),
    }
    return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in target], schema=target)


def top_rows(port_hours: pa.Table, days: npt.NDArray[Any]) -> pa.Table:
    """The ``port_tops`` rows of ``port_hours`` rows whose local days are ``days``."""
    if port_hours.num_rows == 0:
        return schema(PORT_TOPS).empty_table()
    return _tops(port_hours, np.asarray(days, np.int64))


def combine_tops(parts: Sequence[pa.Table]) -> pa.Table:
    """``port_tops`` rows of several tables (the parts of one day file) as one: packets
    summed per source, the lists cut again, and each port day's floor the sum of its
    parts' floors (what a source may lack from a part's list) plus the packets of the
    best source the new list leaves out."""
    rows = [p for p in parts if p.num_rows]
    if len(rows) <= 1:
        return rows[0] if rows else schema(PORT_TOPS).empty_table()
    t = pa.concat_tables(rows)
    day = _ints(t, "day")
    first = int(day.min())
    floor_keys, floor_values = [], []
    for part in rows:  # one floor per part and port day
        pd = _port_day(_ints(part, "day"), _ints(part, "proto"), _ints(part, "dst_port"), first)
        at = run_starts(pd)  # a part's rows are grouped by port day
        floor_keys.append(pd[at])
        floor_values.append(_ints(part, "floor")[at])
    return _tops(t, day, (np.concatenate(floor_keys), np.concatenate(floor_values)))
