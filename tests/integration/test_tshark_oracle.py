"""The decoder agrees with tshark on every packet of the test captures.

Each capture in ``tests/data`` (plus two written here with scapy) is read with
``teiten.capture.open_source`` and decoded; tshark dissects the same file and
the addresses, ports, TCP flags / sequence / acknowledgement / window / MSS,
IP ID and TTL of every packet must match. tshark runs with ``-n`` (no name
lookups) and without IP reassembly; ``-E occurrence=f`` takes the first (outer)
occurrence of fields that also appear in tunnelled or ICMP-quoted headers.
"""

from __future__ import annotations

import gzip
import ipaddress
import lzma
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert, fragment
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from teiten.capture import open_source
from teiten.decode import decode
from teiten.schema import DECODE_ERRORS

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURES = (
    sorted(p for p in DATA.iterdir() if p.is_file() and ".pcap" in p.name) if DATA.is_dir() else []
)
FIELDS = (
    "ip.src",
    "ip.dst",
    "ip.id",
    "ip.ttl",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "ipv6.fraghdr.ident",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.window_size_value",
    "tcp.options.mss_val",
    "udp.srcport",
    "udp.dstport",
    "icmp.type",
    "icmp.code",
    "icmpv6.type",
    "icmpv6.code",
)
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def tshark(path: Path) -> list[dict[str, str]]:
    """One dict of field → first value ('' when absent) per frame."""
    cmd = [
        "tshark",
        "-n",
        "-r",
        str(path),
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-E",
        "separator=/t",
    ]
    for f in FIELDS:
        cmd += ["-e", f]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in done.stdout.splitlines()]


def decoded(path: Path) -> Iterator[dict[str, Any]]:
    """The decoder's rows for a capture, as Python values."""
    for chunk in open_source(path).chunks():
        batch = decode(chunk)
        for i in range(len(batch)):
            yield {k: bytes(v[i]) if v.ndim == 2 else v[i].item() for k, v in batch.columns.items()}


def plain_copy(path: Path, tmp: Path) -> Path:
    """A copy tshark can read: compressed test files are expanded first."""
    opener = {
        ".gz": gzip.decompress,
        ".xz": lzma.decompress,
        ".zst": zstandard.ZstdDecompressor().decompressobj().decompress,
    }
    if path.suffix not in opener:
        return path
    out = tmp / path.stem
    out.write_bytes(opener[path.suffix](path.read_bytes()))
    return out


def num(text: str) -> int:
    return int(text, 0)


def ip4(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def ip6(value: bytes) -> str:
    return str(ipaddress.IPv6Address(value))


def differences(ours: dict[str, Any], t: dict[str, str]) -> list[str]:
    """Fields where the decoder and tshark disagree on one packet."""
    error = DECODE_ERRORS[ours["decode_error"]]
    pairs: list[tuple[str, object, object]] = []
    if ours["ip_version"] == 4 and error not in ("truncated_ip", "bad_ip_header"):
        pairs += [
            ("ip.src", ip4(ours["src_ip4"]), t["ip.src"]),
            ("ip.dst", ip4(ours["dst_ip4"]), t["ip.dst"]),
            ("ip.id", ours["ip_id"], num(t["ip.id"])),
            ("ip.ttl", ours["ip_ttl"], num(t["ip.ttl"])),
        ]
    if ours["ip_version"] == 6 and error not in ("truncated_ip", "bad_ip_header"):
        pairs += [
            ("ipv6.src", ip6(ours["src_ip6"]), t["ipv6.src"]),
            ("ipv6.dst", ip6(ours["dst_ip6"]), t["ipv6.dst"]),
            ("ipv6.hlim", ours["ip_ttl"], num(t["ipv6.hlim"])),
        ]
        if t["ipv6.fraghdr.ident"]:
            pairs.append(("fragment id", ours["ip_id"], num(t["ipv6.fraghdr.ident"]) & 0xFFFF))
    if error in ("", "fragment"):
        pairs += transport_pairs(ours, t)
    return [f"{name}: decoder {a!r}, tshark {b!r}" for name, a, b in pairs if a != b]


def transport_pairs(ours: dict[str, Any], t: dict[str, str]) -> list[tuple[str, object, object]]:
    ports = (ours["src_port"], ours["dst_port"])
    if ours["ip_frag"] & 0x1FFF:  # a later fragment: nothing to dissect
        return [("ports", ports, (0, 0)), ("tcp", "", t["tcp.srcport"] + t["udp.srcport"])]
    proto = ours["proto"]
    if proto == 6:
        mss = num(t["tcp.options.mss_val"]) if t["tcp.options.mss_val"] else 0
        pairs: list[tuple[str, object, object]] = [
            ("tcp ports", ports, (num(t["tcp.srcport"]), num(t["tcp.dstport"]))),
            ("tcp.flags", ours["tcp_flags"], num(t["tcp.flags"]) & 0xFF),
            ("tcp.seq_raw", ours["tcp_seq"], num(t["tcp.seq_raw"])),
            ("tcp.window", ours["tcp_window"], num(t["tcp.window_size_value"])),
            ("tcp.mss", ours["tcp_mss"], mss),
        ]
        if t["tcp.ack_raw"]:
            pairs.append(("tcp.ack_raw", ours["tcp_ack"], num(t["tcp.ack_raw"])))
        return pairs
    if proto == 17:
        return [("udp ports", ports, (num(t["udp.srcport"]), num(t["udp.dstport"])))]
    if proto in (1, 58):
        kind = "icmp" if proto == 1 else "icmpv6"
        return [(kind, ports, (num(t[f"{kind}.type"]), num(t[f"{kind}.code"])))]
    return []


def compare(path: Path, tmp: Path) -> int:
    ours = list(decoded(path))
    theirs = tshark(plain_copy(path, tmp))
    assert len(ours) == len(theirs), f"{path.name}: {len(ours)} decoded, tshark saw {len(theirs)}"
    problems = [
        f"{path.name} frame {i + 1}: {d}"
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True))
        for d in differences(o, t)
    ]
    assert not problems, "\n".join(problems[:40])
    return len(ours)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_test_data_captures_agree_with_tshark(path: Path, tmp_path: Path) -> None:
    assert compare(path, tmp_path) > 0


# ------------------------------------------------------------------ our own oracle capture


def scanner_packets(rng: random.Random, count: int) -> list[Packet]:
    """Random SYN / SYN-ACK / RST / UDP / ICMP packets with random header fields."""
    out: list[Packet] = []
    for _ in range(count):
        src, dst = ip4(rng.getrandbits(32)), ip4(rng.getrandbits(32))
        ip = IP(src=src, dst=dst, id=rng.getrandbits(16), ttl=rng.randint(1, 255))
        kind = rng.choice(["tcp", "tcp", "udp", "icmp"])
        if kind == "tcp":
            full = [("NOP", None), ("WScale", 7), ("MSS", 1460), ("SAckOK", b"")]
            opts = rng.choice([[], [("MSS", rng.getrandbits(16))], full])
            l4: Packet = TCP(
                sport=rng.getrandbits(16),
                dport=rng.getrandbits(16),
                seq=rng.getrandbits(32),
                ack=rng.getrandbits(32),
                flags=rng.choice([0x02, 0x12, 0x04, 0x14, 0x18, 0x10, 0xC2]),
                window=rng.getrandbits(16),
                options=opts,
            )
        elif kind == "udp":
            l4 = UDP(sport=rng.getrandbits(16), dport=rng.getrandbits(16)) / Raw(b"x" * 8)
        else:
            l4 = ICMP(type=rng.choice([0, 3, 8, 11]), code=rng.randint(0, 3))
        out.append(ip / l4)
    return out


def special_packets() -> list[Packet]:
    """Options, fragments, extension headers, ICMP errors quoting a TCP header."""
    a, b, a6, b6 = "203.0.113.5", "192.0.2.9", "2001:db8:1::5", "2001:db8:2::9"
    syn = TCP(sport=1234, dport=445, seq=99, flags="S", options=[("MSS", 1380)])
    big = IP(src=a, dst=b, id=4242) / UDP(sport=5, dport=6) / Raw(bytes(1400))
    return [
        IP(src=a, dst=b, options=[IPOption_Router_Alert()]) / syn,
        *fragment(big, fragsize=600),
        IP(src=b, dst=a) / ICMP(type=3, code=3) / bytes(IP(src=a, dst=b) / syn)[:28],
        IPv6(src=a6, dst=b6, hlim=9) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / syn,
        IPv6(src=a6, dst=b6) / IPv6ExtHdrFragment(id=0x12345678, m=1) / UDP(sport=7, dport=8),
        IPv6(src=a6, dst=b6) / IPv6ExtHdrFragment(id=0x12345678, offset=9, nh=17) / bytes(16),
        IPv6(src=b6, dst=a6) / ICMPv6DestUnreach(code=1) / bytes(IPv6(src=a6, dst=b6) / syn)[:60],
        IPv6(src=a6, dst=b6) / ICMPv6EchoRequest(id=1, seq=2),
    ]


def test_scapy_captures_agree_with_tshark(tmp_path: Path) -> None:
    packets = scanner_packets(random.Random(20161021), 300) + special_packets()
    ethernet = [Ether(**MACS) / p for p in packets]
    ethernet += [
        Ether(**MACS) / Dot1Q(vlan=3) / packets[0],
        Ether(**MACS) / Dot1AD(vlan=4) / Dot1Q(vlan=5) / packets[1],
    ]
    wrpcap(str(tmp_path / "ethernet.pcap"), ethernet)
    wrpcap(str(tmp_path / "raw.pcap"), packets, linktype=101)
    for name in ("ethernet.pcap", "raw.pcap"):
        assert compare(tmp_path / name, tmp_path) >= len(packets)
    errors = np.zeros(len(DECODE_ERRORS), np.int64)
    for row in decoded(tmp_path / "ethernet.pcap"):
        errors[row["decode_error"]] += 1
    fragment = DECODE_ERRORS.index("fragment")
    errors[fragment] = 0  # later fragments are compared too (no ports on either side)
    assert errors[1:].sum() == 0  # every packet was decoded completely, so all were compared
