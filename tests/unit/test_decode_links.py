"""Decoder parity cases from real captures: link types, offload lengths, fragments, cut ports."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from teiten.capture.source import RecordChunk
from teiten.decode import decode
from teiten.schema import DECODE_ERRORS

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
SYN_BYTES = bytes(IP(src="203.0.113.10", dst="192.0.2.1") / TCP(dport=23, flags="S"))
SYN6_BYTES = bytes(IPv6(src="2001:db8:1::10", dst="2001:db8:2::1") / TCP(dport=22, flags="S"))


def check(record: bytes | Packet, linktype: int = 1, **expected: Any) -> None:
    """Decode one record and assert the ``expected`` fields (``error`` is the reason name)."""
    data = bytes(record)
    n = np.array([len(data)], np.uint32)
    chunk = RecordChunk(
        np.frombuffer(data, np.uint8).copy(),
        np.zeros(1, np.int64),
        n,
        n.copy(),
        np.zeros(1, np.int64),
        np.array([linktype], np.uint16),
    )
    c = decode(chunk).columns
    row = {k: c[k][0].item() for k in expected if k != "error"}
    row["error"] = DECODE_ERRORS[c["decode_error"][0]]
    assert {k: row[k] for k in expected} == expected


def eth(pkt: Packet) -> Packet:
    return Ether(**MACS) / pkt


def v4(**kw: Any) -> Packet:
    return IP(src="203.0.113.10", dst="192.0.2.1", **kw)


def ether_type(ethertype: int, payload: bytes) -> bytes:
    return bytes(Ether(**MACS, type=ethertype)) + payload


def mpls(*labels: int) -> bytes:
    """A label stack, bottom-of-stack bit on the last label."""
    out = b""
    for k, label in enumerate(labels):
        bottom = 1 if k == len(labels) - 1 else 0
        out += struct.pack(">I", (label << 12) | (bottom << 8) | 64)
    return out


def pppoe(protocol: int, payload: bytes) -> bytes:
    return struct.pack(">BBHHH", 0x11, 0, 0x1234, len(payload) + 2, protocol) + payload


def nflog_tlv(kind: int, value: bytes, little: bool = True) -> bytes:
    head = struct.pack("<HH" if little else ">HH", 4 + len(value), kind)
    return head + value + bytes(-len(value) % 4)


def nflog(family: int, payload: bytes, little: bool = True) -> bytes:
    header = struct.pack(">BBH", family, 0, 7)
    prefix = nflog_tlv(10, b"log-prefix\x00", little)
    return header + nflog_tlv(1, bytes(4), little) + prefix + nflog_tlv(9, payload, little)


# ------------------------------------------------------------------ link types


def test_mpls_label_stacks_to_ipv4_and_ipv6() -> None:
    check(ether_type(0x8847, mpls(16) + SYN_BYTES), error="", ip_version=4, dst_port=23)
    check(ether_type(0x8847, mpls(16, 17, 18) + SYN6_BYTES), error="", ip_version=6)
    check(ether_type(0x8848, mpls(5) + SYN_BYTES), error="", dst_port=23)
    vlan = bytes(Ether(**MACS) / Dot1Q(vlan=3, type=0x8847)) + mpls(16) + SYN_BYTES
    check(vlan, error="", dst_port=23)


def test_mpls_without_ip_or_cut_short() -> None:
    check(ether_type(0x8847, mpls(16) + bytes(20)), error="not_ip")  # pseudowire control word
    check(ether_type(0x8847, mpls(16, 17)[:6]), error="truncated_link")
    check(ether_type(0x8847, mpls(*range(20)) + SYN_BYTES), error="not_ip")  # too deep


def test_pppoe_session() -> None:
    check(ether_type(0x8864, pppoe(0x0021, SYN_BYTES)), error="", ip_version=4, dst_port=23)
    check(ether_type(0x8864, pppoe(0x0057, SYN6_BYTES)), error="", ip_version=6, dst_port=22)
    check(ether_type(0x8864, pppoe(0xC021, bytes(20))), error="not_ip")  # LCP
    check(ether_type(0x8864, pppoe(0x0021, b"")[:5]), error="truncated_link")
    check(pppoe(0x0021, SYN_BYTES), 51, error="", dst_port=23)  # LINKTYPE_PPP_ETHER


@pytest.mark.parametrize("linktype", [9, 50])
def test_ppp_with_and_without_hdlc_framing(linktype: int) -> None:
    check(b"\xff\x03\x00\x21" + SYN_BYTES, linktype, error="", dst_port=23)
    check(b"\x00\x57" + SYN6_BYTES, linktype, error="", ip_version=6)
    check(b"\xff\x03\x21" + SYN_BYTES, linktype, error="", dst_port=23)  # 1-byte protocol
    check(b"\xff\x03\xc0\x21" + bytes(8), linktype, error="not_ip")
    check(b"\xff\x03", linktype, error="truncated_link")


def test_cisco_hdlc() -> None:
    check(b"\x0f\x00\x08\x00" + SYN_BYTES, 104, error="", dst_port=23)
    check(b"\x8f\x00\x86\xdd" + SYN6_BYTES, 104, error="", ip_version=6)
    check(b"\x0f\x00\x08\x00" + SYN_BYTES, 50, error="", dst_port=23)  # written as PPP_SERIAL
    check(b"\x8f\x00\x80\x35" + bytes(20), 104, error="not_ip")
    check(b"\x0f\x00\x08", 104, error="truncated_link")


@pytest.mark.parametrize("little", [True, False])
def test_nflog_payload_tlv(little: bool) -> None:
    check(nflog(2, SYN_BYTES, little), 239, error="", ip_version=4, dst_port=23)
    check(nflog(10, SYN6_BYTES, little), 239, error="", ip_version=6, dst_port=22)


def test_nflog_without_payload_or_cut() -> None:
    header = struct.pack(">BBH", 2, 0, 7)
    check(header + nflog_tlv(1, bytes(4)), 239, error="not_ip")
    check(header[:3], 239, error="truncated_link")
    check(header + b"\x00\x00\x09\x00" + SYN_BYTES, 239, error="not_ip")  # TLV length 0


def test_llc_snap_carries_ip() -> None:
    snap = b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + SYN_BYTES
    check(ether_type(len(snap), snap), error="", dst_port=23)
    check(ether_type(20, b"\x42\x42\x03" + bytes(17)), error="not_ip")  # spanning tree


def test_tags_inside_ethernet() -> None:
    macsec = b"\x20\x00" + bytes(4) + bytes(8) + b"\x08\x00" + SYN_BYTES  # SC bit: 16-byte tag
    check(ether_type(0x88E5, macsec), error="", dst_port=23)
    check(ether_type(0x88E5, b"\x0c" + bytes(7) + SYN_BYTES), error="not_ip")  # encrypted
    check(ether_type(0x8926, bytes(4) + b"\x08\x00" + SYN_BYTES), error="", dst_port=23)
    fabricpath = bytes(2) + bytes(12) + b"\x86\xdd" + SYN6_BYTES
    check(ether_type(0x8903, fabricpath), error="", ip_version=6, dst_port=22)
    check(ether_type(0x894F, b"\x00\x02\x02\x01" + bytes(4) + SYN_BYTES), error="", dst_port=23)
    inner = bytes(12) + b"\x86\xdd" + SYN6_BYTES
    check(ether_type(0x894F, b"\x00\x02\x02\x03" + bytes(4) + inner), error="", dst_port=22)
    check(ether_type(0x894F, b"\x00\x01\x02\x01" + bytes(4) + SYN_BYTES), error="not_ip")


def test_ppp_carrying_mpls() -> None:
    check(b"\xff\x03\x02\x81" + mpls(3) + SYN_BYTES, 9, error="", dst_port=23)


def test_rarer_link_types() -> None:
    snap = b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + SYN_BYTES
    check(bytes(13) + snap, 10, error="", dst_port=23)  # FDDI
    check(bytes(14) + snap, 6, error="", dst_port=23)  # Token Ring
    routed = bytes(8) + b"\x80" + bytes(5) + b"\x02\x00" + snap  # 2-byte routing field
    check(routed, 6, error="", dst_port=23)
    check(b"\x08\x01" + bytes(22) + snap, 105, error="", dst_port=23)  # 802.11 data
    check(b"\x88\x01" + bytes(24) + snap, 105, error="", dst_port=23)  # QoS data
    check(b"\x08\x41" + bytes(22) + snap, 105, error="not_ip")  # protected
    check(b"\x80\x00" + bytes(40), 105, error="not_ip")  # beacon
    check(b"\x01\x02\x00\x00\xd4\x00\x01\x66" + SYN_BYTES, 129, error="", dst_port=23)
    check(b"\x01\x02\xf0" + SYN_BYTES, 7, error="", dst_port=23)  # ARCNET, RFC 1051
    check(b"\x18\x41\x03\xcc" + SYN_BYTES, 107, error="", dst_port=23)  # Frame Relay
    check(b"\x18\x41\x03\x8e" + SYN6_BYTES, 107, error="", ip_version=6)
    check(b"\x18\x41\x86\xdd" + SYN6_BYTES, 107, error="", ip_version=6)  # Cisco style
    check(b"\x01\x1a" + bytes(22) + SYN6_BYTES, 226, error="", ip_version=6)  # ipnet
    pktap = struct.pack("<II", 108, 1) + bytes(100) + ether_type(0x0800, SYN_BYTES)
    check(pktap, 149, error="", dst_port=23)


def test_ipv6_payload_length_zero_uses_the_captured_length() -> None:
    raw = bytearray(SYN6_BYTES)
    raw[4:6] = b"\x00\x00"  # jumbogram or offload
    check(bytes(raw), 229, error="", dst_port=22, tcp_flags=2)


def test_unknown_link_type_stays_unsupported() -> None:
    check(SYN_BYTES, 127, error="unsupported_link", ip_version=0)


# ------------------------------------------------------------------ IPv4 length 0, fragments


def test_ipv4_total_length_zero_uses_the_captured_length() -> None:
    raw = bytearray(bytes(eth(v4() / TCP(sport=5, dport=445, flags="S") / Raw(b"abcd"))))
    raw[16:18] = b"\x00\x00"  # segmentation offload
    check(bytes(raw), error="", dst_port=445, tcp_flags=2, payload_len=4, ip_len=0)


def test_non_first_fragments_have_their_own_category() -> None:
    later = eth(v4(flags="MF", frag=64, proto=6) / Raw(bytes(40)))
    check(later, error="fragment", src_port=0, dst_port=0)
    later6 = eth(IPv6() / IPv6ExtHdrFragment(id=1, offset=3, nh=6) / Raw(bytes(40)))
    check(later6, error="fragment", src_port=0, dst_port=0)
    first = eth(v4(flags="MF", frag=0) / UDP(sport=1, dport=53) / Raw(bytes(40)))
    check(first, error="", dst_port=53)


# ------------------------------------------------------------------ cut transport headers


def test_ports_captured_or_not() -> None:
    tcp = bytes(eth(v4() / TCP(sport=40000, dport=23, flags="S")))
    check(tcp[: 14 + 20 + 4], error="truncated_l4", dst_port=23)  # the port is there
    check(tcp[: 14 + 20 + 3], error="truncated_ports", dst_port=0)
    udp = bytes(eth(v4() / UDP(sport=7, dport=53)))
    check(udp[: 14 + 20 + 4], error="truncated_l4", dst_port=53)
    check(udp[: 14 + 20 + 2], error="truncated_ports", dst_port=0)
    check(bytes(eth(IP(proto=6))), error="truncated_ports")
