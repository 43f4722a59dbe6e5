"""One-packet sessions as columns: every UDP datagram with payload, straight from a batch.

A UDP datagram is its own session (the policy of :mod:`teiten.flows.reassembly`),
so it needs no flow state: :func:`datagrams` takes a decoded batch's UDP packets
that carry payload and gives their sessions as arrays — endpoints, time, what
each side sent as an Arrow binary column cut from the chunk's buffer — without a
Python object per packet. Client and server follow the reassembler's rule (for
a packet marked outbound the client is the destination, and the payload is
what the server sent).

Bots send the same bytes to every address, so the datagrams are grouped by what
classification looks at — (client bytes, server port, server bytes) — with a
64-bit FNV-1a hash computed in numba over the payloads, and every member of a
group is then compared byte for byte with the group's first packet. A hash
collision (payloads are attacker-controlled) therefore never merges different
bytes: the packets that differ from their group's first are regrouped by their
exact bytes. :attr:`Datagrams.distinct` holds each group's key once, so a batch
classifies each distinct payload once.

:func:`one_packet` builds the same columns from any arrays; reassembly uses it
for the TCP flows that ended with a single client segment
(:mod:`teiten.flows.segment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.decode.batch import PacketBatch
from teiten.decode.jit import kernel

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

__all__ = ["Datagrams", "PayloadKey", "datagrams", "gather", "one_packet"]

PayloadKey = tuple[bytes, int, bytes]
"""(client bytes, server port, server bytes): what a verdict depends on."""

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@dataclass
class Datagrams:
    """One-packet UDP sessions of a batch, one array per column (all of length ``len``)."""

    rows: I64
    """Each session's packet index in the batch (UDP), or -1 (TCP, see ``reassembly``)."""
    proto: npt.NDArray[np.uint8]
    ip_version: npt.NDArray[np.uint8]
    client4: npt.NDArray[np.uint32]
    """Client IPv4 address (0 for IPv6)."""
    server4: npt.NDArray[np.uint32]
    client6: U8
    """Client IPv6 address, ``(n, 16)`` (zeros for IPv4)."""
    server6: U8
    client_port: npt.NDArray[np.uint16]
    server_port: npt.NDArray[np.uint16]
    ts: I64
    length: I64
    """Payload bytes captured (the session's ``client_total``)."""
    truncated: npt.NDArray[np.bool_]
    client_bytes: pa.Array
    server_bytes: pa.Array
    group: npt.NDArray[np.int32]
    """Index into :attr:`distinct` of each session's payload key."""
    distinct: list[PayloadKey]

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def select(self, keep: npt.NDArray[np.bool_]) -> Datagrams:
        """The sessions where ``keep`` is true (``distinct`` is kept whole)."""
        at = pa.array(np.flatnonzero(keep))
        return Datagrams(
            self.rows[keep], self.proto[keep], self.ip_version[keep], self.client4[keep],
            self.server4[keep], self.client6[keep], self.server6[keep], self.client_port[keep],
            self.server_port[keep], self.ts[keep], self.length[keep], self.truncated[keep],
            self.client_bytes.take(at), self.server_bytes.take(at), self.group[keep],
            self.distinct,
        )  # fmt: skip


def datagram_rows(batch: PacketBatch) -> I64:
    """Indices of the packets :func:`datagrams` takes: IP UDP with captured payload."""
    c = batch.columns
    if not len(batch.payload_caplen):
        return np.zeros(0, np.int64)
    take = (batch.payload_caplen > 0) & (c["proto"] == 17) & (c["ip_version"] > 0)
    return np.flatnonzero(take).astype(np.int64)


def datagrams(
    batch: PacketBatch, data: U8, *, per_flow_cap: int = 64 << 10, server_cap: int = 4 << 10
) -> Datagrams:
    """The one-packet sessions of a batch's UDP datagrams (``data`` is the batch's chunk)."""
    c = batch.columns
    rows = datagram_rows(batch)
    n = len(rows)
    out = c["is_outbound"][rows].astype(np.bool_) if "is_outbound" in c else np.zeros(n, np.bool_)
    length = batch.payload_caplen[rows].astype(np.int64)
    version = c["ip_version"][rows].astype(np.uint8)
    src4, dst4 = c["src_ip4"][rows], c["dst_ip4"][rows]
    src6, dst6 = c["src_ip6"][rows], c["dst_ip6"][rows]
    sport, dport = c["src_port"][rows], c["dst_port"][rows]
    return one_packet(
        rows, np.full(n, 17, np.uint8), version,
        np.where(out, dst4, src4), np.where(out, src4, dst4),
        np.where(out[:, None], dst6, src6), np.where(out[:, None], src6, dst6),
        np.where(out, dport, sport), np.where(out, sport, dport),
        c["ts"][rows], length, length > per_flow_cap, data,
        batch.payload_offset[rows].astype(np.int64),
        np.where(out, 0, np.minimum(length, per_flow_cap)),
        np.where(out, np.minimum(length, server_cap), 0), out,
    )  # fmt: skip


def one_packet(
    rows: I64, proto: Any, version: Any, client4: Any, server4: Any, client6: Any,
    server6: Any, client_port: Any, server_port: Any, ts: Any, length: I64, truncated: Any,
    data: U8, start: I64, client_len: I64, server_len: I64, out: Any,
) -> Datagrams:  # fmt: skip
    """One-packet sessions from their columns; the bytes each side sent are
    ``data[start : start + client_len]`` and ``data[start : start + server_len]`` (one of
    the two lengths is zero: ``out`` says which side sent the packet)."""
    four = version == 4
    client4, server4 = client4.astype(np.uint32), server4.astype(np.uint32)
    client4[~four], server4[~four] = 0, 0
    client6, server6 = client6.astype(np.uint8), server6.astype(np.uint8)
    client6[four], server6[four] = 0, 0
    port = server_port.astype(np.uint16)
    group, distinct = _groups(data, start, client_len + server_len, port, out.astype(np.bool_))
    return Datagrams(
        rows, proto.astype(np.uint8), version.astype(np.uint8), client4, server4, client6,
        server6, client_port.astype(np.uint16), port, ts.astype(np.int64), length,
        truncated.astype(np.bool_), _binary(data, start, client_len),
        _binary(data, start, server_len), group, distinct,
    )  # fmt: skip


def gather(data: U8, start: I64, length: I64) -> U8:
    """``data[start[i] : start[i] + length[i]]`` for every ``i``, one after the other."""
    offsets = np.zeros(len(start) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    buf = np.empty(int(offsets[-1]), np.uint8)
    _gather(data, start.astype(np.int64), length.astype(np.int64), offsets, buf)
    return buf


def _binary(data: U8, start: I64, length: I64) -> pa.Array:
    """A binary column of ``data[start[i] : start[i] + length[i]]``, gathered in numba."""
    offsets = np.zeros(len(start) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    buf = gather(data, start, length)
    if offsets[-1] < 2**31:  # always for one chunk's payloads: binary's own 32-bit offsets
        small = pa.py_buffer(offsets.astype(np.int32))
        return pa.BinaryArray.from_buffers(
            pa.binary(), len(start), [None, small, pa.py_buffer(buf)]
        )
    large = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(start), [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )
    return large.cast(pa.binary())


def _groups(
    data: U8, start: I64, kept: I64, port: npt.NDArray[np.uint16], out: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int32], list[PayloadKey]]:
    """Each datagram's group of identical (bytes, port, direction), and each group's key."""
    n = len(start)
    if not n:
        return np.zeros(0, np.int32), []
    wide = port.astype(np.int64)
    way = out.astype(np.uint8)
    hashes = np.empty(n, np.uint64)
    _hashes(data, start, kept, wide, way, hashes)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    rep = first[inverse.reshape(-1)].astype(np.int64)
    same = np.ones(n, np.bool_)  # equal hashes; equal bytes, port and direction too?
    _same(data, start, kept, wide, way, rep, same)
    group = inverse.reshape(-1).astype(np.int32)
    keys: list[PayloadKey] = []
    for i in first.tolist():
        keys.append(_key(data, int(start[i]), int(kept[i]), int(port[i]), bool(out[i])))
    if not same.all():  # a collision: regroup those packets by their exact bytes
        extra: dict[PayloadKey, int] = {}
        for i in np.flatnonzero(~same).tolist():
            key = _key(data, int(start[i]), int(kept[i]), int(port[i]), bool(out[i]))
            at = extra.setdefault(key, len(keys))
            if at == len(keys):
                keys.append(key)
            group[i] = at
    return group, keys


def _key(data: U8, start: int, kept: int, port: int, out: bool) -> PayloadKey:
    payload = data[start : start + kept].tobytes()
    return (b"", port, payload) if out else (payload, port, b"")


@kernel
def _hashes(data: U8, start: I64, kept: I64, port: I64, out: U8, h: Any) -> None:
    """FNV-1a (64 bits) of each datagram's kept bytes, then its port, length, direction."""
    for i in range(start.shape[0]):
        x = _FNV_OFFSET
        for p in range(start[i], start[i] + kept[i]):
            x = (x ^ np.uint64(data[p])) * _FNV_PRIME
        x = (x ^ np.uint64(port[i])) * _FNV_PRIME
        x = (x ^ np.uint64(kept[i])) * _FNV_PRIME
        x = (x ^ np.uint64(out[i])) * _FNV_PRIME
        h[i] = x


@kernel
def _same(data: U8, start: I64, kept: I64, port: I64, out: U8, rep: I64, ok: Any) -> None:
    """Clear ``ok[i]`` where datagram ``i`` differs from datagram ``rep[i]`` (bytes, port or
    direction)."""
    for i in range(start.shape[0]):
        r = rep[i]
        if r == i:
            continue
        if kept[i] != kept[r] or port[i] != port[r] or out[i] != out[r]:
            ok[i] = False
            continue
        a, b = start[i], start[r]
        for k in range(kept[i]):
            if data[a + k] != data[b + k]:
                ok[i] = False
                break


@kernel
def _gather(data: U8, start: I64, length: I64, offsets: I64, buf: U8) -> None:
    for i in range(start.shape[0]):
        o = offsets[i]
        s = start[i]
        for k in range(length[i]):
            buf[o + k] = data[s + k]
