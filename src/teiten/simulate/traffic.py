"""Build the header columns of each kind of unsolicited traffic a darknet sees.

Each function takes per-packet times, sources and targets (numpy arrays) and
returns :class:`~teiten.simulate.pcapwriter.PacketColumns` whose header fields
carry the traits of the tool or host that sends such packets. The traits
follow FIELD-NOTES §3:

* Mirai (jgamblin/Mirai-Source-Code ``mirai/bot/scanner.c``): ``seq == dst``,
  initial TTL 64, random IP id per packet, window and source port fixed per
  bot, no TCP options, no DF.
* ZMap ≤ 4.0 (zmap ``src/probe_modules/packet.c``): IP id 54321, TTL 255,
  window 65535, no options.
* Masscan ≤ 1.3.2 (masscan ``src/templ-pkt.c``): ``ip_id = (dst ^ dport ^ seq)
  & 0xFFFF``, TTL 255, window 1024, no options.
* Nmap SYN scan (nmap ``tcpip.cc``): window 1024, one MSS 1460 option.

TTLs are as seen at the sensor: the sender's initial TTL minus the hops of
the path (``hops`` arguments). Ordinary hosts never match a fingerprint by
chance: :func:`unfingerprint` nudges the rare random collisions away.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from teiten.simulate.pcapwriter import (
    ACK,
    DF,
    ICMP,
    RST,
    SYN,
    UDP,
    PacketColumns,
    concat,
    fold,
    make_packets,
    templates_tail,
    words32,
)  # fmt: skip

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
Gen = np.random.Generator

LABELS: tuple[str, ...] = (
    "other", "mirai", "zmap", "masscan", "nmap_syn", "backscatter", "exchange", "spoofed",
)  # fmt: skip
"""What made a packet; the index is the ``label`` column value."""
MIRAI, ZMAP, MASSCAN, NMAP, BACKSCATTER, EXCHANGE, SPOOFED = range(1, 8)

NS_PER_DAY = 86_400_000_000_000
MSS1460 = bytes.fromhex("020405b4")
LINUX_OPTS = bytes.fromhex("020405b40402080a000000000000000001030307")
"""MSS 1460, SACK permitted, timestamps (value patched per packet), NOP, window scale 7."""
WINDOWS_OPTS = bytes.fromhex("020405b40103030801010402")
SYNACK_OPTS = bytes.fromhex("020405b401010402")
_UDP_PAYLOADS: dict[int, bytes] = {
    53: bytes.fromhex("1a2b01000001000000000000076578616d706c6503636f6d0000010001"),
    123: bytes.fromhex("e30004fa000100000001000000000000") + bytes(32),
    137: bytes.fromhex("e5d800000001000000000000") + b" CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00"
    + bytes.fromhex("00210001"),
    161: bytes.fromhex("302602010104067075626c6963a019020400a1b2c302010002010030"
                       "0b300906052b060102010500"),
    1900: b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
    b'MAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n',
    5060: b"OPTIONS sip:100@203.0.113.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;"
    b"branch=z9hG4bK-1\r\nFrom: <sip:100@192.0.2.1>;tag=1\r\nTo: <sip:100@203.0.113.1>\r\n"
    b"Call-ID: 1@192.0.2.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    11211: b"\x00\x01\x00\x00\x00\x01\x00\x00stats\r\n",
}  # fmt: skip
"""One probe payload per well-known UDP port (DNS, NTP, NBNS, SNMP, SSDP, SIP, memcached)."""


def day_times(rng: Gen, start_ns: int, day: npt.ArrayLike) -> I64:
    """A uniformly random microsecond within each given day (index from ``start_ns``)."""
    d = np.asarray(day, np.int64)
    return start_ns + d * NS_PER_DAY + rng.integers(0, 86_400_000_000, len(d)) * 1000


def _u32(rng: Gen, n: int) -> U32:
    return rng.integers(0, 1 << 32, n, dtype=np.uint32)


def unfingerprint(p: PacketColumns, keep_seq: bool = False) -> PacketColumns:
    """Move packets off the Mirai, ZMap and Masscan formulas they do not belong to.

    Random fields hit ``ip_id == 54321`` or Masscan's ``ip_id`` formula once in
    65 536 packets (and ``seq == dst`` once in 2³²); nudging those keeps every
    fingerprint count in the ground truth exact. ``keep_seq`` is for Mirai,
    whose ``seq`` is meant to equal the destination.
    """
    if not keep_seq:
        bump = p.seq == p.dst
        p.seq[bump] += np.uint32(1)
    masscan = (p.dst ^ p.dport ^ p.seq) & 0xFFFF
    bump = (p.ip_id == 54321) | (p.ip_id == masscan)
    p.ip_id[bump] ^= np.uint16(0x8001)
    return p


def host_syns(
    rng: Gen,
    ts: I64,
    src: U32,
    dst: U32,
    dport: npt.ArrayLike,
    os_kind: npt.ArrayLike,
    hops: npt.ArrayLike,
    label: int = 0,
) -> PacketColumns:
    """SYNs from ordinary stacks: ``os_kind`` 0 raw (no options), 1 Linux, 2 Windows."""
    n = len(ts)
    kind = np.broadcast_to(np.asarray(os_kind, np.int64), (n,))
    opts = (b"", LINUX_OPTS, WINDOWS_OPTS)
    tail, lens = templates_tail(opts, kind)
    linux = np.flatnonzero(kind == 1)
    tsval = rng.integers(1 << 20, 1 << 31, linux.size, dtype=np.uint32).astype(">u4")
    at = (np.cumsum(lens) - lens)[linux, None] + 8 + np.arange(4)
    tail[at] = tsval.view(np.uint8).reshape(-1, 4)
    raw_win = np.array([5840, 8192, 14600, 29200, 65535], np.int64)
    win = np.select([kind == 1, kind == 2], [29200, 64240], raw_win[rng.integers(0, 5, n)])
    p = make_packets(
        n, tail, ts=ts, src=src, dst=dst, dport=dport, flags=SYN, seq=_u32(rng, n),
        sport=rng.integers(1024, 65536, n), ip_id=rng.integers(0, 65536, n),
        ttl=np.where(kind == 2, 128, 64) - np.asarray(hops), win=win, optlen=lens,
        frag=np.where(kind == 0, 0, DF), label=label,
    )  # fmt: skip
    return unfingerprint(p)


def udp_probes(
    rng: Gen, ts: I64, src: U32, dst: U32, dport: npt.ArrayLike, hops: npt.ArrayLike, label: int = 0
) -> PacketColumns:
    """UDP datagrams; well-known ports get their protocol's probe, others no payload."""
    n = len(ts)
    ports = np.broadcast_to(np.asarray(dport, np.int64), (n,))
    known = sorted(_UDP_PAYLOADS)
    which = np.searchsorted(known, ports)
    which[(which >= len(known)) | (np.asarray([*known, 0])[which] != ports)] = len(known)
    tail, lens = templates_tail([_UDP_PAYLOADS[k] for k in known] + [b""], which)
    p = make_packets(
        n, tail, proto=UDP, ts=ts, src=src, dst=dst, dport=ports, tail_len=lens,
        sport=rng.integers(32768, 61000, n), ip_id=rng.integers(0, 65536, n), frag=0,
        ttl=64 - np.asarray(hops), label=label,
    )  # fmt: skip
    return unfingerprint(p)


def mirai_syns(
    rng: Gen,
    ts: I64,
    src: U32,
    dst: U32,
    dport: npt.ArrayLike,
    bot_sport: npt.ArrayLike,
    bot_win: npt.ArrayLike,
    hops: npt.ArrayLike,
) -> PacketColumns:
    """Mirai scanner SYNs: seq is the destination address, one port and window per bot."""
    n = len(ts)
    p = make_packets(
        n, ts=ts, src=src, dst=dst, dport=dport, sport=bot_sport, win=bot_win, seq=dst,
        flags=SYN, ip_id=rng.integers(0, 65536, n), ttl=64 - np.asarray(hops), frag=0,
        label=MIRAI,
    )  # fmt: skip
    return unfingerprint(p, keep_seq=True)


def zmap_syns(
    rng: Gen, ts: I64, src: U32, dst: U32, dport: npt.ArrayLike, hops: npt.ArrayLike
) -> PacketColumns:
    """ZMap (≤ 4.0) SYNs: IP id 54321, TTL 255, window 65535."""
    n = len(ts)
    return make_packets(
        n, ts=ts, src=src, dst=dst, dport=dport, sport=rng.integers(32768, 61000, n),
        seq=_u32(rng, n), flags=SYN, ip_id=54321, ttl=255 - np.asarray(hops), win=65535,
        frag=0, label=ZMAP,
    )  # fmt: skip


def masscan_syns(
    rng: Gen,
    ts: I64,
    src: U32,
    dst: U32,
    dport: npt.ArrayLike,
    sport: npt.ArrayLike,
    hops: npt.ArrayLike,
) -> PacketColumns:
    """Masscan SYNs: IP id from dst, port and seq; TTL 255; window 1024."""
    n = len(ts)
    seq = _u32(rng, n)
    ports = np.broadcast_to(np.asarray(dport, np.uint32), (n,))
    return make_packets(
        n, ts=ts, src=src, dst=dst, dport=ports, sport=sport, seq=seq, flags=SYN,
        ip_id=(dst ^ ports ^ seq) & 0xFFFF, ttl=255 - np.asarray(hops), win=1024, frag=0,
        label=MASSCAN,
    )  # fmt: skip


def nmap_syns(
    rng: Gen,
    ts: I64,
    src: U32,
    dst: U32,
    dport: npt.ArrayLike,
    sport: npt.ArrayLike,
    hops: npt.ArrayLike,
) -> PacketColumns:
    """Nmap ``-sS`` SYNs: window 1024 and a single MSS 1460 option."""
    n = len(ts)
    tail, lens = templates_tail([MSS1460], np.zeros(n, np.int64))
    p = make_packets(
        n, tail, ts=ts, src=src, dst=dst, dport=dport, sport=sport, seq=_u32(rng, n),
        flags=SYN, ip_id=rng.integers(0, 65536, n), ttl=64 - np.asarray(hops), win=1024,
        optlen=lens, frag=0, label=NMAP,
    )  # fmt: skip
    return unfingerprint(p)


def backscatter(
    rng: Gen,
    ts: I64,
    victim: U32,
    vport: npt.ArrayLike,
    dst: U32,
    kind: npt.ArrayLike,
    hops: npt.ArrayLike,
) -> PacketColumns:
    """Replies of DoS victims to spoofed sensor addresses: 0 SYN-ACK, 1 RST-ACK, 2 ICMP."""
    n = len(ts)
    k = np.broadcast_to(np.asarray(kind, np.int64), (n,))
    vp = np.broadcast_to(np.asarray(vport, np.int64), (n,))
    ttl = 64 - np.broadcast_to(np.asarray(hops, np.int64), (n,))
    sport = rng.integers(1024, 65536, n)
    tcp, icmp = np.flatnonzero(k < 2), np.flatnonzero(k == 2)
    tail, lens = templates_tail([SYNACK_OPTS, b""], k[tcp])
    syn_ack = k[tcp] == 0
    replies = make_packets(
        tcp.size, tail, ts=ts[tcp], src=victim[tcp], dst=dst[tcp], sport=vp[tcp],
        dport=sport[tcp], seq=_u32(rng, tcp.size), ack=_u32(rng, tcp.size), optlen=lens,
        flags=np.where(syn_ack, SYN | ACK, RST | ACK), win=np.where(syn_ack, 29200, 0),
        ip_id=rng.integers(0, 65536, tcp.size), ttl=ttl[tcp], label=BACKSCATTER,
    )  # fmt: skip
    quoted = quoted_headers(rng, dst[icmp], victim[icmp], sport[icmp], vp[icmp])
    errors = make_packets(
        icmp.size, quoted.reshape(-1), proto=ICMP, ts=ts[icmp], src=victim[icmp],
        dst=dst[icmp], sport=3, dport=rng.choice(np.array([1, 3, 13]), icmp.size),
        tail_len=28, ip_id=rng.integers(0, 65536, icmp.size), ttl=ttl[icmp], frag=0,
        label=BACKSCATTER,
    )  # fmt: skip
    return unfingerprint(concat([replies, errors]))


def quoted_headers(
    rng: Gen, src: U32, dst: U32, sport: npt.ArrayLike, dport: npt.ArrayLike
) -> npt.NDArray[np.uint8]:
    """IPv4 header + 8 bytes of the spoofed UDP datagram an ICMP error quotes, ``(n, 28)``."""
    n = len(src)
    inner = np.zeros(n, _QUOTED)
    inner["vihl"], inner["ip_len"], inner["proto"] = 0x45, 28 + 32, UDP
    inner["ip_id"] = rng.integers(0, 65536, n)
    inner["ttl"] = rng.integers(30, 60, n)
    inner["src"], inner["dst"] = src, dst
    inner["sport"], inner["dport"], inner["udp_len"] = sport, dport, 8 + 32
    total = (
        0x4500 + 28 + 32 + inner["ip_id"].astype(np.int64)
        + (inner["ttl"].astype(np.int64) << 8) + UDP + words32(src) + words32(dst)
    )  # fmt: skip
    inner["ip_sum"] = fold(total)
    inner["udp_sum"] = rng.integers(1, 65536, n)
    return inner.view(np.uint8).reshape(n, 28)


_QUOTED = np.dtype(
    [("vihl", "u1"), ("tos", "u1"), ("ip_len", ">u2"), ("ip_id", ">u2"), ("frag", ">u2"),
     ("ttl", "u1"), ("proto", "u1"), ("ip_sum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
     ("sport", ">u2"), ("dport", ">u2"), ("udp_len", ">u2"), ("udp_sum", ">u2")]
)  # fmt: skip


def icmp_echo(rng: Gen, ts: I64, src: U32, dst: U32, hops: npt.ArrayLike) -> PacketColumns:
    """ICMP echo requests with a Windows- or Linux-style payload."""
    n = len(ts)
    payloads: Sequence[bytes] = (b"abcdefghijklmnopqrstuvwabcdefghi", bytes(range(8, 56)))
    kind = rng.integers(0, 2, n)
    tail, lens = templates_tail(payloads, kind)
    rest = (rng.integers(1, 65536, n).astype(np.uint32) << 16) | rng.integers(1, 512, n)
    p = make_packets(
        n, tail, proto=ICMP, ts=ts, src=src, dst=dst, sport=8, dport=0, seq=rest,
        tail_len=lens, ip_id=rng.integers(0, 65536, n),
        ttl=np.where(kind == 0, 128, 64) - np.asarray(hops), frag=0,
    )  # fmt: skip
    return unfingerprint(p)
