"""HyperLogLog registers of sources: hashing, the stored bytes, merging and estimating.

A source's 64-bit hash (splitmix64 of the address) picks one of
:data:`~teiten.schema.daytables.SKETCH_REGISTERS` registers (its top
:data:`~teiten.schema.daytables.SKETCH_BITS` bits) and a rank (1 + the leading zeros of the
other bits); a register keeps the highest rank that reached it (Flajolet et al.
2007). A set of registers is stored as bytes (``teiten.schema.daytables.PORT_SKETCHES``):
*sparse*, 3 bytes per register set (its number little-endian, then its rank), by
register, while that is shorter than *dense*, one rank byte per register
(:func:`encode`). Sets merge by the highest rank per register (:func:`merge`, a
numba loop over the stored bytes; a query's merge that keeps no registers, in numpy up
to :data:`NUMPY_MERGE_ENTRIES`) and give their distinct sources by Ertl's
improved raw estimator (:func:`estimates`): standard error 1.6 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.jit import kernel
from teiten.schema.daytables import (
    SKETCH_ALPHA,
    SKETCH_BITS,
    SKETCH_DENSE_BYTES,
    SKETCH_REGISTERS,
    SKETCH_SIGMA_TERMS,
)
from teiten.store.arrow import binary_offsets, bytes16_values
from teiten.store.order import radix_order, ragged_index

REGISTERS = SKETCH_REGISTERS

STANDARD_ERROR = 1.04 / math.sqrt(REGISTERS)
"""Relative standard error of an estimate above the linear-counting range (1.6 %)."""


@kernel(cache=True, nogil=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:  # pragma: no cover - jit
    """The splitmix64 finalizer: every input bit reaches every output bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@kernel(cache=True, nogil=True)
def _registers(
    version: npt.NDArray[Any], src4: npt.NDArray[Any], src6: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8]]:  # pragma: no cover - jit
    """Each source's register and rank (IPv4: the integer; IPv6: its 16 bytes)."""
    n = version.shape[0]
    reg = np.empty(n, np.uint16)
    rank = np.empty(n, np.uint8)
    gamma = np.uint64(0x9E3779B97F4A7C15)
    low_bits = np.uint64(64 - SKETCH_BITS)
    for i in range(n):
        if version[i] == 6:
            hi = np.uint64(0)
            lo = np.uint64(0)
            for j in range(8):
                hi = (hi << np.uint64(8)) | np.uint64(src6[i, j])
                lo = (lo << np.uint64(8)) | np.uint64(src6[i, 8 + j])
            h = _mix(_mix(hi + gamma) ^ lo ^ np.uint64(6 << 32))
        else:
            h = _mix(np.uint64(src4[i]) + gamma)
        reg[i] = np.uint16(h >> low_bits)
        rest = h << np.uint64(SKETCH_BITS)
        r = 1
        while r <= 64 - SKETCH_BITS and (rest >> np.uint64(63)) == 0:
            rest <<= np.uint64(1)
            r += 1
        rank[i] = np.uint8(r)
    return reg, rank


def source_registers(
    version: npt.NDArray[Any], src4: npt.NDArray[Any], src6: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8]]:
    """The register and rank of each source (``src6``: (rows, 16) bytes, zeros for IPv4)."""
    return _registers(
        np.ascontiguousarray(version), np.ascontiguousarray(src4), np.ascontiguousarray(src6)
    )


Registers = tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8]]
"""Each row's register and rank (:func:`source_registers`)."""


def row_registers(rows: pa.Table) -> Registers:
    """:func:`source_registers` of a table's source columns (``ip_version``, ``src_ip4``,
    ``src_ip6``): what the day sketches and port lists of the same rows share."""
    return source_registers(
        rows.column("ip_version").to_numpy(),
        rows.column("src_ip4").to_numpy(),
        bytes16_values(rows.column("src_ip6")),
    )


def run_starts(ordered: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Where each run of equal values of a sorted array starts."""
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


_SPARSE = 3
"""Bytes per register set in a sparse sketch (``teiten.schema.daytables.PORT_SKETCHES``)."""


@kernel(cache=True, nogil=True)
def _encode(
    firsts: npt.NDArray[np.intp], reg: npt.NDArray[np.uint16], rank: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:  # pragma: no cover - jit
    n = firsts.shape[0]
    offsets = np.zeros(n + 1, np.int64)
    for g in range(n):
        end = firsts[g + 1] if g + 1 < n else reg.shape[0]
        size = (end - firsts[g]) * _SPARSE
        offsets[g + 1] = offsets[g] + (size if size < SKETCH_DENSE_BYTES else SKETCH_DENSE_BYTES)
    data = np.zeros(offsets[n], np.uint8)
    for g in range(n):
        end = firsts[g + 1] if g + 1 < n else reg.shape[0]
        o = offsets[g]
        if offsets[g + 1] - o == SKETCH_DENSE_BYTES:
            for i in range(firsts[g], end):
                data[o + reg[i]] = rank[i]
        else:
            for i in range(firsts[g], end):
                data[o] = reg[i] & 0xFF
                data[o + 1] = reg[i] >> 8
                data[o + 2] = rank[i]
                o += _SPARSE
    return offsets, data


def encode(
    firsts: npt.NDArray[np.intp], reg: npt.NDArray[np.uint16], rank: npt.NDArray[np.uint8]
) -> pa.Array:
    """The ``registers`` of groups given as runs of (register, rank) pairs sorted by
    register, each group's first pair at ``firsts``: dense or sparse, whichever is shorter."""
    offsets, data = _encode(
        np.ascontiguousarray(firsts, np.intp),
        np.ascontiguousarray(reg, np.uint16),
        np.ascontiguousarray(rank, np.uint8),
    )
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.large_binary(), len(firsts), buffers).cast(pa.binary())


@kernel(cache=True, nogil=True)
def _distinct(
    order: npt.NDArray[np.int64],
    group: npt.NDArray[np.int64],
    reg: npt.NDArray[np.uint16],
    rank: npt.NDArray[np.uint8],
    packets: npt.NDArray[np.int64],
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.intp],
    npt.NDArray[np.uint16],
    npt.NDArray[np.uint8],
]:  # pragma: no cover - jit
    """Per run of equal ``group`` (rows in ``order``): the group, its packets, and its
    distinct registers in order with the highest rank of each (``firsts``: where each
    group's registers start). One scratch register array, cleared where a run set it;
    a run's registers are sorted in place, or found by scanning the scratch when
    they are many. Ranks are at least 1 (:func:`source_registers`)."""
    n = order.shape[0]
    out_group = np.empty(n, np.int64)
    out_packets = np.empty(n, np.int64)
    firsts = np.empty(n, np.intp)
    out_reg = np.empty(n, np.uint16)
    out_rank = np.empty(n, np.uint8)
    scratch = np.zeros(SKETCH_DENSE_BYTES, np.uint8)
    i = 0
    groups = 0
    o = 0
    while i < n:
        g = group[order[i]]
        total = 0
        start = o
        j = i
        while j < n and group[order[j]] == g:
            row = order[j]
            r = reg[row]
            total += packets[row]
            if scratch[r] == 0:
                out_reg[o] = r
                o += 1
            if rank[row] > scratch[r]:
                scratch[r] = rank[row]
            j += 1
        count = o - start
        if count > SKETCH_DENSE_BYTES // 4:  # many: the set registers, in order, from the scratch
            o = start
            for r in range(SKETCH_DENSE_BYTES):
                if scratch[r]:
                    out_reg[o] = r
                    o += 1
        elif count > 16:
            out_reg[start:o].sort()
        else:
            for a in range(start + 1, o):  # insertion sort of a few
                v = out_reg[a]
                b = a - 1
                while b >= start and out_reg[b] > v:
                    out_reg[b + 1] = out_reg[b]
                    b -= 1
                out_reg[b + 1] = v
        for a in range(start, o):
            out_rank[a] = scratch[out_reg[a]]
            scratch[out_reg[a]] = 0
        out_group[groups] = g
        out_packets[groups] = total
        firsts[groups] = start
        groups += 1
        i = j
    return (
        out_group[:groups].copy(),
        out_packets[:groups].copy(),
        firsts[:groups].copy(),
        out_reg[:o].copy(),
        out_rank[:o].copy(),
    )


def sketch(
    group: npt.NDArray[Any],
    reg: npt.NDArray[np.uint16],
    rank: npt.NDArray[np.uint8],
    packets: npt.NDArray[Any],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], pa.Array]:
    """The sources of rows (their ``reg`` and ``rank``, :func:`source_registers`) sketched
    per ``group`` (any integer key per row): the distinct groups, sorted, their packets
    (summed) and their ``registers`` (:func:`encode`). The rows are sorted by group only;
    a group's registers are merged in one scratch array (sorting by group and register,
    then reducing runs, cost twice as much)."""
    group = np.ascontiguousarray(group, np.int64)
    groups, total, firsts, regs, ranks = _distinct(
        radix_order(group),
        group,
        np.ascontiguousarray(reg, np.uint16),
        np.ascontiguousarray(rank, np.uint8),
        np.ascontiguousarray(packets, np.int64),
    )
    return groups, total, encode(firsts, regs, ranks)


@kernel(cache=True, nogil=True)
def _merge(
    order: npt.NDArray[np.intp],
    group: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    data: npt.NDArray[np.uint8],
    keep: bool,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int64],
    npt.NDArray[np.uint8],
]:  # pragma: no cover - jit
    """Per run of equal ``group`` (rows in ``order``): its group, registers set and the sum
    of 2**-rank over them, the rows' registers merged by max; with ``keep`` also the
    merged registers, encoded (offsets and bytes; never longer than the rows' own).
    One scratch register array: a sparse merge touches (and clears) only the registers
    its rows set."""
    n = order.shape[0]
    out_group = np.empty(n, np.int64)
    out_set = np.empty(n, np.int64)
    out_sum = np.empty(n, np.float64)
    out_offsets = np.zeros(n + 1 if keep else 1, np.int64)
    out_data = np.empty(data.shape[0] if keep else 0, np.uint8)
    scratch = np.zeros(SKETCH_DENSE_BYTES, np.uint8)
    touched = np.empty(SKETCH_DENSE_BYTES, np.int64)
    powers = np.empty(256, np.float64)
    for r in range(256):
        powers[r] = 2.0**-r
    i = 0
    groups = 0
    o = 0
    while i < n:
        g = group[order[i]]
        dense = False
        count = 0
        j = i
        while j < n and group[order[j]] == g:
            row = order[j]
            a = offsets[row]
            b = offsets[row + 1]
            if b - a == SKETCH_DENSE_BYTES:
                dense = True
                for k in range(SKETCH_DENSE_BYTES):
                    if data[a + k] > scratch[k]:
                        scratch[k] = data[a + k]
            else:
                for k in range(a, b - _SPARSE + 1, _SPARSE):
                    reg = np.int64(data[k]) | (np.int64(data[k + 1]) << 8)
                    if reg >= SKETCH_DENSE_BYTES or data[k + 2] == 0:
                        continue  # no register, or no rank: damaged bytes count nothing
                    if scratch[reg] == 0:
                        touched[count] = reg
                        count += 1
                    if data[k + 2] > scratch[reg]:
                        scratch[reg] = data[k + 2]
            j += 1
        if dense:  # the set registers, in order
            count = 0
            for k in range(SKETCH_DENSE_BYTES):
                if scratch[k]:
                    touched[count] = k
                    count += 1
        elif keep:
            touched[:count] = np.sort(touched[:count])
        harmonic = 0.0
        for t in range(count):
            harmonic += powers[scratch[touched[t]]]
        if keep and count * _SPARSE >= SKETCH_DENSE_BYTES:
            out_data[o : o + SKETCH_DENSE_BYTES] = scratch
            o += SKETCH_DENSE_BYTES
        elif keep:
            for t in range(count):
                out_data[o] = touched[t] & 0xFF
                out_data[o + 1] = touched[t] >> 8
                out_data[o + 2] = scratch[touched[t]]
                o += _SPARSE
        for t in range(count):
            scratch[touched[t]] = 0
        out_group[groups] = g
        out_set[groups] = count
        out_sum[groups] = harmonic
        groups += 1
        if keep:
            out_offsets[groups] = o
        i = j
    return (
        out_group[:groups],
        out_set[:groups],
        out_sum[:groups],
        out_offsets[: groups + 1],
        out_data[:o],
    )


@dataclass(frozen=True)
class Merged:
    """Sketches merged per group: the groups (sorted), their packets and distinct sources
    (and their merged ``registers`` when asked)."""

    group: npt.NDArray[np.int64]
    packets: npt.NDArray[np.int64]
    sources: npt.NDArray[np.int64]
    registers: pa.Array | None = None


def merge(
    group: npt.NDArray[Any], packets: npt.NDArray[Any], registers: Any, *, keep: bool = False
) -> Merged:
    """Merge the sketches of rows by ``group`` (any integer key per row): per distinct
    group, its packets (summed) and its distinct sources (registers merged by max and
    estimated, :func:`estimates`); with ``keep``, the merged registers too (a
    ``registers`` column). ``registers`` is the rows' ``registers`` column."""
    column = registers.combine_chunks() if isinstance(registers, pa.ChunkedArray) else registers
    group = np.asarray(group, np.int64)
    if len(group) == 0:
        empty = np.zeros(0, np.int64)
        return Merged(empty, empty, empty, pa.array([], pa.binary()) if keep else None)
    data_buffer = column.buffers()[2]
    offsets = binary_offsets(column)
    data = (
        np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets)
    dense = lengths == SKETCH_DENSE_BYTES
    rows, sparse = int(dense.sum()), int(lengths[~dense].sum()) // _SPARSE
    if not keep and sparse <= NUMPY_MERGE_ENTRIES and rows <= NUMPY_DENSE_ROWS:
        groups, index = np.unique(group, return_inverse=True)
        if _in_numpy(len(groups), rows, sparse):
            total = np.zeros(len(groups), np.int64)
            np.add.at(total, index, np.asarray(packets, np.int64))
            entries = rows * SKETCH_DENSE_BYTES + sparse
            nonzero, harmonic = _counts(index, len(groups), offsets, lengths, data, entries)
            return Merged(groups, total, estimates(nonzero, harmonic, total))
    order = radix_order(group)
    groups, nonzero, harmonic, out_offsets, out_data = _merge(order, group, offsets, data, keep)
    firsts = run_starts(group[order])
    total = np.add.reduceat(np.asarray(packets, np.int64)[order], firsts)
    merged = None
    if keep:
        buffers = [None, pa.py_buffer(out_offsets), pa.py_buffer(out_data)]
        merged = pa.Array.from_buffers(pa.large_binary(), len(groups), buffers).cast(pa.binary())
    return Merged(groups, total, estimates(nonzero, harmonic, total), merged)


NUMPY_MERGE_ENTRIES = 1 << 22
"""Up to this many stored registers a merge that keeps no registers (a query's) runs in
numpy (:func:`_counts`: 62 ms for 181,812 rows of 502,826 registers into 72,526
groups, as fast as the numba kernel there) rather than load numba first (about 0.55 s
from its cache): sparse registers, or all of them where they are sorted."""

NUMPY_DENSE_ROWS = 1 << 17
"""Dense rows merged in numpy at most: each costs a call (about 2 µs)."""

NUMPY_TABLE_BYTES = 1 << 26
"""The largest table of every group's registers (groups × REGISTERS bytes) a merge in
numpy makes; more groups than fit are merged by the numba kernel, or sorted."""


_TABLE_CHUNK = 1024
"""Groups of the register table whose 2**-rank are summed at once (32 MB)."""


def _sorted(groups: int, entries: int) -> bool:
    """Whether a merge in numpy sorts the registers of its groups (few a group) rather
    than set them in a table of every group's registers."""
    return groups * SKETCH_DENSE_BYTES > 4 * entries


def _in_numpy(groups: int, rows: int, sparse: int) -> bool:
    """Whether a merge that keeps no registers of ``rows`` dense rows and ``sparse``
    sparse registers into ``groups`` groups runs in numpy (:data:`NUMPY_MERGE_ENTRIES`)."""
    entries = rows * SKETCH_DENSE_BYTES + sparse
    if _sorted(groups, entries):  # 8 bytes and more a register
        return entries <= NUMPY_MERGE_ENTRIES
    return groups * SKETCH_DENSE_BYTES <= NUMPY_TABLE_BYTES


_POWERS = np.where(np.arange(256) > 0, 2.0 ** -np.arange(256, dtype=np.float64), 0.0)


def _counts(
    index: npt.NDArray[Any],
    groups: int,
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    data: npt.NDArray[Any],
    entries: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """What ``_merge`` finds without keeping registers, in numpy: per group (``index``:
    each row's group, 0 … ``groups`` − 1) its registers set and the sum of 2**-rank over
    them, the rows' registers merged by max (``entries``: the registers stored, a dense
    row counting all of its). Damaged bytes count nothing, as there.

    Few registers a group (many groups): every register set is a key, sorted. Else a
    table of every register of every group: each dense row merges into its group's row
    (``np.maximum``, no key per register), the sparse rows' registers by
    ``np.maximum.at``."""
    dense = lengths == SKETCH_DENSE_BYTES
    owner, register, rank = _triples(index, offsets, lengths, data, dense)
    rows = np.flatnonzero(dense)
    if _sorted(groups, entries):
        block = data[ragged_index(offsets[rows], lengths[rows])].reshape(-1, SKETCH_DENSE_BYTES)
        at, column = np.nonzero(block)
        key = np.concatenate([owner, index[rows][at]]) * SKETCH_DENSE_BYTES
        key += np.concatenate([register, column])
        ranks = np.concatenate([rank, block[at, column]]).astype(np.int64)
        ordered = np.sort((key << 8) | ranks)
        ends = np.append(ordered[1:] >> 8 != ordered[:-1] >> 8, len(ordered) > 0)
        last = np.flatnonzero(ends)  # each register's last (highest) rank
        owners, top = ordered[last] >> 8 >> SKETCH_BITS, (ordered[last] & 0xFF).astype(np.uint8)
    else:
        merged = np.zeros((groups, SKETCH_DENSE_BYTES), np.uint8)
        for g, at in zip(index[rows].tolist(), offsets[rows].tolist(), strict=True):
            np.maximum(merged[g], data[at : at + SKETCH_DENSE_BYTES], out=merged[g])
        np.maximum.at(merged.reshape(-1), owner * SKETCH_DENSE_BYTES + register, rank)
        nonzero = np.count_nonzero(merged, axis=1).astype(np.int64)
        harmonic = np.zeros(groups, np.float64)
        for a in range(0, groups, _TABLE_CHUNK):  # 8 bytes a register, a chunk at a time
            harmonic[a : a + _TABLE_CHUNK] = _POWERS[merged[a : a + _TABLE_CHUNK]].sum(axis=1)
        return nonzero, harmonic
    nonzero = np.bincount(owners, minlength=groups).astype(np.int64)
    harmonic = np.bincount(owners, _POWERS[top], minlength=groups).astype(np.float64)
    return nonzero, harmonic


def _triples(
    index: npt.NDArray[Any],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    data: npt.NDArray[Any],
    dense: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """The registers stored in the sparse rows: each one's group, register and rank
    (ranks > 0, registers < REGISTERS; a damaged row's trailing bytes dropped).

    The bytes of consecutive whole rows are read as one slice (one per run between
    dense or damaged rows) rather than gathered byte by byte."""
    whole = ~dense & (lengths % _SPARSE == 0)
    cut = np.flatnonzero(~whole)  # rows that end a run of whole rows
    starts = np.r_[offsets[:1], offsets[cut + 1]].tolist()
    ends = np.r_[offsets[cut], offsets[-1:]].tolist()
    parts = [data[a:b] for a, b in zip(starts, ends, strict=True) if b > a]
    damaged = np.flatnonzero(~dense & ~whole)
    used = lengths[damaged] - lengths[damaged] % _SPARSE
    parts.append(data[ragged_index(offsets[damaged], used)])
    stored = np.concatenate(parts)
    counts = np.r_[lengths[whole], used] // _SPARSE
    owner = np.repeat(index[np.r_[np.flatnonzero(whole), damaged]], counts)
    n = len(stored) // _SPARSE
    register = np.ndarray((n,), "<u2", stored, 0, (_SPARSE,)).astype(np.int64)
    rank = stored[2::_SPARSE]
    ok = (register < SKETCH_DENSE_BYTES) & (rank > 0)
    if ok.all():
        return owner.astype(np.int64, copy=False), register, rank
    return owner[ok].astype(np.int64, copy=False), register[ok], rank[ok]


def _sigma_table() -> npt.NDArray[np.float64]:
    """Ertl's σ(x) for x = (m − registers set) / m, for every count of registers set: the
    estimator's only costly part depends on that count alone, so it is computed once."""
    x = (REGISTERS - np.arange(REGISTERS + 1, dtype=np.float64)) / REGISTERS
    sigma = x.copy()
    for k in range(1, SKETCH_SIGMA_TERMS + 1):
        sigma += x ** (2**k) * 2 ** (k - 1)
    return sigma


_SIGMA = _sigma_table()


def estimate(nonzero: int, harmonic: float, packets: float = math.inf) -> int:
    """Distinct sources estimated from a merged sketch: ``nonzero`` registers set and the
    sum of 2**-rank over them, by Ertl's improved raw estimator (O. Ertl, "New cardinality
    estimation algorithms for HyperLogLog sketches", 2017: unbiased from one source to
    billions without an empirical bias table), kept between ``nonzero`` (each register
    set has a source) and ``packets`` (each source sent a packet)."""
    one = estimates(np.array([nonzero]), np.array([harmonic]), np.array([packets]))
    return int(one[0])


def estimates(
    nonzero: npt.NDArray[Any], harmonic: npt.NDArray[Any], packets: npt.NDArray[Any]
) -> npt.NDArray[np.int64]:
    """:func:`estimate` of many sketches at once."""
    sigma = _SIGMA[np.clip(np.asarray(nonzero, np.int64), 0, REGISTERS)]
    raw = SKETCH_ALPHA * REGISTERS * REGISTERS / (REGISTERS * sigma + harmonic)
    bounded = np.minimum(packets.astype(np.float64), np.round(raw))
    out: npt.NDArray[np.int64] = np.maximum(nonzero.astype(np.float64), bounded).astype(np.int64)
    return out
