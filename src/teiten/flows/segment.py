"""TCP flows that so far hold one client segment, kept as columns.

Most TCP payloads a darknet sees are one segment without a handshake: a flow
that never gets a second packet. :class:`~teiten.flows.reassembly.Reassembler`
keeps such a flow here — arrays, and its bytes in one buffer — instead of a
flow object; when a later packet of the flow comes, the flow is promoted to an
object and reassembled as any other. A flow held here costs what its object
would cost (:func:`lone_cost`), is expired and evicted in the same order, and
gives the same session (as a column row, :func:`one_packet`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.flows.datagram import Datagrams, gather, one_packet

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

__all__ = ["LoneSegments", "flow_hashes", "lone_cost"]

_COSTS: dict[int, int] = {}
_EMPTY = sys.getsizeof(bytearray())
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def lone_cost(kept: I64, overhead: int) -> I64:
    """What a flow object holding ``kept`` client bytes (appended to an empty
    ``bytearray``, as reassembly does) and no server bytes is counted for."""
    lengths = np.unique(kept).tolist()
    for n in lengths:
        if n not in _COSTS:
            buf = bytearray()
            buf += bytes(n)
            _COSTS[n] = sys.getsizeof(buf)
    table = np.array([_COSTS[n] for n in lengths], np.int64)
    return overhead + _EMPTY + table[np.searchsorted(lengths, kept)]


def _mix(x: Any) -> Any:
    """splitmix64's finaliser, on uint64 arrays."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def flow_hashes(c: dict[str, Any], rows: I64) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each packet's flow, equal for both directions (not collision-proof:
    callers compare the addresses and ports before they treat two packets as one flow)."""
    four = c["ip_version"][rows] == 4
    ends = []
    for ip4, ip6, port in (("src_ip4", "src_ip6", "src_port"), ("dst_ip4", "dst_ip6", "dst_port")):
        six = np.ascontiguousarray(c[ip6][rows]).view(np.uint64).reshape(-1, 2)
        addr = np.where(four, c[ip4][rows].astype(np.uint64), _mix(six[:, 0]) ^ six[:, 1])
        ends.append(_mix(_mix(addr) ^ c[port][rows].astype(np.uint64)))
    hashes: npt.NDArray[np.uint64] = _mix(ends[0] + ends[1] + four.astype(np.uint64))
    return hashes


@dataclass
class LoneSegments:
    """The one-segment flows held, in the order they were made (their ``stamp``)."""

    canon: npt.NDArray[np.uint64]
    stamp: I64
    ts: I64
    closed_at: I64
    seq: I64
    version: npt.NDArray[np.uint8]
    client4: npt.NDArray[np.uint32]
    server4: npt.NDArray[np.uint32]
    client6: U8
    server6: U8
    client_port: npt.NDArray[np.uint16]
    server_port: npt.NDArray[np.uint16]
    length: I64
    kept: I64
    start: I64
    """Where each flow's kept bytes start in :attr:`data`."""
    cost: I64
    alive: npt.NDArray[np.bool_]
    data: U8

    @classmethod
    def empty(cls) -> LoneSegments:
        z = np.zeros(0, np.int64)
        return cls(
            np.zeros(0, np.uint64), z, z, z, z, np.zeros(0, np.uint8), np.zeros(0, np.uint32),
            np.zeros(0, np.uint32), np.zeros((0, 16), np.uint8), np.zeros((0, 16), np.uint8),
            np.zeros(0, np.uint16), np.zeros(0, np.uint16), z, z, z, z,
            np.zeros(0, np.bool_), np.zeros(0, np.uint8),
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.stamp.shape[0])

    def add(
        self, c: dict[str, Any], rows: I64, data: U8, offset: I64, length: I64,
        kept: I64, canon: npt.NDArray[np.uint64], stamp: I64, cost: I64,
    ) -> None:  # fmt: skip
        """Append the flows of some client segments (``rows`` of a batch, ``data`` its chunk)."""
        flags = c["tcp_flags"][rows].astype(np.int64)
        ts = c["ts"][rows].astype(np.int64)
        starts = np.zeros(len(rows), np.int64)
        np.cumsum(kept[:-1], out=starts[1:])
        got = gather(data, offset, kept)
        self.canon = np.concatenate([self.canon, canon])
        self.stamp = np.concatenate([self.stamp, stamp])
        self.ts = np.concatenate([self.ts, ts])
        self.closed_at = np.concatenate([self.closed_at, np.where(flags & 0x05, ts, 0)])
        self.seq = np.concatenate([self.seq, c["tcp_seq"][rows].astype(np.int64)])
        self.version = np.concatenate([self.version, c["ip_version"][rows].astype(np.uint8)])
        self.client4 = np.concatenate([self.client4, c["src_ip4"][rows].astype(np.uint32)])
        self.server4 = np.concatenate([self.server4, c["dst_ip4"][rows].astype(np.uint32)])
        self.client6 = np.concatenate([self.client6, c["src_ip6"][rows].astype(np.uint8)])
        self.server6 = np.concatenate([self.server6, c["dst_ip6"][rows].astype(np.uint8)])
        self.client_port = np.concatenate([self.client_port, c["src_port"][rows].astype(np.uint16)])
        self.server_port = np.concatenate([self.server_port, c["dst_port"][rows].astype(np.uint16)])
        self.length = np.concatenate([self.length, length])
        self.kept = np.concatenate([self.kept, kept])
        self.start = np.concatenate([self.start, starts + len(self.data)])
        self.cost = np.concatenate([self.cost, cost])
        self.alive = np.concatenate([self.alive, np.ones(len(rows), np.bool_)])
        self.data = np.concatenate([self.data, got])

    def compact(self) -> None:
        """Drop the flows no longer held (once they are at least half of the store)."""
        dead = len(self) - int(self.alive.sum())
        if not dead or dead * 2 < len(self):
            return
        keep = self.alive
        data = gather(self.data, self.start[keep], self.kept[keep])
        for name in ("canon", "stamp", "ts", "closed_at", "seq", "version", "client4", "server4",
                     "client6", "server6", "client_port", "server_port", "length", "kept",
                     "cost"):  # fmt: skip
            setattr(self, name, getattr(self, name)[keep])
        starts = np.zeros(len(self.kept), np.int64)
        np.cumsum(self.kept[:-1], out=starts[1:])
        self.start, self.alive = starts, np.ones(len(self.kept), np.bool_)
        self.data = data

    def key(self, i: int) -> tuple[int, bytes, bytes, int, int]:
        """Flow ``i``'s key as reassembly's flow table has it."""
        if self.version[i] == 4:
            client = int(self.client4[i]).to_bytes(4, "big")
            server = int(self.server4[i]).to_bytes(4, "big")
        else:
            client, server = self.client6[i].tobytes(), self.server6[i].tobytes()
        return (6, client, server, int(self.client_port[i]), int(self.server_port[i]))

    def payload(self, i: int) -> bytes:
        return self.data[self.start[i] : self.start[i] + self.kept[i]].tobytes()

    def sessions(self, which: I64, per_flow_cap: int) -> Datagrams:
        """The sessions of flows ``which`` (in that order), as columns."""
        w = which
        n = len(w)
        return one_packet(
            np.full(n, -1, np.int64), np.full(n, 6, np.uint8), self.version[w], self.client4[w],
            self.server4[w], self.client6[w], self.server6[w], self.client_port[w],
            self.server_port[w], self.ts[w], self.length[w], self.length[w] > per_flow_cap,
            self.data, self.start[w], self.kept[w], np.zeros(n, np.int64), np.zeros(n, np.bool_),
        )  # fmt: skip
