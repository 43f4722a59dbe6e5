"""Tests for the packet decoder (teiten.decode): link types, protocols and error reasons."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

from teiten.capture.source import RecordChunk
from teiten.decode import decode
from teiten.decode.batch import PacketBatch
from teiten.decode.kernel import Columns, decode_records
from teiten.schema import DECODE_ERRORS, DECODED, column

SRC, DST = "203.0.113.10", "192.0.2.1"
SRC6, DST6 = "2001:db8:1::10", "2001:db8:2::1"
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def chunk_of(records: Sequence[bytes], linktypes: int | Sequence[int] = 1) -> RecordChunk:
    """A RecordChunk holding ``records`` back to back (caplen = origlen = length)."""
    n = len(records)
    lens = np.array([len(r) for r in records], np.uint32)
    offset = np.zeros(n, np.int64)
    offset[1:] = np.cumsum(lens, dtype=np.int64)[:-1]
    data = np.frombuffer(b"".join(records), np.uint8).copy()
    lt = np.full(n, linktypes, np.uint16) if isinstance(linktypes, int) else linktypes
    ts = np.arange(n, dtype=np.int64) + 1_700_000_000_000_000_000
    return RecordChunk(data, offset, lens, lens.copy(), ts, np.asarray(lt, np.uint16))


def row_of(batch: PacketBatch, i: int) -> dict[str, Any]:
    """Row ``i`` as Python values (IPv6 addresses as bytes, ``error`` as the reason name)."""
    out: dict[str, Any] = {}
    for name, array in batch.columns.items():
        out[name] = bytes(array[i]) if array.ndim == 2 else array[i].item()
    out["error"] = DECODE_ERRORS[out["decode_error"]]
    out["payload_offset"] = int(batch.payload_offset[i])
    out["payload_caplen"] = int(batch.payload_caplen[i])
    return out


def check(record: bytes | Packet, linktype: int = 1, **expected: Any) -> dict[str, Any]:
    """Decode one record and assert the ``expected`` fields (``error`` is the reason name)."""
    r = row_of(decode(chunk_of([bytes(record)], linktype)), 0)
    assert {k: r[k] for k in expected} == expected
    return r


def eth(pkt: Packet) -> Packet:
    return Ether(**MACS) / pkt


def v4(**kw: Any) -> Packet:
    return IP(src=SRC, dst=DST, **kw)


def v6(**kw: Any) -> Packet:
    return IPv6(src=SRC6, dst=DST6, **kw)


def ip4int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip6bytes(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


SYN = v4(id=54321, ttl=241, flags="DF") / TCP(
    sport=40000, dport=23, seq=0xC0000201, ack=7, flags="S", window=1024, options=[("MSS", 1460)]
)
SYN6 = v6(hlim=55) / TCP(sport=40001, dport=22, seq=123, flags="S", window=65535)


# ------------------------------------------------------------------ the batch


def test_columns_are_the_decoded_ones_with_schema_dtypes() -> None:
    batch = decode(chunk_of([bytes(eth(SYN))]))
    assert set(batch.columns) == set(DECODED)
    for name, array in batch.columns.items():
        dtype = column("packets", name).dtype
        assert array.dtype == (np.uint8 if dtype == "bytes16" else np.dtype(dtype)), name
        assert array.shape == ((1, 16) if dtype == "bytes16" else (1,)), name
    assert batch.payload_offset.dtype == np.int64
    assert batch.payload_caplen.dtype == np.uint32
    assert set(Columns._fields) == (set(DECODED) - {"ts"}) | {"payload_offset", "payload_caplen"}


def test_ts_copied_from_chunk() -> None:
    assert len(decode(chunk_of([]))) == len(decode(chunk_of([])).payload_offset) == 0
    c = chunk_of([bytes(eth(SYN))] * 3)
    batch = decode(c)
    assert batch["ts"].tolist() == c.ts_ns.tolist()
    c.ts_ns[:] = 0  # the source may reuse its arrays
    assert batch["ts"][0] != 0


def test_threads_decode_concurrently_to_the_same_result() -> None:
    assert decode_records.targetoptions["nogil"] is True  # the kernel releases the GIL
    c = chunk_of([bytes(eth(SYN)), bytes(eth(SYN6))] * 500)
    expected = decode(c)
    with ThreadPoolExecutor(4) as pool:
        for got in pool.map(decode, [c] * 4):
            assert all(np.array_equal(got[k], v) for k, v in expected.columns.items())


# ------------------------------------------------------------------ IPv4 / TCP


def test_ethernet_ipv4_tcp_syn_all_fields() -> None:
    check(eth(SYN), error="", ip_version=4, proto=6, src_ip4=ip4int(SRC), dst_ip4=ip4int(DST))
    check(eth(SYN), src_ip6=bytes(16), dst_ip6=bytes(16), src_port=40000, dst_port=23)
    check(eth(SYN), tcp_seq=0xC0000201, tcp_ack=7, tcp_flags=2, tcp_window=1024)
    check(eth(SYN), tcp_options_len=4, tcp_mss=1460, ip_id=54321, ip_ttl=241, ip_len=44)
    check(eth(SYN), ip_frag=0x4000, payload_len=0, payload_offset=-1, payload_caplen=0)


def test_tcp_flags_keep_the_low_eight_bits() -> None:
    pkt = bytearray(bytes(eth(v4() / TCP(flags="SAFRPUEC"))))
    pkt[14 + 20 + 12] |= 0x01  # NS / AE bit in the data-offset byte
    check(bytes(pkt), tcp_flags=0xFF)


def test_tcp_payload_position_and_ethernet_padding() -> None:
    body = b"GET / HTTP/1.1\r\n\r\n"
    pkt = eth(v4() / TCP(flags="PA") / Raw(body))
    check(pkt, payload_len=len(body), payload_caplen=len(body), payload_offset=54)
    padded = bytes(eth(v4() / TCP(flags="S"))) + bytes(6)  # 60-byte minimum frame
    check(padded, error="", payload_len=0, payload_offset=-1)


def test_payload_cut_by_snaplen_is_not_an_error() -> None:
    whole = bytes(eth(v4() / UDP(sport=1, dport=2) / Raw(bytes(100))))
    check(whole[:60], error="", payload_len=100, payload_caplen=60 - 42, payload_offset=42)


def test_payload_bytes_are_the_transport_payload() -> None:
    body = b"\x01\x02hello"
    c = chunk_of([bytes(eth(SYN)), bytes(eth(v6() / UDP() / Raw(body)))])
    b = decode(c)
    o, n = int(b.payload_offset[1]), int(b.payload_caplen[1])
    assert bytes(c.data[o : o + n]) == body


@pytest.mark.parametrize(
    ("options", "mss"),
    [
        ([("NOP", None), ("NOP", None), ("MSS", 536)], 536),
        ([("SAckOK", b""), ("Timestamp", (1, 2)), ("MSS", 1400), ("WScale", 7)], 1400),
        ([("WScale", 2)], 0),
        ([("EOL", None), ("MSS", 1460)], 0),  # nothing after end-of-list
    ],
)
def test_tcp_mss_option_walk(options: list[tuple[str, Any]], mss: int) -> None:
    check(eth(v4() / TCP(flags="S", options=options)), error="", tcp_mss=mss)


@pytest.mark.parametrize(
    "options",
    [
        b"\x02\x00\x05\xb4",  # length 0: stop
        b"\x03\x01\x02\x04\x05\xb4\x01\x01",  # length 1: stop before the MSS
        b"\x02\x03\x05\x01",  # MSS with the wrong length: not an MSS
        b"\x08\x0a\x00\x00",  # option longer than the options area
    ],
)
def test_malformed_tcp_options_stop_the_walk(options: bytes) -> None:
    tcp = bytes(TCP(flags="S", dataofs=5 + len(options) // 4))[:20]
    check(eth(v4(proto=6) / Raw(tcp + options)), error="", tcp_mss=0, tcp_options_len=len(options))


def test_ipv4_options_are_skipped() -> None:
    pkt = v4(options=[IPOption_Router_Alert(), IPOption_NOP()]) / UDP(sport=5, dport=6) / b"x"
    check(eth(pkt), error="", src_port=5, dst_port=6, proto=17, payload_offset=14 + 28 + 8)


def test_ipv4_fragments() -> None:
    udp = bytes(v4() / UDP(sport=9999, dport=1900) / Raw(bytes(1200)))[20:]
    first = v4(id=0x0F0F, flags="MF", frag=0, proto=17) / Raw(udp[:512])
    later = v4(id=0x0F0F, flags="MF", frag=64, proto=17) / Raw(udp[512:1024])
    check(eth(first), error="", src_port=9999, dst_port=1900, ip_frag=0x2000)
    check(eth(later), error="fragment", proto=17, src_port=0, dst_port=0, ip_frag=0x2000 | 64)
    check(eth(later), ip_id=0x0F0F, payload_len=512, payload_offset=34)


def test_icmp_type_and_code_in_the_ports() -> None:
    pkt = eth(v4() / ICMP(type=3, code=13) / Raw(bytes(28)))
    check(pkt, error="", proto=1, src_port=3, dst_port=13, payload_len=28)


def test_other_transport_keeps_proto_and_payload() -> None:
    check(eth(v4(proto=47) / Raw(bytes(12))), error="", proto=47, src_port=0, payload_len=12)


# ------------------------------------------------------------------ IPv6


def test_ipv6_tcp() -> None:
    addresses = {"src_ip6": ip6bytes(SRC6), "dst_ip6": ip6bytes(DST6)}
    check(eth(SYN6), error="", ip_version=6, proto=6, src_ip4=0, dst_ip4=0, **addresses)
    check(eth(SYN6), ip_ttl=55, ip_len=60, src_port=40001, dst_port=22, tcp_seq=123)


def test_ipv6_extension_headers_are_walked() -> None:
    pkt = (
        v6()
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / AH(nh=44, payloadlen=4, spi=1, seq=1, icv=bytes(12))
        / IPv6ExtHdrFragment(id=0xABCDEF01, offset=0, m=1)
        / UDP(sport=40003, dport=5060)
        / Raw(bytes(20))
    )
    check(eth(pkt), error="", proto=17, src_port=40003, dst_port=5060)
    check(eth(pkt), ip_id=0xEF01, ip_frag=0x2000, payload_len=20)


def test_ipv6_later_fragment_has_no_transport_header() -> None:
    pkt = eth(v6() / IPv6ExtHdrFragment(id=7, offset=68, m=0, nh=17) / Raw(bytes(40)))
    check(pkt, error="fragment", proto=17, src_port=0, ip_id=7, ip_frag=68, payload_len=40)


def test_ipv6_extension_chain_is_bounded() -> None:
    pkt = v6()
    for _ in range(9):
        pkt = pkt / IPv6ExtHdrDestOpt()
    check(eth(pkt / UDP()), error="", proto=60, src_port=0)


def test_icmpv6() -> None:
    pkt = eth(v6() / ICMPv6DestUnreach(code=4) / Raw(bytes(48)))
    check(pkt, error="", proto=58, src_port=1, dst_port=4)
    check(eth(v6() / ICMPv6EchoReply()), src_port=129)


# ------------------------------------------------------------------ link types


@pytest.mark.parametrize(
    "tags",
    [[Dot1Q(vlan=100)], [Dot1AD(vlan=200), Dot1Q(vlan=100)], [Dot1Q(vlan=1), Dot1Q(vlan=2)]],
    ids=["802.1q", "qinq", "double-802.1q"],
)
def test_vlan_tags(tags: list[Packet]) -> None:
    frame: Packet = Ether(**MACS)
    for tag in tags:
        frame = frame / tag
    check(frame / SYN, error="", dst_port=23, tcp_mss=1460)


def test_vlan_tpid_9100() -> None:
    inner = bytes(Ether(**MACS) / Dot1Q(vlan=5) / SYN)
    check(inner[:12] + b"\x91\x00" + inner[14:], error="", dst_port=23)


@pytest.mark.parametrize("linktype", [12, 14, 101])
@pytest.mark.parametrize("pkt", [SYN, SYN6], ids=["ipv4", "ipv6"])
def test_raw_ip(linktype: int, pkt: Packet) -> None:
    check(pkt, linktype, error="", src_port=pkt[TCP].sport)


def test_linktype_ipv4_and_ipv6() -> None:
    check(SYN, 228, error="", ip_version=4)
    check(SYN6, 229, error="", ip_version=6)
    check(SYN6, 228, error="bad_ip_header")
    check(SYN, 229, error="bad_ip_header")


def sll(proto: int, payload: bytes) -> bytes:
    return struct.pack(">HHH8sH", 0, 1, 6, bytes(8), proto) + payload


def sll2(proto: int, payload: bytes) -> bytes:
    return struct.pack(">HHIHBB8s", proto, 0, 2, 1, 0, 6, bytes(8)) + payload


def test_linux_cooked() -> None:
    check(sll(0x0800, bytes(SYN)), 113, error="", dst_port=23)
    check(sll(0x86DD, bytes(SYN6)), 113, error="", dst_port=22)
    check(sll(0x8100, b"\x00\x05\x08\x00" + bytes(SYN)), 113, error="", dst_port=23)
    check(sll2(0x0800, bytes(SYN)), 276, error="", dst_port=23)
    check(sll2(0x86DD, bytes(SYN6)), 276, error="", dst_port=22)
    check(sll(0x0806, bytes(28)), 113, error="not_ip")
    check(sll(0x0800, bytes(SYN))[:15], 113, error="truncated_link")
    check(sll2(0x0800, bytes(SYN))[:19], 276, error="truncated_link")


@pytest.mark.parametrize("family", [2, 24, 28, 30])
@pytest.mark.parametrize(("order", "linktype"), [("<", 0), (">", 0), (">", 108)])
def test_bsd_null_and_loop(order: str, family: int, linktype: int) -> None:
    """NULL is in the capturing host's byte order (either), LOOP in network order."""
    pkt = SYN if family == 2 else SYN6
    record = struct.pack(order + "I", family) + bytes(pkt)
    check(record, linktype, error="", ip_version=pkt.version, src_port=pkt[TCP].sport)


def test_bsd_null_other_family_is_not_ip() -> None:
    check(struct.pack("<I", 7) + bytes(SYN), 0, error="not_ip")
    check(struct.pack("<I", 2)[:3], 0, error="truncated_link")


def test_mixed_link_types_in_one_chunk() -> None:
    records = [bytes(eth(SYN)), bytes(SYN6), sll(0x0800, bytes(SYN)), bytes(eth(SYN6))]
    b = decode(chunk_of(records, [1, 101, 113, 1]))
    assert b["decode_error"].tolist() == [0, 0, 0, 0]
    assert b["ip_version"].tolist() == [4, 6, 4, 6]


# ------------------------------------------------------------------ error reasons


def test_unsupported_link_and_not_ip() -> None:
    check(bytes(eth(SYN)), 127, error="unsupported_link", ip_version=0)  # radiotap
    arp = Ether(**MACS) / ARP(psrc=SRC, pdst=DST, hwsrc=MACS["src"])
    check(arp, error="not_ip", ip_version=0)


def test_truncated_link() -> None:
    check(bytes(eth(SYN))[:13], error="truncated_link")
    check(bytes(Ether(**MACS) / Dot1Q() / SYN)[:16], error="truncated_link")
    check(b"", error="truncated_link")


def test_truncated_ip() -> None:
    check(bytes(eth(SYN))[: 14 + 19], error="truncated_ip", ip_version=4)
    check(bytes(eth(SYN6))[: 14 + 39], error="truncated_ip", ip_version=6)
    check(b"", 101, error="truncated_ip", ip_version=0)
    opts = bytes(eth(v4(options=[IPOption_Router_Alert()]) / UDP()))
    check(opts[: 14 + 22], error="truncated_ip", src_ip4=ip4int(SRC))


def test_bad_ip_header() -> None:
    raw = bytearray(bytes(eth(SYN)))
    raw[14] = 0x44  # IHL 4
    check(bytes(raw), error="bad_ip_header")
    raw[14], raw[16:18] = 0x45, (19).to_bytes(2, "big")  # total length < header
    check(bytes(raw), error="bad_ip_header", src_ip4=ip4int(SRC), ip_len=19)
    check(bytes(Ether(**MACS, type=0x0800) / SYN6), error="bad_ip_header", ip_version=0)
    check(b"\x50" + bytes(39), 101, error="bad_ip_header")


def test_truncated_l4_keeps_what_was_captured() -> None:
    whole = bytes(eth(SYN))
    kept = {"src_port": 40000, "dst_port": 23, "tcp_seq": 0xC0000201, "src_ip4": ip4int(SRC)}
    check(whole[: 14 + 20 + 10], error="truncated_l4", tcp_flags=0, **kept)
    options_cut = whole[: 14 + 20 + 22]
    check(options_cut, error="truncated_l4", tcp_options_len=4, tcp_flags=2, tcp_mss=0)
    check(bytes(eth(v4() / UDP()))[: 14 + 20 + 6], error="truncated_l4")
    check(bytes(eth(v4() / ICMP(type=8)))[: 14 + 20 + 4], error="truncated_l4", src_port=8)


def test_ip_total_length_bounds_the_transport_header() -> None:
    raw = bytearray(bytes(eth(SYN)))
    raw[16:18] = (30).to_bytes(2, "big")  # says only 10 bytes of TCP
    check(bytes(raw), error="truncated_l4", src_port=40000, tcp_flags=0, payload_len=0)


def test_bad_tcp_header() -> None:
    pkt = eth(v4() / TCP(sport=7, dataofs=4, flags="S"))
    check(pkt, error="bad_tcp_header", src_port=7, tcp_flags=2, tcp_options_len=0)


def test_truncated_ext() -> None:
    pkt = bytes(eth(v6() / IPv6ExtHdrHopByHop() / UDP()))
    check(pkt[: 14 + 40 + 4], error="truncated_ext", ip_version=6, src_ip6=ip6bytes(SRC6))


def test_records_outside_the_data_are_clipped() -> None:
    c = chunk_of([bytes(eth(SYN))])
    c.caplen[:] = 10_000  # a buggy source
    assert row_of(decode(c), 0)["error"] == ""
    c.offset[:] = 1 << 40
    assert row_of(decode(c), 0)["error"] == "truncated_link"
