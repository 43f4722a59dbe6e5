"""Tests for teiten.simulate.pcapwriter: byte layout, checksums and ragged tails."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from teiten.simulate import pcapwriter as pw
from teiten.simulate import traffic as tr

SENSOR = ["203.0.113.0/24"]
DST = 0xCB007105  # 203.0.113.5
SRC = 0xC6336407  # 198.51.100.7


def _mixed() -> pw.PacketColumns:
    """One packet of each shape: SYN with options, data segment, UDP probe, ICMP error."""
    rng = np.random.default_rng(1)
    ts = np.array([1_000_000_000_000_000], np.int64)
    one = np.array([SRC], np.uint32)
    dst = np.array([DST], np.uint32)
    data = b"GET / HTTP/1.1\r\n\r\n"
    segment = pw.make_packets(
        1, np.frombuffer(data, np.uint8), ts=ts + 3000, src=dst, dst=one, sport=80,
        dport=40000, seq=7, ack=9, flags=pw.PSH | pw.ACK, win=512, tail_len=len(data),
    )  # fmt: skip
    return pw.concat([
        tr.host_syns(rng, ts, one, dst, 23, 1, 10),
        segment,
        tr.udp_probes(rng, ts + 5000, one, dst, 53, 10),
        tr.backscatter(rng, ts + 7000, one, 80, dst, 2, 5),
        tr.icmp_echo(rng, ts + 9000, one, dst, 3),
    ])  # fmt: skip


def test_records_read_back_with_valid_checksums(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    assert pw.write_pcap(path, _mixed(), SENSOR) == 5
    frames = rdpcap(str(path))
    assert len(frames) == 5
    for frame in frames:
        rebuilt = frame.copy()
        del rebuilt[IP].chksum
        for layer in (TCP, UDP, ICMP):
            if rebuilt.haslayer(layer):
                del rebuilt[layer].chksum
        again = Ether(bytes(rebuilt))
        assert again[IP].chksum == frame[IP].chksum
        for layer in (TCP, UDP, ICMP):
            if frame.haslayer(layer):
                assert again[layer].chksum == frame[layer].chksum


def test_fields_and_tails_land_where_dpkt_expects(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    pw.write_pcap(path, _mixed(), SENSOR)
    with path.open("rb") as fh:
        frames = [dpkt.ethernet.Ethernet(buf) for _, buf in dpkt.pcap.Reader(fh)]
    syn, seg, udp, icmp, echo = (f.data for f in frames)
    assert syn.data.flags == pw.SYN and syn.data.dport == 23 and syn.ttl == 54
    assert dpkt.tcp.parse_opts(syn.data.opts)[0] == (2, b"\x05\xb4")
    assert seg.data.data == b"GET / HTTP/1.1\r\n\r\n" and seg.data.ack == 9
    assert frames[1].src == bytes(pw.SENSOR_MAC)  # the sensor sent it
    assert frames[0].dst == bytes(pw.SENSOR_MAC)
    assert udp.data.dport == 53 and b"example" in udp.data.data
    assert icmp.data.type == 3 and len(icmp.data.data) == 4 + 28
    quoted = icmp.data.data.data  # Unreach → the quoted IPv4 header
    assert isinstance(quoted, dpkt.ip.IP) and quoted.src == struct.pack(">I", DST)
    assert dpkt.in_cksum(bytes(quoted)[:20]) == 0
    assert echo.data.type == 8 and len(echo.data.data.data) in (32, 48)


def test_nanosecond_and_microsecond_headers(tmp_path: Path) -> None:
    p = _mixed()
    pw.write_pcap(tmp_path / "us.pcap", p, SENSOR)
    pw.write_pcap(tmp_path / "ns.pcap", p, SENSOR, nanosecond=True)
    us, ns = (tmp_path / "us.pcap").read_bytes(), (tmp_path / "ns.pcap").read_bytes()
    assert struct.unpack_from("<I", us)[0] == pw.PCAP_MAGIC_US
    assert struct.unpack_from("<I", ns)[0] == pw.PCAP_MAGIC_NS
    assert struct.unpack_from("<II", us, 24) == (1_000_000, 0)
    assert struct.unpack_from("<II", ns, 24) == (1_000_000, 0)
    assert len(us) == len(ns)


def test_chunked_writing_gives_the_same_bytes(tmp_path: Path) -> None:
    p = _mixed()
    pw.write_pcap(tmp_path / "a.pcap", p, SENSOR)
    pw.write_pcap(tmp_path / "b.pcap", p, SENSOR, chunk=2)
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()


def test_take_keeps_tails_with_their_packets() -> None:
    p = _mixed()
    order = np.array([4, 2, 0, 3, 1])
    q = p.take(order)
    for new, old in enumerate(order):
        a, b = int(q.tail_off[new]), int(p.tail_off[old])
        n = int(p.tail_len[old])
        assert q.tail[a : a + n].tobytes() == p.tail[b : b + n].tobytes()


def test_make_packets_rejects_mismatched_tails() -> None:
    with pytest.raises(ValueError):
        pw.make_packets(1, np.zeros(3, np.uint8), tail_len=4)
    with pytest.raises(TypeError):
        pw.make_packets(1, nonsense=1)
