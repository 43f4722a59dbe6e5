"""Write the small deterministic test captures in tests/data (run this file with python).

Packets are built with scapy (a test-only dependency); pcap and pcapng files
are written with struct, so every header byte is under control. Running the
script again rewrites byte-identical files. Addresses come from the
documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32); ``tests/data/README.md`` describes each file.
"""

from __future__ import annotations

import gzip
import lzma
import struct
from collections.abc import Sequence
from pathlib import Path

import zstandard
from scapy.layers.inet import (
    ICMP,
    IP,
    TCP,
    UDP,
    IPOption_EOL,
    IPOption_Router_Alert,
    IPOption_RR,
    fragment,
)
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    fragment6,
)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

OUT = Path(__file__).resolve().parent
BASE_NS = 1_700_000_000_123_456_789
SCANNER, SCANNER2, DARK = "203.0.113.10", "198.51.100.7", "192.0.2.1"
SCANNER6, DARK6 = "2001:db8:1::10", "2001:db8:2::1"
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}

Record = tuple[int, bytes]


def eth(pkt: Packet) -> Packet:
    return Ether(**MACS) / pkt


def timed(packets: Sequence[Packet | bytes], step_ns: int = 250_001_001) -> list[Record]:
    """Records with increasing timestamps (nanosecond digits that µs files must round off)."""
    return [(BASE_NS + i * step_ns, bytes(p)) for i, p in enumerate(packets)]


# ---------------------------------------------------------------- writers


def pcap_bytes(
    linktype: int,
    records: Sequence[Record],
    *,
    big: bool = False,
    nano: bool = False,
    snaplen: int = 262144,
) -> bytes:
    e = ">" if big else "<"
    out = [
        struct.pack(
            e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype
        )
    ]
    for ts, data in records:
        sec, frac = divmod(ts, 10**9)
        cap = data[:snaplen]
        out.append(
            struct.pack(e + "IIII", sec, frac if nano else frac // 1000, len(cap), len(data)) + cap
        )
    return b"".join(out)


def _pad(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def ng_block(btype: int, body: bytes, e: str = "<") -> bytes:
    length = 12 + len(_pad(body))
    return struct.pack(e + "II", btype, length) + _pad(body) + struct.pack(e + "I", length)


def ng_options(opts: Sequence[tuple[int, bytes]], e: str = "<") -> bytes:
    if not opts:
        return b""
    body = b"".join(struct.pack(e + "HH", c, len(v)) + _pad(v) for c, v in opts)
    return body + struct.pack(e + "HH", 0, 0)


def ng_shb(e: str = "<") -> bytes:
    opts = ng_options([(4, b"teiten make_captures.py")], e)
    return ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts, e)


def ng_idb(linktype: int, snaplen: int, opts: Sequence[tuple[int, bytes]], e: str = "<") -> bytes:
    return ng_block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + ng_options(opts, e), e)


def ng_epb(
    ifid: int, ts_units: int, data: bytes, opts: Sequence[tuple[int, bytes]] = (), e: str = "<"
) -> bytes:
    head = struct.pack(
        e + "IIIII", ifid, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), len(data)
    )
    return ng_block(6, head + _pad(data) + ng_options(opts, e), e)


def ng_spb(data: bytes, e: str = "<") -> bytes:
    return ng_block(3, struct.pack(e + "I", len(data)) + data, e)


# ---------------------------------------------------------------- packets


def ipv4_packets() -> list[Packet]:
    syn = IP(src=SCANNER, dst=DARK, id=54321, ttl=241) / TCP(
        sport=40000, dport=23, seq=1000, flags="S", window=1024, options=[("MSS", 1460)]
    )
    synack = IP(src=DARK, dst=SCANNER, id=1, ttl=64) / TCP(
        sport=23, dport=40000, seq=5000, ack=1001, flags="SA", window=65535
    )
    rst = IP(src=SCANNER, dst=DARK, id=54322, ttl=241) / TCP(
        sport=40000, dport=23, seq=1001, flags="R", window=0
    )
    data = (
        IP(src=SCANNER2, dst=DARK, id=7, ttl=50)
        / TCP(sport=51515, dport=80, seq=77, ack=88, flags="PA")
        / Raw(b"GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n")
    )
    udp = (
        IP(src=SCANNER2, dst=DARK, id=8, ttl=50)
        / UDP(sport=53000, dport=53)
        / Raw(bytes.fromhex("123401000001000000000000076578616d706c6503636f6d0000010001"))
    )
    echo = (
        IP(src=SCANNER, dst=DARK, id=9, ttl=52)
        / ICMP(type=8, id=0x4242, seq=1)
        / Raw(b"teiten-echo-0123456789")
    )
    quoted = (
        IP(src=DARK, dst=SCANNER, id=10, ttl=64)
        / UDP(sport=161, dport=33434)
        / Raw(b"probe-payload")
    )
    unreach = (
        IP(src=DARK, dst=SCANNER, id=11, ttl=64) / ICMP(type=3, code=3) / Raw(bytes(quoted)[:28])
    )
    rr = IPOption_RR(pointer=8, routers=["192.0.2.254"])
    opts = (
        IP(
            src=SCANNER,
            dst=DARK,
            id=12,
            ttl=30,
            options=[IPOption_Router_Alert(), rr, IPOption_EOL()],
        )
        / UDP(sport=44444, dport=33333)
        / Raw(b"ip-with-options")
    )
    big = (
        IP(src=SCANNER2, dst=DARK, id=0x0F0F, ttl=44)
        / UDP(sport=9999, dport=1900)
        / Raw(bytes(range(256)) * 5)
    )
    frags = fragment(big, fragsize=512)
    return [syn, synack, rst, data, udp, echo, unreach, opts, *frags]


def ipv6_packets() -> list[Packet]:
    syn = IPv6(src=SCANNER6, dst=DARK6, hlim=55) / TCP(
        sport=40001, dport=22, seq=123, flags="S", window=1024
    )
    udp = (
        IPv6(src=SCANNER6, dst=DARK6, hlim=55)
        / UDP(sport=40002, dport=123)
        / Raw(b"\x1b" + bytes(47))
    )
    echo = IPv6(src=SCANNER6, dst=DARK6, hlim=55) / ICMPv6EchoRequest(id=7, seq=3, data=b"ping6")
    unreach = (
        IPv6(src=DARK6, dst=SCANNER6, hlim=64) / ICMPv6DestUnreach(code=4) / Raw(bytes(udp)[:48])
    )
    whole = (
        IPv6(src=SCANNER6, dst=DARK6, hlim=55)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrFragment(id=0xABCDEF01)
        / UDP(sport=40003, dport=5060)
        / Raw(bytes(range(200)) * 6)
    )
    frags = fragment6(whole, 600)
    return [syn, udp, echo, unreach, *frags]


def sll(proto: int, pkt: Packet) -> bytes:
    return struct.pack(">HHH8sH", 0, 1, 6, bytes.fromhex("020000000001") + bytes(2), proto) + bytes(
        pkt
    )


def sll2(proto: int, pkt: Packet) -> bytes:
    addr = bytes.fromhex("020000000001") + bytes(2)
    return struct.pack(">HHIHBB8s", proto, 0, 2, 1, 0, 6, addr) + bytes(pkt)


# ---------------------------------------------------------------- files


def files() -> dict[str, bytes]:
    v4, v6 = ipv4_packets(), ipv6_packets()
    v4_0, v6_0 = v4[0], v6[1]
    vlan_syn = IP(src=SCANNER, dst="192.0.2.77", id=100, ttl=240) / TCP(
        sport=40100, dport=445, seq=31337, flags="S", window=1024
    )
    qinq_udp = (
        IP(src=SCANNER2, dst="192.0.2.78", id=200, ttl=49)
        / UDP(sport=40200, dport=161)
        / Raw(bytes.fromhex("302602010104067075626c6963"))
    )
    vlan = Ether(**MACS) / Dot1Q(vlan=100, prio=3) / vlan_syn
    qinq = Ether(**MACS) / Dot1AD(vlan=200) / Dot1Q(vlan=100) / qinq_udp
    raw_mix = timed([v4_0, v6_0, v4[5], v6[2]])
    out = {
        "eth_ipv4.pcap": pcap_bytes(1, timed([eth(p) for p in v4] + [vlan, qinq])),
        "eth_ipv6.pcap": pcap_bytes(1, timed([eth(p) for p in v6]), big=True, nano=True),
        "raw101.pcap": pcap_bytes(101, raw_mix),
        "raw12.pcap": pcap_bytes(12, raw_mix),
        "ipv4_228.pcap": pcap_bytes(228, timed([v4[0], v4[4], v4[5]])),
        "ipv6_229.pcap": pcap_bytes(229, timed([v6[0], v6[1], v6[2]]), nano=True),
        "sll.pcap": pcap_bytes(113, timed([sll(0x0800, v4_0), sll(0x86DD, v6_0)])),
        "sll2.pcap": pcap_bytes(276, timed([sll2(0x0800, v4_0), sll2(0x86DD, v6_0)])),
        "null.pcap": pcap_bytes(
            0, timed([struct.pack("<I", 2) + bytes(v4_0), struct.pack("<I", 30) + bytes(v6_0)])
        ),
        "loop.pcap": pcap_bytes(
            108, timed([struct.pack(">I", 2) + bytes(v4_0), struct.pack(">I", 24) + bytes(v6_0)])
        ),
        "snaplen64.pcap": pcap_bytes(1, timed([eth(v4[3]), eth(v4[8]), eth(v6[4])]), snaplen=64),
        "mixed.pcapng": mixed_pcapng(v4, v6),
    }
    plain = out["eth_ipv4.pcap"]
    out["eth_ipv4.pcap.gz"] = gzip.compress(plain, compresslevel=9, mtime=0)
    out["eth_ipv4.pcap.zst"] = zstandard.ZstdCompressor(level=19).compress(plain)
    out["eth_ipv4.pcap.xz"] = lzma.compress(plain, preset=6)
    return out


def mixed_pcapng(v4: list[Packet], v6: list[Packet]) -> bytes:
    """Two interfaces (Ethernet µs, raw IP ns), an SPB, an unknown and a statistics block."""
    us, ns = BASE_NS // 1000, BASE_NS
    return b"".join(
        [
            ng_shb(),
            ng_idb(1, 262144, [(2, b"eth0")]),
            ng_idb(101, 65535, [(2, b"tun0"), (9, b"\x09")]),
            ng_epb(0, us, bytes(eth(v4[0]))),
            ng_epb(1, ns + 1_000_001, bytes(v6[1]), [(1, b"raw IPv6 on a ns interface")]),
            ng_block(0x80000BAD, b"unknown local-use block\x00"),
            ng_epb(1, ns + 2_000_002, bytes(v4[5])),
            ng_spb(bytes(eth(v4[4]))),
            ng_epb(0, us + 3_003, bytes(eth(v6[2]))),
            ng_block(5, struct.pack("<III", 0, us >> 32, (us + 4_000) & 0xFFFFFFFF)),
        ]
    )


def main() -> None:
    for name, data in files().items():
        assert len(data) < 50_000, name
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
