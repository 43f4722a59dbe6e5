"""Bounded TCP reassembly of client→server bytes, and UDP datagrams, into sessions.

Only packets that carry payload create or feed a flow, so a flood of SYNs
(a darknet's daily fare, or a million half-open connections) costs nothing
here. The policy, stated once:

* **client** is the side outside the sensor's networks (for a packet marked
  outbound, the destination); without sensor networks, the sender of the
  first payload;
* client segments are placed by sequence number relative to the first one
  seen (32-bit wrap handled) into one contiguous buffer per flow; **the first
  copy of a byte wins**: a retransmission or an overlapping segment — also one
  with a lower sequence number that arrives later — only fills bytes not yet
  received, never replaces one. The stream ends at the first gap, and the
  session says so (``gap``);
* the client bytes of a flow span at most ``per_flow_cap`` sequence numbers
  (default 64 KiB) and at most ``server_cap`` server bytes (prompts, banners;
  4 KiB) are kept; what falls outside is counted, not kept (``truncated``);
  bytes already held are never dropped to make room;
* a flow idle for ``idle_s`` seconds of capture time, or closed by FIN/RST
  and idle for ``close_s``, is emitted; when the memory held exceeds
  ``memory_cap`` the least recently active flows are emitted early. The
  memory counted is what the flow's objects really take: the allocated size
  of its buffers (``sys.getsizeof``, over-allocation included) plus
  :data:`FLOW_OVERHEAD` for the flow record, its key and its table entry, so
  one-byte segments cost what they really cost;
* every UDP datagram with payload is its own session.
"""

from __future__ import annotations

import gc
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.decode.batch import PacketBatch
from teiten.session import Session

FIN, RST = 0x01, 0x04
FLOW_OVERHEAD = 640
"""Bytes a tracked flow costs beyond its buffers: the flow record, its key (a tuple of two
address ``bytes`` and two port ints) and its table entry, measured with ``tracemalloc``
on CPython 3.11–3.13 (about 520 bytes) and rounded up."""
FlowKey = tuple[int, bytes, bytes, int, int]
"""(proto, client address, server address, client port, server port)."""

__all__ = ["FLOW_OVERHEAD", "FlowKey", "Reassembler", "Session"]


@dataclass(slots=True)
class _Flow:
    proto: int
    ip_version: int
    key: FlowKey
    ts_first: int
    ts_last: int
    base: int = -1
    """Sequence number of the first client segment seen; offsets are relative to it."""
    lo: int = 0
    """Relative offset of ``buf[0]`` (always a received byte once ``buf`` is not empty)."""
    buf: bytearray = field(default_factory=bytearray)
    """Client bytes from ``lo``, contiguous; positions not received yet are zero."""
    mask: bytearray | None = None
    """One byte per position of ``buf``, 1 = received; None while ``buf`` has no hole."""
    held: int = 0
    """Memory this flow is counted for in :attr:`Reassembler.held`."""
    server: bytearray = field(default_factory=bytearray)
    client_total: int = 0
    packets: int = 0
    closed_at: int = 0
    truncated: bool = False


class Reassembler:
    """Feeds on decoded batches; yields sessions as flows finish."""

    def __init__(
        self,
        *,
        per_flow_cap: int = 64 << 10,
        server_cap: int = 4 << 10,
        memory_cap: int = 256 << 20,
        idle_s: float = 120.0,
        close_s: float = 5.0,
        sensor_nets: Any = None,
        datagrams: bool = True,
    ) -> None:
        self.per_flow_cap, self.server_cap, self.memory_cap = per_flow_cap, server_cap, memory_cap
        self.datagrams = datagrams
        """False: UDP datagrams are left out (ingest builds them as columns with
        :func:`teiten.flows.datagram.datagrams`; same sessions, same policy)."""
        self.idle_ns, self.close_ns = int(idle_s * 1e9), int(close_s * 1e9)
        self.flows: OrderedDict[FlowKey, _Flow] = OrderedDict()
        self.held = 0
        self.evicted_for_memory = 0
        self._sweep_at = 0

    def feed(self, batch: PacketBatch, data: npt.NDArray[np.uint8]) -> Iterator[Session]:
        """Take the payload-carrying TCP/UDP packets of a batch (``data`` is its chunk)."""
        for _, s in self.feed_indexed(batch, data):
            yield s

    def feed_indexed(
        self, batch: PacketBatch, data: npt.NDArray[np.uint8]
    ) -> Iterator[tuple[int, Session]]:
        """Like :meth:`feed`, each session with the index of the packet after which it was
        finished (``len(batch)`` for the flows that expired at the end of the batch)."""
        c = batch.columns
        udp = (c["proto"] == 17) if self.datagrams else np.zeros(len(c["proto"]), np.bool_)
        has = (batch.payload_caplen > 0) & ((c["proto"] == 6) | udp)
        has &= c["ip_version"] > 0
        # Flow state is many small acyclic objects: the cyclic collector's
        # repeated full scans of them made a million flows quadratic.
        enabled = gc.isenabled()
        gc.disable()
        try:
            for i in np.flatnonzero(has).tolist():
                start = int(batch.payload_offset[i])
                payload = data[start : start + int(batch.payload_caplen[i])].tobytes()
                for s in self._packet(c, i, payload):
                    yield i, s
        finally:
            if enabled:
                gc.enable()
        if len(c["ts"]):
            for s in self._expire(int(c["ts"][-1])):
                yield len(c["ts"]), s

    def _addresses(self, c: dict[str, Any], i: int) -> tuple[bytes, bytes]:
        if c["ip_version"][i] == 4:
            return (
                int(c["src_ip4"][i]).to_bytes(4, "big"),
                int(c["dst_ip4"][i]).to_bytes(4, "big"),
            )
        return c["src_ip6"][i].tobytes(), c["dst_ip6"][i].tobytes()

    def _packet(self, c: dict[str, Any], i: int, payload: bytes) -> Iterator[Session]:
        src, dst = self._addresses(c, i)
        sport, dport, proto = int(c["src_port"][i]), int(c["dst_port"][i]), int(c["proto"][i])
        ts, version = int(c["ts"][i]), int(c["ip_version"][i])
        outbound = bool(c["is_outbound"][i]) if "is_outbound" in c else False
        if proto == 17:
            ends = (dst, src, dport, sport) if outbound else (src, dst, sport, dport)
            yield Session(
                17,
                version,
                ends[0],
                ends[1],
                ends[2],
                ends[3],
                ts,
                ts,
                payload[: self.per_flow_cap] if not outbound else b"",
                payload[: self.server_cap] if outbound else b"",
                len(payload),
                1,
                truncated=len(payload) > self.per_flow_cap,
            )
            return
        forward: FlowKey = (6, src, dst, sport, dport)
        backward: FlowKey = (6, dst, src, dport, sport)
        if outbound or (backward in self.flows and forward not in self.flows):
            key, from_client = backward, False
        else:
            key, from_client = forward, True
        flow = self.flows.get(key)
        if flow is None:
            if not from_client:
                return  # server bytes before any client bytes: nothing to attach them to
            flow = self.flows[key] = _Flow(6, version, key, ts, ts)
        self.flows.move_to_end(key)
        flow.ts_last, flow.packets = ts, flow.packets + 1
        if int(c["tcp_flags"][i]) & (FIN | RST):
            flow.closed_at = flow.closed_at or ts
        if from_client:
            self._client_segment(flow, int(c["tcp_seq"][i]), payload)
        elif len(flow.server) < self.server_cap:
            flow.server += payload[: self.server_cap - len(flow.server)]
        cost = _cost(flow)
        self.held += cost - flow.held
        flow.held = cost
        if self.held > self.memory_cap:
            yield from self._evict_for_memory()

    def _client_segment(self, flow: _Flow, seq: int, payload: bytes) -> None:
        flow.client_total += len(payload)
        if flow.base < 0:
            flow.base = seq
        rel = (seq - flow.base) & 0xFFFFFFFF
        if rel >= 1 << 31:  # before the first segment seen (reordered): keep relative
            rel -= 1 << 32
        a, b = rel, rel + len(payload)
        # The flow's bytes span at most per_flow_cap offsets; what is held stays.
        floor, ceiling = -self.per_flow_cap, self.per_flow_cap
        if flow.buf:
            floor = max(floor, flow.lo + len(flow.buf) - self.per_flow_cap)
            ceiling = min(ceiling, flow.lo + self.per_flow_cap)
        ka, kb = max(a, floor), min(b, ceiling)
        if ka >= kb:
            flow.truncated |= b > ceiling or a < floor
            return
        flow.truncated |= (ka, kb) != (a, b)
        _place(flow, ka, payload[ka - a : kb - a])

    def _emit(self, key: FlowKey) -> Session:
        flow = self.flows.pop(key)
        self.held -= flow.held
        if flow.mask is None:
            stream, gap = bytes(flow.buf), False
        else:
            stream, gap = bytes(flow.buf[: flow.mask.find(0)]), True
        _, client, server, cport, sport = key
        return Session(
            6,
            flow.ip_version,
            client,
            server,
            cport,
            sport,
            flow.ts_first,
            flow.ts_last,
            stream,
            bytes(flow.server),
            flow.client_total,
            flow.packets,
            gap,
            flow.truncated,
        )

    def _expire(self, now: int) -> Iterator[Session]:
        if now < self._sweep_at:
            return
        self._sweep_at = now + min(self.idle_ns, self.close_ns)
        done = [
            k
            for k, f in self.flows.items()
            if now - f.ts_last > self.idle_ns or (f.closed_at and now - f.ts_last > self.close_ns)
        ]
        for k in done:
            yield self._emit(k)

    def _evict_for_memory(self) -> Iterator[Session]:
        while self.held > self.memory_cap * 0.9 and self.flows:
            self.evicted_for_memory += 1
            yield self._emit(next(iter(self.flows)))

    def flush(self) -> Iterator[Session]:
        """Every flow still open (end of input)."""
        for k in list(self.flows):
            yield self._emit(k)


def _cost(flow: _Flow) -> int:
    """Bytes the flow really holds: its buffers' allocations plus the fixed overhead."""
    cost = FLOW_OVERHEAD + sys.getsizeof(flow.buf) + sys.getsizeof(flow.server)
    return cost + (sys.getsizeof(flow.mask) if flow.mask is not None else 0)


def _place(flow: _Flow, at: int, data: bytes) -> None:
    """Write ``data`` at relative offset ``at`` where no byte was received yet."""
    buf = flow.buf
    end = flow.lo + len(buf)
    if not buf:
        flow.lo = at
        buf += data
        return
    if flow.mask is None and at == end:  # the usual case: the next bytes in order
        buf += data
        return
    stop = at + len(data)
    if flow.mask is None and flow.lo <= at and stop <= end:  # a pure retransmission
        return
    mask = flow.mask if flow.mask is not None else bytearray(b"\x01") * len(buf)
    if at < flow.lo:  # reordered: bytes before the first one held
        grow = flow.lo - at
        buf[0:0] = bytes(grow)
        mask[0:0] = bytes(grow)
        flow.lo = at
    if stop > flow.lo + len(buf):
        grow = stop - flow.lo - len(buf)
        buf += bytes(grow)
        mask += bytes(grow)
    i, j = at - flow.lo, stop - flow.lo
    while i < j:  # each run of positions not received yet takes the new bytes
        i = mask.find(0, i, j)
        if i < 0:
            break
        k = mask.find(1, i, j)
        k = j if k < 0 else k
        buf[i:k] = data[i - (at - flow.lo) : k - (at - flow.lo)]
        mask[i:k] = b"\x01" * (k - i)
        i = k
    flow.mask = mask if mask.find(0) >= 0 else None
