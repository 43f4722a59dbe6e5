"""Generate a darknet-like capture: a classic microsecond pcap of scanner SYNs and backscatter.

The traffic is what a /16 network telescope sees in one day: almost only
TCP SYNs of 54 bytes (60 on the wire, Ethernet padding kept as a NIC
captures it), from ~300k sources drawn Zipf-like (a few heavy scanners, a
long tail), to random addresses of 198.18.0.0/16 (the benchmarking range,
RFC 2544). The scanner mix follows the tools' source code:

========== ====== ==========================================================
kind       share  what marks it
========== ====== ==========================================================
mirai      ~40 %  tcp seq == dst address; TTL 64 − hops; no options; fixed
                  source port and window per bot; port 23, 2323 one in ten
masscan    ~15 %  ip_id == (dst ^ dport ^ seq) & 0xFFFF; TTL 255 − hops;
                  window 1024; no options
zmap       ~10 %  ip_id 54321; window 65535; TTL 255 − hops (ZMap ≤ 4.0)
nmap        ~5 %  window 1024; MSS 1460 as the only option; TTL 37–59 − hops
other      ~25 %  random seq, ip_id and source port; Linux / Windows / bare
                  MSS / no options, with those systems' windows and TTLs
backscatter ~5 %  SYN-ACKs and RSTs from services, ICMP unreachables quoting
                  a TCP header sent "from" the darknet
========== ====== ==========================================================

The heaviest sources are scanners (masscan, zmap, nmap, other); Mirai bots
and backscatter make the long tail. Everything is vectorised numpy over
chunks of 2**20 packets; the output depends only on the arguments (seed,
packet count, day, sources, chunk size). IPv4, TCP and ICMP checksums are
computed, so the file is valid for any reader.

Use ``generate(path, packets, seed=..., day=...)`` or run
``python bench/gen_darknet.py OUT.pcap --packets 10000000 --seed 1``.
"""

from __future__ import annotations

import argparse
import ipaddress
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

KINDS = ("mirai", "masscan", "zmap", "nmap", "other", "backscatter")
MIRAI, MASSCAN, ZMAP, NMAP, OTHER, BACKSCATTER = range(len(KINDS))
SHARES = np.array([0.40, 0.15, 0.10, 0.05, 0.25, 0.05])
"""Target share of packets per kind."""
HEAVY_KINDS = (MASSCAN, ZMAP, NMAP, OTHER)
"""Kinds the heaviest sources are drawn from."""

DARKNET = ipaddress.IPv4Network("198.18.0.0/16")
"""Where destinations are drawn (one /16 of the benchmarking range)."""
SENSOR_NETWORK = "198.18.0.0/15"
"""The sensor's own network to pass to ``teiten ingest --sensor-net``."""
RESERVED = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/16", "192.168.0.0/16", "198.18.0.0/15", "198.51.0.0/16",
    "203.0.0.0/16", "224.0.0.0/3",
)  # fmt: skip
"""Space sources are never drawn from (special-purpose blocks, rounded to /16)."""

# TCP options as the tools and systems send them on a SYN.
OPTIONS = (
    b"",  # none
    bytes.fromhex("020405b4"),  # MSS 1460 (nmap, bare stacks)
    bytes.fromhex("020405b4 010303 08 0101 0402"),  # Windows: MSS, NOP, WS 8, NOP, NOP, SACKOK
    bytes.fromhex("020405b4 0402 080a 0012d687 00000000 01030307"),  # Linux: MSS SACKOK TS NOP WS
)
OPT_NONE, OPT_MSS, OPT_WINDOWS, OPT_LINUX = range(len(OPTIONS))
OPT_MAX = 20
assert all(len(o) % 4 == 0 and len(o) <= OPT_MAX for o in OPTIONS)
_OPT_TABLE = np.zeros((len(OPTIONS), OPT_MAX), np.uint8)
for _i, _o in enumerate(OPTIONS):
    _OPT_TABLE[_i, : len(_o)] = np.frombuffer(_o, np.uint8)
_OPT_LEN = np.array([len(o) for o in OPTIONS], np.int64)
_OPT_SUM = np.array(  # the options' contribution to the TCP checksum (big-endian words)
    [sum(int.from_bytes(o[i : i + 2], "big") for i in range(0, len(o), 2)) for o in OPTIONS],
    np.int64,
)

POPULAR_PORTS = np.array(
    [445, 23, 22, 80, 8080, 3389, 443, 5555, 81, 8443, 1433, 3306, 6379, 2222, 5900, 8000,
     8888, 21, 25, 139, 135, 1723, 5060, 7547, 37215, 52869, 8081, 9200, 27017, 2375, 5432,
     11211, 53, 111, 110, 143, 993, 502, 47808, 20000, 102, 8088, 9000, 10000, 4567, 6001,
     60001, 5000, 49152, 7001],
    np.uint16,
)  # fmt: skip
"""Ports scanners favour, most popular first (drawn Zipf-like over this order)."""
SERVICE_PORTS = np.array([80, 443, 22, 53, 25, 8080, 3389, 6667, 27015, 3074], np.uint16)
"""Source ports of backscatter (services under a spoofed-source flood)."""

SENSOR_MAC = bytes.fromhex("020000c61201")
GATEWAY_MAC = bytes.fromhex("020000c61202")
ETH_MIN = 60
"""Shortest Ethernet frame without FCS: shorter ones are captured with padding."""

_HEAD = [
    ("ts_sec", "<u4"), ("ts_usec", "<u4"), ("incl", "<u4"), ("orig", "<u4"),
    ("eth_dst", "V6"), ("eth_src", "V6"), ("eth_type", ">u2"),
    ("vihl", "u1"), ("tos", "u1"), ("ip_len", ">u2"), ("ip_id", ">u2"), ("frag", ">u2"),
    ("ttl", "u1"), ("proto", "u1"), ("ip_sum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
]  # fmt: skip
TCP_RECORD = np.dtype(
    [*_HEAD,
     ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("off", "u1"),
     ("flags", "u1"), ("win", ">u2"), ("tcp_sum", ">u2"), ("urp", ">u2"),
     ("opts", "u1", (OPT_MAX,))]
)  # fmt: skip
"""A pcap record header and a frame of up to 90 bytes: Ethernet, IPv4, TCP, options."""
ICMP_RECORD = np.dtype(
    [*_HEAD,
     ("itype", "u1"), ("icode", "u1"), ("icmp_sum", ">u2"), ("unused", ">u4"),
     ("q_vihl", "u1"), ("q_tos", "u1"), ("q_len", ">u2"), ("q_id", ">u2"), ("q_frag", ">u2"),
     ("q_ttl", "u1"), ("q_proto", "u1"), ("q_sum", ">u2"), ("q_src", ">u4"), ("q_dst", ">u4"),
     ("q_sport", ">u2"), ("q_dport", ">u2"), ("q_seq", ">u4"), ("pad", "u1", (4,))]
)  # fmt: skip
"""The same 90 bytes seen as an ICMP destination-unreachable quoting IPv4 + 8 bytes of TCP."""
assert TCP_RECORD.itemsize == ICMP_RECORD.itemsize == 90
_FRAME_AT = 16
_L4_AT = 50  # offset of the transport header within a record

CHUNK = 1 << 20
DAY_US = 86_400 * 1_000_000
DF = 0x4000


@dataclass(frozen=True)
class Population:
    """The sources, heaviest first: address, kind, sampling weight and fixed per-source fields."""

    addr: U32
    kind: U8
    cdf: F64
    """Cumulative sampling probability by rank."""
    sport: U16
    win: U16
    ttl: U8
    os: U8
    """Option template of ``other`` sources (index into :data:`OPTIONS`)."""
    service: U16

    def __len__(self) -> int:
        return int(self.addr.shape[0])


@dataclass
class GenResult:
    """What :func:`generate` wrote."""

    path: Path
    packets: int
    bytes: int
    seconds: float
    by_kind: dict[str, int] = field(default_factory=dict)
    sources_seen: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0


def _reserved_table() -> npt.NDArray[np.bool_]:
    """True for each top-16-bit value inside :data:`RESERVED`."""
    table = np.zeros(1 << 16, np.bool_)
    for text in RESERVED:
        net = ipaddress.IPv4Network(text)
        first = int(net.network_address) >> 16
        table[first : first + max(1, net.num_addresses >> 16)] = True
    return table


def _public_addresses(rng: np.random.Generator, n: int) -> U32:
    """``n`` distinct random unicast addresses outside :data:`RESERVED`, in random order."""
    bad = _reserved_table()
    found = np.zeros(0, np.uint32)
    while found.size < n:
        cand = rng.integers(1 << 24, 0xE0000000, size=2 * n, dtype=np.uint64).astype(np.uint32)
        cand = cand[~bad[cand >> 16]]
        found = np.unique(np.concatenate([found, cand]))
    return rng.permutation(found)[:n]


def _assign_kinds(rng: np.random.Generator, weight: F64, heavy: int) -> U8:
    """A kind per source so that the kinds' packet shares match :data:`SHARES`.

    The ``heavy`` heaviest sources go, one by one, to the scanner kind furthest
    below its share; the tail is shuffled and cut into runs whose weights make
    up each kind's remaining share.
    """
    n = weight.shape[0]
    kind = np.zeros(n, np.uint8)
    got = np.zeros(len(KINDS))
    heavy = min(heavy, n)
    for k in range(heavy):
        deficit = SHARES - got
        best = max(HEAVY_KINDS, key=lambda j: deficit[j])
        kind[k] = best
        got[best] += weight[k]
    rest = np.clip(SHARES - got, 0.0, None)
    tail = heavy + rng.permutation(n - heavy)
    w = weight[tail]
    rest *= w.sum() / rest.sum()
    middle = np.cumsum(w) - w / 2
    kind[tail] = np.minimum(np.searchsorted(np.cumsum(rest), middle), len(KINDS) - 1)
    return kind


def population(
    seed: int, sources: int = 300_000, zipf: float = 1.0, heavy: int = 300
) -> Population:
    """The sources of a capture: ``sources`` addresses with Zipf(``zipf``) weights by rank."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    addr = _public_addresses(rng, sources)
    weight = 1.0 / np.arange(1, sources + 1, dtype=np.float64) ** zipf
    weight /= weight.sum()
    kind = _assign_kinds(rng, weight, heavy)
    cdf = np.cumsum(weight)
    cdf[-1] = 1.0

    hops = rng.integers(4, 24, sources)
    os = rng.choice(len(OPTIONS), sources, p=[0.2, 0.2, 0.3, 0.3]).astype(np.uint8)
    init_ttl = np.select(
        [kind == MIRAI, (kind == MASSCAN) | (kind == ZMAP), kind == NMAP, kind == BACKSCATTER,
         os == OPT_WINDOWS],
        [64, 255, rng.integers(37, 60, sources), rng.choice([64, 128, 255], sources), 128],
        64,
    )  # fmt: skip
    other_win = np.select(
        [os == OPT_NONE, os == OPT_MSS, os == OPT_WINDOWS],
        [rng.choice([1024, 14600, 29200, 65535], sources),
         rng.choice([5840, 14600, 29200, 65535], sources),
         rng.choice([8192, 64240, 65535], sources)],
        rng.choice([29200, 64240, 65535], sources),
    )  # fmt: skip
    win = np.select(
        [kind == MIRAI, (kind == MASSCAN) | (kind == NMAP), kind == ZMAP, kind == BACKSCATTER],
        [rng.integers(1, 1 << 16, sources), 1024, 65535,
         rng.choice([8192, 14480, 28960, 65160], sources)],
        other_win,
    )  # fmt: skip
    return Population(
        addr=addr,
        kind=kind,
        cdf=cdf,
        sport=rng.integers(1024, 1 << 16, sources).astype(np.uint16),
        win=win.astype(np.uint16),
        ttl=(init_ttl - hops).astype(np.uint8),
        os=os,
        service=rng.choice(SERVICE_PORTS, sources, p=_zipf_p(SERVICE_PORTS.size, 1.2)),
    )


def _zipf_p(n: int, s: float) -> F64:
    p = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    out: F64 = p / p.sum()
    return out


def _draw(rng: np.random.Generator, low: int, high: int, n: int, dtype: Any) -> npt.NDArray[Any]:
    """``n`` random integers in ``[low, high)`` as ``dtype``."""
    out: npt.NDArray[Any] = rng.integers(low, high, n, dtype=np.int64).astype(dtype)
    return out


_POPULAR_P = _zipf_p(POPULAR_PORTS.size, 1.0)


def _scan_ports(rng: np.random.Generator, n: int, uniform: float) -> U16:
    """Destination ports: popular ones (Zipf over :data:`POPULAR_PORTS`), some uniform."""
    ports = rng.choice(POPULAR_PORTS, n, p=_POPULAR_P)
    anywhere = rng.random(n) < uniform
    ports[anywhere] = rng.integers(1, 1 << 16, int(anywhere.sum()))
    return ports


def _w32(v: npt.NDArray[Any]) -> I64:
    """Sum of the two 16-bit halves of 32-bit values."""
    x = v.astype(np.int64)
    return (x >> 16) + (x & 0xFFFF)


def _fold(total: I64) -> I64:
    """Internet checksum from a sum of 16-bit words."""
    s = total
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def chunk_records(
    pop: Population, rng: np.random.Generator, t_us: I64, day_sec: int
) -> tuple[U8, I64]:
    """The pcap records (header + frame) of ``len(t_us)`` packets as one byte array.

    Also returns each packet's source (its rank in ``pop``).
    """
    n = t_us.shape[0]
    i = np.minimum(np.searchsorted(pop.cdf, rng.random(n), side="right"), len(pop) - 1)
    kind = pop.kind[i]
    is_ = [kind == k for k in range(len(KINDS))]
    src = pop.addr[i]
    base = int(DARKNET.network_address)
    dst = _draw(rng, base, base + DARKNET.num_addresses, n, np.uint32)
    r = rng.random(n)
    synack = is_[BACKSCATTER] & (r < 0.5)
    rst = is_[BACKSCATTER] & (r >= 0.5) & (r < 0.8)
    icmp = is_[BACKSCATTER] & (r >= 0.8)
    tcp = ~icmp

    seq = _draw(rng, 0, 1 << 32, n, np.uint32)
    seq[is_[MIRAI]] = dst[is_[MIRAI]]
    dport = _scan_ports(rng, n, 0.2)
    dport[is_[MIRAI]] = np.where(rng.random(int(is_[MIRAI].sum())) < 0.1, 2323, 23)
    bs_tcp = synack | rst
    dport[bs_tcp] = rng.integers(1024, 1 << 16, int(bs_tcp.sum()))
    sport = np.where(
        is_[MIRAI] | is_[MASSCAN] | is_[NMAP], pop.sport[i], rng.integers(1024, 1 << 16, n)
    ).astype(np.uint16)
    sport[bs_tcp] = pop.service[i][bs_tcp]
    ip_id = _draw(rng, 0, 1 << 16, n, np.uint16)
    ip_id[is_[ZMAP]] = 54321
    m = is_[MASSCAN]
    ip_id[m] = ((dst[m] ^ dport[m] ^ seq[m]) & 0xFFFF).astype(np.uint16)
    flags = np.full(n, 0x02, np.uint8)
    flags[synack] = 0x12
    flags[rst] = 0x14
    ack = np.where(bs_tcp, rng.integers(0, 1 << 32, n, dtype=np.uint64), 0).astype(np.uint32)
    win = pop.win[i].copy()
    win[rst] = 0
    opt = np.where(is_[OTHER], pop.os[i], OPT_NONE).astype(np.intp)
    opt[is_[NMAP] | synack] = OPT_MSS
    frag = np.where(is_[MASSCAN] | is_[ZMAP] | is_[NMAP], 0, DF).astype(np.uint16)

    optlen = _OPT_LEN[opt]
    ip_len = np.where(icmp, 20 + 8 + 28, 40 + optlen)
    caplen = np.maximum(14 + ip_len, ETH_MIN)
    ttl = pop.ttl[i]
    proto = np.where(icmp, 1, 6).astype(np.uint8)

    rec = np.zeros(n, TCP_RECORD)
    rec["ts_sec"] = day_sec + t_us // 1_000_000
    rec["ts_usec"] = t_us % 1_000_000
    rec["incl"] = rec["orig"] = caplen
    rec["eth_dst"] = np.void(SENSOR_MAC)
    rec["eth_src"] = np.void(GATEWAY_MAC)
    rec["eth_type"] = 0x0800
    rec["vihl"] = 0x45
    rec["ip_len"] = ip_len
    rec["ip_id"] = ip_id
    rec["frag"] = frag
    rec["ttl"] = ttl
    rec["proto"] = proto
    rec["src"] = src
    rec["dst"] = dst
    rec["ip_sum"] = _fold(
        0x4500 + ip_len + ip_id + frag + (ttl.astype(np.int64) << 8) + proto
        + _w32(src) + _w32(dst)
    )  # fmt: skip

    off_flags = ((5 + optlen // 4) << 12) + flags
    tcp_sum = _fold(
        _w32(src) + _w32(dst) + 6 + (ip_len - 20)  # pseudo-header
        + sport + dport + _w32(seq) + _w32(ack) + off_flags + win + _OPT_SUM[opt]
    )  # fmt: skip
    t = np.flatnonzero(tcp)
    rec["sport"][t] = sport[t]
    rec["dport"][t] = dport[t]
    rec["seq"][t] = seq[t]
    rec["ack"][t] = ack[t]
    rec["off"][t] = (off_flags[t] >> 8).astype(np.uint8)
    rec["flags"][t] = flags[t]
    rec["win"][t] = win[t]
    rec["tcp_sum"][t] = tcp_sum[t]
    rec["opts"][t] = _OPT_TABLE[opt[t]]

    c = np.flatnonzero(icmp)
    if c.size:
        _fill_unreachable(rec.view(ICMP_RECORD), c, rng, src[c], dst[c])
    frames = rec.view(np.uint8).reshape(n, TCP_RECORD.itemsize)
    keep = np.arange(TCP_RECORD.itemsize) < (_FRAME_AT + caplen)[:, None]
    return frames[keep], i


def _fill_unreachable(
    rec: npt.NDArray[np.void], rows: I64, rng: np.random.Generator, src: U32, dst: U32
) -> None:
    """ICMP host/port/admin unreachable from ``src`` (a router) about a SYN "from" ``dst``."""
    m = rows.size
    code = rng.choice(np.array([1, 3, 13], np.uint8), m, p=[0.5, 0.3, 0.2])
    victim = (src ^ rng.integers(1, 256, m).astype(np.uint32)).astype(np.uint32)
    q_id = rng.integers(0, 1 << 16, m).astype(np.uint16)
    q_ttl = rng.integers(1, 50, m).astype(np.uint8)
    q_sport = rng.integers(1024, 1 << 16, m).astype(np.uint16)
    q_dport = rng.choice(SERVICE_PORTS, m)
    q_seq = rng.integers(0, 1 << 32, m, dtype=np.uint64).astype(np.uint32)
    ip_words = q_id.astype(np.int64) + 0x4500 + 40 + (q_ttl.astype(np.int64) << 8) + 6
    q_sum = _fold(ip_words + _w32(dst) + _w32(victim))
    quoted = (
        ip_words + q_sum
        + _w32(dst) + _w32(victim) + q_sport + q_dport + _w32(q_seq)
    )  # fmt: skip
    icmp_sum = _fold((3 << 8) + code.astype(np.int64) + quoted)
    for name, value in (
        ("itype", 3), ("icode", code), ("icmp_sum", icmp_sum),
        ("unused", 0), ("q_vihl", 0x45), ("q_tos", 0), ("q_len", 40), ("q_id", q_id),
        ("q_frag", 0), ("q_ttl", q_ttl), ("q_proto", 6), ("q_sum", q_sum), ("q_src", dst),
        ("q_dst", victim), ("q_sport", q_sport), ("q_dport", q_dport), ("q_seq", q_seq),
    ):  # fmt: skip
        rec[name][rows] = value
    rec["pad"][rows] = 0


def pcap_header() -> bytes:
    """Classic pcap file header: little-endian, microseconds, v2.4, snaplen 65535, Ethernet."""
    head = np.array(
        [(0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)],
        [("magic", "<u4"), ("major", "<u2"), ("minor", "<u2"), ("zone", "<i4"),
         ("sigfigs", "<u4"), ("snaplen", "<u4"), ("linktype", "<u4")],
    )  # fmt: skip
    return head.tobytes()


def generate(
    path: str | Path,
    packets: int = 10_000_000,
    *,
    seed: int = 1,
    day: str = "2024-03-01",
    sources: int = 300_000,
    chunk: int = CHUNK,
) -> GenResult:
    """Write ``packets`` packets spread over ``day`` (UTC) in time order to ``path``."""
    start = time.perf_counter()
    path = Path(path)
    pop = population(seed, sources)
    day_sec = int(np.datetime64(day, "s").astype(np.int64))
    mean_gap = DAY_US / (packets + 1) * 0.999  # keep the sum of the gaps inside the day
    carry = 0.0
    by_kind = np.zeros(len(KINDS), np.int64)
    seen = np.zeros(len(pop), np.bool_)
    size = 24
    first = last = 0
    with path.open("wb") as fh:
        fh.write(pcap_header())
        for index, lo in enumerate(range(0, packets, chunk)):
            n = min(chunk, packets - lo)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))
            t = carry + np.cumsum(rng.exponential(mean_gap, n))
            carry = float(t[-1])
            t_us = np.minimum(t.astype(np.int64), DAY_US - 1)
            data, i = chunk_records(pop, rng, t_us, day_sec)
            by_kind += np.bincount(pop.kind[i], minlength=len(KINDS))
            seen[i] = True
            fh.write(data.tobytes())
            size += data.size
            if lo == 0:
                first = int(t_us[0])
            last = int(t_us[-1])
    return GenResult(
        path=path,
        packets=packets,
        bytes=size,
        seconds=time.perf_counter() - start,
        by_kind={k: int(v) for k, v in zip(KINDS, by_kind, strict=True)},
        sources_seen=int(seen.sum()),
        first_ts=day_sec + first / 1e6,
        last_ts=day_sec + last / 1e6,
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: write one capture and print what it holds."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--packets", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--day", default="2024-03-01", help="UTC day, YYYY-MM-DD")
    ap.add_argument("--sources", type=int, default=300_000)
    args = ap.parse_args(argv)
    r = generate(args.out, args.packets, seed=args.seed, day=args.day, sources=args.sources)
    shares = ", ".join(f"{k} {v / r.packets:.1%}" for k, v in r.by_kind.items())
    print(
        f"{r.path}: {r.packets:,} packets, {r.bytes:,} bytes, {r.sources_seen:,} sources, "
        f"in {r.seconds:.1f}s ({r.packets / r.seconds:,.0f} packets/s)\n  {shares}"
    )


if __name__ == "__main__":
    main()
