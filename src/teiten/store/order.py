"""Row order inside a stored row group: by source address, then by the packet's shape,
time order kept within both.

Darknet sources send many probes, and much of a probe is constant per source
(a Mirai bot's source port and window, a scanner's TTL and options, the
source's country) and per kind of packet a source sends (its SYNs, its UDP
probes, its pings). Sorting each row group's rows by source, then by the packed
``shape`` (protocol, flags, TTL, options length…), puts those runs next to each
other, where dictionary, delta and zstd encodings shrink them. On the benchmark
capture of SYNs grouping by source took 18.5 → 14.1 bytes per packet; on the
realistic mix, sorting whole row groups by source and shape instead of each
batch by source took 16.4 → 14.9. Row groups still cover a time range, so their
``ts`` statistics still prune by time.

The sort is a stable LSD radix sort (:func:`radix_order`, numba):
linear, and the arrival (time) order within a source and shape survives. The
rollups, sketches and port lists sort their keys with it too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.jit import kernel
from teiten.store.layout import PACKED

SHAPE = next(p for p in PACKED if p.name == "shape")

DIGIT_BITS = 8
"""Bits sorted per pass: 256 buckets, whose write positions stay in the caches (with
11 or 16 bits, the scattered writes of a pass cost more than the passes saved: 5 M
random 32-bit keys in 0.16 s with 8, 0.21 with 11, 0.22 with 16; ``argsort`` 0.58)."""


@kernel(cache=True, nogil=True)
def _sorted_by(
    key: npt.NDArray[np.uint64], order: npt.NDArray[np.int64], digit: int
) -> npt.NDArray[np.int64]:  # pragma: no cover - jit
    """``order`` stably sorted by ``key`` (one value per row): the keys gathered in
    ``order``, then one counting pass per ``digit`` bits, skipping the digits in which
    all keys agree (all of them when the keys come sorted). Keys and rows move together,
    so each pass reads both in sequence."""
    n = order.shape[0]
    keys = np.empty(n, np.uint64)
    ones = np.uint64(0)
    zeros = ~np.uint64(0)
    ascending = True
    for i in range(n):
        v = key[order[i]]
        keys[i] = v
        ones |= v
        zeros &= v
        if i and v < keys[i - 1]:
            ascending = False
    vary = np.uint64(0) if ascending else ones ^ zeros
    out = order.copy()
    spare_keys = np.empty_like(keys)
    spare_order = np.empty_like(out)
    size = 1 << digit
    mask = np.uint64(size - 1)
    counts = np.empty(size + 1, np.int64)
    for shift in range(0, 64, digit):
        if ((vary >> np.uint64(shift)) & mask) == 0:
            continue
        counts[:] = 0
        for i in range(n):
            counts[((keys[i] >> np.uint64(shift)) & mask) + 1] += 1
        for b in range(1, size + 1):
            counts[b] += counts[b - 1]
        for i in range(n):
            b = (keys[i] >> np.uint64(shift)) & mask
            at = counts[b]
            spare_keys[at] = keys[i]
            spare_order[at] = out[i]
            counts[b] = at + 1
        keys, spare_keys = spare_keys, keys
        out, spare_order = spare_order, out
    return out


def _unsigned(key: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    """A key's values as uint64 in the same order (signed values with the sign bit flipped)."""
    v = np.asarray(key)
    if v.dtype.kind == "i":
        return (v.astype(np.int64).view(np.uint64)) ^ np.uint64(1 << 63)
    if v.dtype.kind == "b":
        return v.astype(np.uint64)
    return np.ascontiguousarray(v, np.uint64)


def radix_order(*keys: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Stable permutation that sorts rows by ``keys`` (integer arrays of any width, the
    most significant first), as ``np.lexsort(keys[::-1])``: LSD radix passes of
    :data:`DIGIT_BITS` over each key in turn, skipping the digits in which all its values agree (an
    ``argsort`` of a 64-bit word took about 100 ns a row, a pass takes 5–10)."""
    n = len(keys[0]) if keys else 0
    order = np.arange(n, dtype=np.int64)
    for key in reversed(keys):
        order = _sorted_by(_unsigned(key), order, DIGIT_BITS)
    return order


def ragged_index(starts: npt.NDArray[Any], lengths: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Indices that gather the ranges ``[starts[i], starts[i] + lengths[i])`` in order
    (stored sketch bytes, payload templates)."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    out_starts = np.cumsum(lengths) - lengths
    index: npt.NDArray[np.int64] = np.repeat(starts - out_starts, lengths) + np.arange(
        total, dtype=np.int64
    )
    return index


SHAPE_KEY_SHIFT = next(shift for name, shift, _ in SHAPE.shifts() if name == "ip_ttl")
"""Rows are ordered by the shape's top fields, protocol, TCP flags and TTL (bits 39 up);
the rest (options length, version, fragment bits) would save 0.01 byte a packet on the
realistic mix and 0.14 on the payload-heavy one, for three more radix passes."""


SHAPE_KEY_BITS = 64 - SHAPE_KEY_SHIFT
"""Bits of the shape's top fields in a row's sort key, below the 32 of its address."""
assert 32 + SHAPE_KEY_BITS <= 64, "a row's sort key fits one word"


def packet_order(
    src_ip4: npt.NDArray[np.uint32], shape: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Stable permutation that sorts packet rows by ``src_ip4``, then by the top fields of
    their packed ``shape`` (protocol, flags, TTL): the order of a stored row group. A
    source's packets of one kind come together, so the columns that a scanner keeps
    constant (window, source port, lengths) repeat in runs: 1.5 bytes a packet less
    than grouping by source alone (docs/architecture.md, "Row order"). Both go in one
    64-bit key, sorted at once (two keys in turn cost 30 % more: a second gather)."""
    key = np.asarray(src_ip4, np.uint64) << np.uint64(SHAPE_KEY_BITS)
    key |= np.ascontiguousarray(shape, np.int64).view(np.uint64) >> np.uint64(SHAPE_KEY_SHIFT)
    return radix_order(key)


def address_order(
    version: npt.NDArray[Any], ip4: npt.NDArray[Any], ip6: npt.NDArray[np.uint8],
    minor: npt.NDArray[Any],
) -> npt.NDArray[np.int64]:  # fmt: skip
    """Rows by address — IPv4 first, by ``ip4``; then IPv6, by ``ip6`` ((rows, 16) bytes)
    — and by ``minor`` (unsigned 32-bit) within one: the order of the tables read by
    address (``address_hours``, ``source_ports``), by radix passes (the IPv6 address as
    two big-endian words)."""
    v6 = np.asarray(version) == 6
    if not v6.any():
        return radix_order(ip4, minor)
    pair = np.ascontiguousarray(ip6).view(">u8").reshape(-1, 2)
    return radix_order(v6, ip4, pair[:, 0], pair[:, 1], minor)
