"""Build the responder's TCP sessions, from who opens them to the closing FIN.

A sensor that also runs listeners sees whole conversations on a few ports.
Each :class:`SessionPlan` becomes the packets of one session (client Linux
stack, sensor replies from inside the sensor network) and one ground-truth
record. The client's payloads are those later stages must classify: the
Realtek miniigd UPnP SOAP exploit (CVE-2014-8361) in several variants, a
benign UPnP port mapping, a Huawei HG532 upgrade exploit (CVE-2017-17215)
and Telnet logins using Mirai's credential list.

Every downloader host is a documentation address (198.51.100.0/24) or an
``.example`` name. Some requests are split over two segments and some
sessions retransmit a segment, so reassembly is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from teiten.simulate.payloads import (
    huawei_request,
    realtek_request,
    soap_reply,
    telnet_script,
    upnp_request,
)
from teiten.simulate.pcapwriter import ACK, FIN, PSH, SYN, PacketColumns, concat, make_packets
from teiten.simulate.traffic import EXCHANGE, LINUX_OPTS, NS_PER_DAY, SYNACK_OPTS, unfingerprint

if TYPE_CHECKING:
    from teiten.simulate.scenario import Context

KINDS: tuple[str, ...] = (
    "exploit.realtek-miniigd",
    "benign.upnp",
    "exploit.huawei-hg532",
    "telnet.login",
)
"""The session kinds, as ``kind`` in the ground truth."""


@dataclass(frozen=True)
class SessionPlan:
    """Who talks to which sensor address, when, and how the client behaves."""

    kind: str
    src: int
    dst: int
    start_ns: int
    variant: int = 0
    split: bool = False
    retransmit: bool = False
    hops: int = 12


@dataclass
class _Conn:
    """One TCP connection being written, packet by packet (a few dozen at most)."""

    plan: SessionPlan
    sport: int
    dport: int
    rng: np.random.Generator
    t: int
    rtt: int
    cseq: int
    sseq: int
    rows: list[dict[str, int]] = field(default_factory=list)
    tails: list[bytes] = field(default_factory=list)

    def emit(
        self,
        client: bool,
        flags: int,
        data: bytes = b"",
        opts: bytes = b"",
        seq: int | None = None,
        gap: int = 0,
    ) -> None:
        """Append one segment, ``gap`` ns after the previous one."""
        self.t += gap + int(self.rng.integers(20_000, 400_000))
        self.t -= self.t % 1000
        mine = self.cseq if client else self.sseq
        theirs = self.sseq if client else self.cseq
        p = self.plan
        self.rows.append({
            "ts": self.t, "src": p.src if client else p.dst, "dst": p.dst if client else p.src,
            "sport": self.sport if client else self.dport,
            "dport": self.dport if client else self.sport,
            "seq": (mine if seq is None else seq) & 0xFFFFFFFF,
            "ack": theirs & 0xFFFFFFFF if flags & ACK else 0, "flags": flags,
            "win": 29200 if client else 28960, "ttl": 64 - p.hops if client else 64,
            "ip_id": int(self.rng.integers(0, 65536)) if client else 0, "optlen": len(opts),
            "tail_len": len(opts) + len(data),
        })  # fmt: skip
        self.tails.append(opts + data)

    def handshake(self) -> None:
        """SYN (Linux options), SYN-ACK from the sensor, ACK."""
        self.emit(True, SYN, opts=LINUX_OPTS)
        self.cseq += 1
        self.emit(False, SYN | ACK, opts=SYNACK_OPTS, gap=self.rtt // 2)
        self.sseq += 1
        self.emit(True, ACK, gap=self.rtt // 2)

    def client_sends(self, data: bytes, split_at: int = 0, retransmit: bool = False) -> None:
        """The client's message, in two segments when ``split_at`` > 0."""
        parts = [data[:split_at], data[split_at:]] if 0 < split_at < len(data) else [data]
        first = self.cseq
        for part in parts:
            self.emit(True, PSH | ACK, part)
            self.cseq += len(part)
        if retransmit:
            self.emit(True, PSH | ACK, parts[0], seq=first, gap=200_000_000)
        self.emit(False, ACK, gap=self.rtt // 2)

    def server_sends(self, data: bytes) -> None:
        """The sensor's answer in one segment; the client acknowledges it."""
        self.emit(False, PSH | ACK, data, gap=2_000_000)
        self.sseq += len(data)
        self.emit(True, ACK, gap=self.rtt // 2)

    def close(self) -> None:
        """The client closes; the sensor closes too; the client acknowledges."""
        self.emit(True, FIN | ACK, gap=50_000_000)
        self.cseq += 1
        self.emit(False, FIN | ACK, gap=self.rtt // 2)
        self.sseq += 1
        self.emit(True, ACK, gap=self.rtt // 2)


def _http_session(conn: _Conn, request: bytes, reply: bytes) -> None:
    conn.handshake()
    head_end = request.index(b"\r\n\r\n") + 4
    conn.client_sends(request, head_end if conn.plan.split else 0, conn.plan.retransmit)
    conn.server_sends(reply)
    conn.close()


def _telnet_session(conn: _Conn, script: list[tuple[bool, bytes]]) -> None:
    """Option negotiation, then logins; the first username is the one split or resent."""
    conn.handshake()
    first = True
    for from_client, data in script:
        if not from_client:
            conn.server_sends(data)
            continue
        is_text = not data.startswith(b"\xff")
        split = len(data) // 2 if conn.plan.split and first and is_text else 0
        conn.client_sends(data, split, conn.plan.retransmit and first and is_text)
        first = first and not is_text
    conn.close()


def _reply(body: bytes) -> bytes:
    head = (
        'HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset="utf-8"\r\n'
        f"Server: miniupnpd/1.0 UPnP/1.0\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def build_session(rng: np.random.Generator, plan: SessionPlan) -> tuple[
        PacketColumns, dict[str, Any]]:  # fmt: skip
    """The packets of one planned session and its ground-truth record."""
    dport = {"exploit.huawei-hg532": 37215, "telnet.login": 23}.get(plan.kind, 52869)
    conn = _Conn(
        plan, int(rng.integers(32768, 61000)), dport, rng, plan.start_ns,
        int(rng.integers(20, 250)) * 1_000_000, int(rng.integers(0, 1 << 32)),
        int(rng.integers(0, 1 << 32)),
    )  # fmt: skip
    host = f"{_dotted(plan.dst)}:{dport}"
    if plan.kind == "telnet.login":
        script, facts = telnet_script(rng, plan.variant)
        _telnet_session(conn, script)
    else:
        maker = {"exploit.realtek-miniigd": realtek_request, "benign.upnp": upnp_request,
                 "exploit.huawei-hg532": huawei_request}[plan.kind]  # fmt: skip
        request, facts = maker(rng, host, plan.variant)
        _http_session(conn, request, _reply(soap_reply(plan.kind)))
    truth = {
        "kind": plan.kind, "src": _dotted(plan.src), "sport": conn.sport,
        "dst": _dotted(plan.dst), "dport": dport, "start_ns": conn.rows[0]["ts"], **facts,
        "split": plan.split, "retransmit": plan.retransmit, "packets": len(conn.rows),
    }  # fmt: skip
    return _to_packets(conn), truth


def _to_packets(conn: _Conn) -> PacketColumns:
    cols = {k: np.array([r[k] for r in conn.rows], np.int64) for k in conn.rows[0]}
    tail = np.frombuffer(b"".join(conn.tails), np.uint8)
    packets = make_packets(len(conn.rows), tail, **cols, label=EXCHANGE)
    return unfingerprint(packets, keep_seq=True)


def _dotted(addr: int) -> str:
    return ".".join(str((addr >> s) & 0xFF) for s in (24, 16, 8, 0))


@dataclass(frozen=True)
class Sources:
    """Candidate clients of one session kind, and on which days each is active."""

    addrs: npt.NDArray[np.uint32]
    hops: npt.NDArray[np.int64]
    active: npt.NDArray[np.bool_]
    """(day, source) → may start a session that day."""


def plan_sessions(
    ctx: Context,
    rng: np.random.Generator,
    kind: str,
    count: int,
    sources: Sources,
    variants: int,
    first_day: int = 0,
) -> list[SessionPlan]:
    """``count`` sessions of ``kind`` from sources active on a random day ≥ ``first_day``.

    The first ``variants`` sessions take variants 0, 1, …; the first is split
    over two segments and the second retransmits one; the rest vary at random.
    """
    days = np.flatnonzero(sources.active[first_day:].any(axis=1)) + first_day
    plans = []
    for i in range(count if days.size else 0):
        day = int(days[rng.integers(days.size)])
        cand = np.flatnonzero(sources.active[day])
        who = int(cand[rng.integers(cand.size)])
        start = ctx.start_ns + day * NS_PER_DAY + int(rng.integers(0, 86_000_000_000)) * 1000
        plans.append(SessionPlan(
            kind, int(sources.addrs[who]), int(ctx.hosts(rng, 1)[0]), start,
            variant=i if i < variants else int(rng.integers(variants)),
            split=i == 0 or bool(rng.random() < 0.3),
            retransmit=i == 1 or bool(rng.random() < 0.1), hops=int(sources.hops[who]),
        ))  # fmt: skip
    return plans


def build_sessions(rng: np.random.Generator, plans: list[SessionPlan]) -> tuple[
        PacketColumns, list[dict[str, Any]]]:  # fmt: skip
    """The packets and ground-truth records of every planned session."""
    built = [build_session(rng, plan) for plan in plans]
    packets = concat([b[0] for b in built]) if built else make_packets(0)
    return packets, [b[1] for b in built]
