"""Bounded TCP reassembly of client→server bytes, and UDP datagrams, into sessions.

Only packets that carry payload create or feed a flow, so a flood of SYNs
(a darknet's daily fare, or a million half-open connections) costs nothing
here. The policy, stated once:

* **client** is the side outside the sensor's networks (for a packet marked
  outbound, the destination); without sensor networks, the sender of the
  first payload;
* client segments are placed by sequence number relative to the first one
  seen (32-bit wrap handled); **the first copy of a byte wins** (later
  retransmissions and overlapping segments do not overwrite it); the stream
  ends at the first gap, and the session says so (``gap``);
* at most ``per_flow_cap`` client bytes (default 64 KiB) and ``server_cap``
  server bytes (prompts, banners; 4 KiB) are kept per flow; more is counted,
  not kept (``truncated``);
* a flow idle for ``idle_s`` seconds of capture time, or closed by FIN/RST
  and idle for ``close_s``, is emitted; when the bytes held — payload plus
  :data:`FLOW_OVERHEAD` per flow — exceed ``memory_cap`` the least recently
  active flows are emitted early;
* every UDP datagram with payload is its own session.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.decode.batch import PacketBatch

FIN, RST = 0x01, 0x04
FLOW_OVERHEAD = 1024
"""Bytes a tracked flow costs beyond its payload (Python objects), counted in the cap."""
FlowKey = tuple[int, bytes, bytes, int, int]
"""(proto, client address, server address, client port, server port)."""


@dataclass
class Session:
    """One client→server conversation with what each side sent (capped)."""

    proto: int
    ip_version: int
    client: bytes
    """Client address, 4 or 16 bytes."""
    server: bytes
    client_port: int
    server_port: int
    ts_first: int
    ts_last: int
    client_bytes: bytes
    server_bytes: bytes
    client_total: int
    """Client payload bytes seen (including what was not kept)."""
    packets: int
    gap: bool = False
    truncated: bool = False


@dataclass
class _Flow:
    proto: int
    ip_version: int
    key: FlowKey
    ts_first: int
    ts_last: int
    base: int = -1
    segments: dict[int, bytes] = field(default_factory=dict)
    held: int = 0
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
    ) -> None:
        self.per_flow_cap, self.server_cap, self.memory_cap = per_flow_cap, server_cap, memory_cap
        self.idle_ns, self.close_ns = int(idle_s * 1e9), int(close_s * 1e9)
        self.flows: OrderedDict[FlowKey, _Flow] = OrderedDict()
        self.held = 0
        self.evicted_for_memory = 0
        self._sweep_at = 0

    def feed(self, batch: PacketBatch, data: npt.NDArray[np.uint8]) -> Iterator[Session]:
        """Take the payload-carrying TCP/UDP packets of a batch (``data`` is its chunk)."""
        c = batch.columns
        has = (batch.payload_caplen > 0) & ((c["proto"] == 6) | (c["proto"] == 17))
        has &= c["ip_version"] > 0
        # Flow state is many small acyclic objects: the cyclic collector's
        # repeated full scans of them made a million flows quadratic.
        enabled = gc.isenabled()
        gc.disable()
        try:
            for i in np.flatnonzero(has).tolist():
                start = int(batch.payload_offset[i])
                payload = data[start : start + int(batch.payload_caplen[i])].tobytes()
                yield from self._packet(c, i, payload)
        finally:
            if enabled:
                gc.enable()
        if len(c["ts"]):
            yield from self._expire(int(c["ts"][-1]))

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
            self.held += FLOW_OVERHEAD
        self.flows.move_to_end(key)
        flow.ts_last, flow.packets = ts, flow.packets + 1
        if int(c["tcp_flags"][i]) & (FIN | RST):
            flow.closed_at = flow.closed_at or ts
        if from_client:
            self._client_segment(flow, int(c["tcp_seq"][i]), payload)
        elif len(flow.server) < self.server_cap:
            take = payload[: self.server_cap - len(flow.server)]
            flow.server += take
            self.held += len(take)
        if self.held > self.memory_cap:
            yield from self._evict_for_memory()

    def _client_segment(self, flow: _Flow, seq: int, payload: bytes) -> None:
        flow.client_total += len(payload)
        if flow.base < 0:
            flow.base = seq
        rel = (seq - flow.base) & 0xFFFFFFFF
        if rel >= 1 << 31:  # before the first segment seen (reordered): keep relative
            rel -= 1 << 32
        if rel in flow.segments or rel >= self.per_flow_cap or rel < -self.per_flow_cap:
            flow.truncated |= rel >= self.per_flow_cap
            return
        room = self.per_flow_cap - flow.held
        if room <= 0:
            flow.truncated = True
            return
        kept = payload[:room]
        flow.truncated |= len(kept) < len(payload)
        flow.segments[rel] = kept
        flow.held += len(kept)
        self.held += len(kept)

    def _emit(self, key: FlowKey) -> Session:
        flow = self.flows.pop(key)
        self.held -= flow.held + len(flow.server) + FLOW_OVERHEAD
        stream, gap = _assemble(flow.segments, self.per_flow_cap)
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


def _assemble(segments: dict[int, bytes], cap: int) -> tuple[bytes, bool]:
    """The contiguous stream from the lowest offset; first copy of each byte wins."""
    if not segments:
        return b"", False
    out = bytearray()
    order = sorted(segments)
    end = order[0]
    for rel in order:
        if rel > end:
            return bytes(out[:cap]), True
        data = segments[rel]
        if rel + len(data) > end:
            out += data[end - rel :]
            end = rel + len(data)
    return bytes(out[:cap]), False
