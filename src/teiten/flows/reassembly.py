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

Ingest uses the columnar entry points (issue 14): :meth:`Reassembler.feed_columns`
takes TCP only (UDP datagrams are built as columns by :mod:`teiten.flows.datagram`)
and keeps a flow that has one client segment so far as a row of
:class:`~teiten.flows.segment.LoneSegments` rather than an object, under the
same policy: counted for what its object would cost, expired and evicted in the
same least-recently-active order (a packet counter, ``stamp``, orders objects
and rows together), promoted to an object when a later packet of the flow
comes. :meth:`feed` and :meth:`flush` give the same sessions as objects.
"""

from __future__ import annotations

import gc
import sys
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.decode.batch import PacketBatch
from teiten.flows.datagram import Datagrams
from teiten.flows.segment import LoneSegments, flow_hashes, lone_cost
from teiten.session import Session

FIN, RST = 0x01, 0x04
FLOW_OVERHEAD = 640
"""Bytes a tracked flow costs beyond its buffers: the flow record, its key (a tuple of two
address ``bytes`` and two port ints) and its table entry, measured with ``tracemalloc``
on CPython 3.11–3.13 (about 520 bytes) and rounded up."""
FlowKey = tuple[int, bytes, bytes, int, int]
"""(proto, client address, server address, client port, server port)."""

__all__ = ["FLOW_OVERHEAD", "Finished", "FlowKey", "Reassembler", "Session", "order_key"]

I64 = npt.NDArray[np.int64]


def order_key(after: Any, rank: Any) -> Any:
    """Where a session comes in a batch's output: ``rank``-th of those finished after packet
    ``after``; a UDP datagram at packet ``i`` comes at ``order_key(i, 0) - 2**32`` (before
    what finished after its own packet)."""
    return (2 * np.asarray(after, np.int64) + 1) * (1 << 32) + np.asarray(rank, np.int64)


@dataclass
class Finished:
    """The sessions one call finished: flows as objects, lone segments as columns, each
    with its :func:`order_key`."""

    sessions: list[Session]
    session_keys: I64
    lone: Datagrams
    lone_keys: I64


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
    stamp: int = 0
    """When the flow was last touched (the reassembler's packet counter): LRU order."""
    canon: int = -1
    """Its :func:`~teiten.flows.segment.flow_hashes` value (-1: not known)."""


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
        self._stamp = 0
        self.promoted = 0
        """Lone-segment flows a later packet made flow objects."""
        self.lone = LoneSegments.empty()
        """Flows with one client segment so far (:meth:`feed_columns` only)."""
        self._canon: Counter[int] = Counter()

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
                self._stamp += 1
                for s in self._packet(c, i, payload):
                    for one in self._sessions(s):
                        yield i, one
        finally:
            if enabled:
                gc.enable()
        if len(c["ts"]):
            for s in self._expire(int(c["ts"][-1])):
                for one in self._sessions(s):
                    yield len(c["ts"]), one

    def feed_columns(self, batch: PacketBatch, data: npt.NDArray[np.uint8]) -> Finished:
        """Take a batch's TCP payloads (UDP is left to :mod:`teiten.flows.datagram`); the
        sessions it finished, in :meth:`feed`'s order (:attr:`Finished.session_keys`).

        A segment that starts a flow and is the only packet of its flow in the batch
        is held as a column row (:class:`~teiten.flows.segment.LoneSegments`), not an
        object, and becomes one only if a later packet of its flow comes.
        """
        c = batch.columns
        n = len(c["ts"])
        emitted: list[tuple[int, Session | I64]] = []
        tcp = np.zeros(0, np.int64)
        if len(batch.payload_caplen):
            has = (batch.payload_caplen > 0) & (c["proto"] == 6) & (c["ip_version"] > 0)
            tcp = np.flatnonzero(has)
        enabled = gc.isenabled()
        gc.disable()
        try:
            if len(tcp):
                self._columns(c, tcp, batch, data, emitted)
        finally:
            if enabled:
                gc.enable()
        if n:
            emitted.extend((n, s) for s in self._expire(int(c["ts"][-1])))
        return self._finished(emitted)

    def _columns(
        self,
        c: dict[str, Any],
        tcp: I64,
        batch: PacketBatch,
        data: npt.NDArray[np.uint8],
        emitted: list[tuple[int, Session | I64]],
    ) -> None:
        canon = flow_hashes(c, tcp)
        out = c["is_outbound"][tcp].astype(np.bool_) if "is_outbound" in c else None
        _, inverse, counts = np.unique(canon, return_inverse=True, return_counts=True)
        held_lone = self.lone.canon[self.lone.alive]
        objects = np.fromiter(self._canon, np.uint64, len(self._canon))
        in_lone = np.isin(canon, held_lone)
        lone = (counts[inverse.reshape(-1)] == 1) & ~in_lone & ~np.isin(canon, objects)
        if out is not None:
            lone &= ~out
        length = batch.payload_caplen[tcp].astype(np.int64)
        kept = np.clip(np.minimum(length, self.per_flow_cap), 0, None)
        stamps = self._stamp + 1 + np.arange(len(tcp), dtype=np.int64)
        cost = np.zeros(len(tcp), np.int64)
        cost[lone] = lone_cost(kept[lone], FLOW_OVERHEAD)
        # Flows held as rows that a packet of this batch may continue (promoted then).
        candidates: dict[int, list[int]] = {}
        if in_lone.any():
            hit = np.flatnonzero(self.lone.alive & np.isin(self.lone.canon, canon[in_lone]))
            for j in hit.tolist():
                candidates.setdefault(int(self.lone.canon[j]), []).append(j)
        rows = tcp[lone]
        self.lone.add(c, rows, data, batch.payload_offset[rows].astype(np.int64), length[lone],
                      kept[lone], canon[lone], stamps[lone], cost[lone])  # fmt: skip
        prefix = np.concatenate([[0], np.cumsum(cost)])
        pos = 0
        others = np.flatnonzero(~lone).tolist()
        for k in [*others, len(tcp)]:
            if k > pos:  # the lone segments before packet k: only their memory counts
                span = int(prefix[k] - prefix[pos])
                if self.held + span > self.memory_cap:
                    for j in range(pos, k):
                        self.held += int(cost[j])
                        self._stamp = int(stamps[j])
                        if self.held > self.memory_cap:
                            emitted.extend((int(tcp[j]), s) for s in self._evict())
                else:
                    self.held += span
            if k == len(tcp):
                break
            i = int(tcp[k])
            self._stamp = int(stamps[k])
            h = int(canon[k])
            if h in candidates:
                self._promote(c, i, candidates[h])
            start = int(batch.payload_offset[i])
            payload = data[start : start + int(batch.payload_caplen[i])].tobytes()
            emitted.extend((i, s) for s in self._packet(c, i, payload, h))
            pos = k + 1
        self._stamp = int(stamps[-1])

    def _promote(self, c: dict[str, Any], i: int, held: list[int]) -> None:
        """Make the lone-segment flow packet ``i`` continues (if any) a flow object."""
        src, dst = self._addresses(c, i)
        sport, dport = int(c["src_port"][i]), int(c["dst_port"][i])
        ends = {(6, src, dst, sport, dport), (6, dst, src, dport, sport)}
        lone = self.lone
        for j in held:
            if not lone.alive[j] or lone.key(j) not in ends:
                continue
            key = lone.key(j)
            flow = _Flow(6, int(lone.version[j]), key, int(lone.ts[j]), int(lone.ts[j]))
            flow.base, flow.packets = int(lone.seq[j]), 1
            flow.client_total = int(lone.length[j])
            flow.truncated = int(lone.length[j]) > self.per_flow_cap
            flow.closed_at = int(lone.closed_at[j])
            flow.buf += lone.payload(j)
            flow.held, flow.stamp, flow.canon = (
                int(lone.cost[j]),
                int(lone.stamp[j]),
                int(lone.canon[j]),
            )
            lone.alive[j] = False
            self.promoted += 1
            self.flows[key] = flow
            self._canon[flow.canon] += 1
            return

    def _finished(self, emitted: list[tuple[int, Session | I64]]) -> Finished:
        counts = np.array([1 if isinstance(s, Session) else len(s) for _, s in emitted], np.int64)
        after = np.repeat(np.array([i for i, _ in emitted], np.int64), counts)
        is_object = np.repeat(np.array([isinstance(s, Session) for _, s in emitted], bool), counts)
        # rank: position among the sessions finished after the same packet (runs are contiguous)
        new_run = np.ones(len(after), bool)
        new_run[1:] = after[1:] != after[:-1]
        starts = np.flatnonzero(new_run)
        ranks = np.arange(len(after)) - np.repeat(starts, np.diff(np.append(starts, len(after))))
        keys = order_key(after, ranks)
        arrays = [s for _, s in emitted if not isinstance(s, Session)]
        which = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        lone = self.lone.sessions(which, self.per_flow_cap)
        self.lone.compact()
        sessions = [s for _, s in emitted if isinstance(s, Session)]
        return Finished(sessions, keys[is_object], lone, keys[~is_object])

    def flush_columns(self) -> Finished:
        """Every flow still open (end of input), as :meth:`feed_columns` gives them."""
        return self._finished([(0, s) for s in self._all()])

    def _sessions(self, s: Session | I64) -> Iterator[Session]:
        """Sessions as objects (the object API): lone-segment flows made objects."""
        if isinstance(s, Session):
            yield s
            return
        lone = self.lone
        for j in s.tolist():
            _, client, server, cport, sport = lone.key(j)
            length, ts = int(lone.length[j]), int(lone.ts[j])
            yield Session(6, int(lone.version[j]), client, server, cport, sport, ts, ts,
                          lone.payload(j), b"", length, 1,
                          truncated=length > self.per_flow_cap)  # fmt: skip

    def _addresses(self, c: dict[str, Any], i: int) -> tuple[bytes, bytes]:
        if c["ip_version"][i] == 4:
            return (
                int(c["src_ip4"][i]).to_bytes(4, "big"),
                int(c["dst_ip4"][i]).to_bytes(4, "big"),
            )
        return c["src_ip6"][i].tobytes(), c["dst_ip6"][i].tobytes()

    def _packet(
        self, c: dict[str, Any], i: int, payload: bytes, canon: int = -1
    ) -> Iterator[Session | I64]:
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
            flow = self.flows[key] = _Flow(6, version, key, ts, ts, canon=canon)
            if canon >= 0:
                self._canon[canon] += 1
        self.flows.move_to_end(key)
        flow.stamp = self._stamp
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
            yield from self._evict()

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
        if flow.canon >= 0:
            self._canon[flow.canon] -= 1
            if not self._canon[flow.canon]:
                del self._canon[flow.canon]
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

    def _expire(self, now: int) -> Iterator[Session | I64]:
        if now < self._sweep_at:
            return
        self._sweep_at = now + min(self.idle_ns, self.close_ns)
        done = [
            k
            for k, f in self.flows.items()
            if now - f.ts_last > self.idle_ns or (f.closed_at and now - f.ts_last > self.close_ns)
        ]
        lone = self.lone
        age = now - lone.ts
        old = lone.alive & ((age > self.idle_ns) | ((lone.closed_at != 0) & (age > self.close_ns)))
        yield from self._merged(done, np.flatnonzero(old))

    def _merged(self, keys: list[FlowKey], lone: I64) -> Iterator[Session | I64]:
        """Flows ``keys`` (in LRU order) and lone-segment flows ``lone`` (in stamp order),
        finished in the order of their last touch (lone ones in runs, as arrays)."""
        stamps = self.lone.stamp[lone]
        at = 0
        for k in keys:
            stop = int(np.searchsorted(stamps, self.flows[k].stamp))
            if stop > at:
                yield self._emit_lone(lone[at:stop])
                at = stop
            yield self._emit(k)
        if at < len(lone):
            yield self._emit_lone(lone[at:])

    def _emit_lone(self, which: I64) -> I64:
        self.lone.alive[which] = False
        self.held -= int(self.lone.cost[which].sum())
        return which

    def _evict(self) -> Iterator[Session | I64]:
        """Finish the least recently touched flows until memory is under 90 % of the cap."""
        lone = self.lone
        live = (
            np.flatnonzero(lone.alive & (lone.stamp <= self._stamp)).tolist() if len(lone) else []
        )
        at = 0
        while self.held > self.memory_cap * 0.9:
            head = next(iter(self.flows), None)
            if head is None and at == len(live):
                break
            self.evicted_for_memory += 1
            if at < len(live) and (head is None or lone.stamp[live[at]] < self.flows[head].stamp):
                yield self._emit_lone(np.array([live[at]], np.int64))
                at += 1
            else:
                assert head is not None
                yield self._emit(head)

    def _all(self) -> Iterator[Session | I64]:
        return self._merged(list(self.flows), np.flatnonzero(self.lone.alive))

    def flush(self) -> Iterator[Session]:
        """Every flow still open (end of input)."""
        for s in self._all():
            yield from self._sessions(s)


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
