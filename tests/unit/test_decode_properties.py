"""Property tests for the packet decoder: random headers round-trip, bad bytes never hurt."""

from __future__ import annotations

import ipaddress
import os
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

from teiten.capture.source import RecordChunk
from teiten.decode import decode
from teiten.decode.batch import PacketBatch

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
LINKS = ("eth", "vlan", "qinq", "raw", "sll", "sll2", "null", "loop")
LINKTYPES = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 105, 9999)
LINKTYPES += (6, 7, 9, 10, 50, 51, 104, 107, 129, 149, 226, 239, 258)
SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def chunk(records: list[bytes], linktypes: list[int], junk: bytes = b"") -> RecordChunk:
    """Records back to back, then ``junk`` bytes that no record owns."""
    lens = np.array([len(r) for r in records], np.uint32)
    offset = np.zeros(len(records), np.int64)
    offset[1:] = np.cumsum(lens, dtype=np.int64)[:-1]
    data = np.frombuffer(b"".join(records) + junk, np.uint8).copy()
    ts = np.zeros(len(records), np.int64)
    return RecordChunk(data, offset, lens, lens.copy(), ts, np.array(linktypes, np.uint16))


def decode_one(record: bytes, linktype: int, junk: bytes = b"") -> PacketBatch:
    return decode(chunk([record], [linktype], junk))


def fields(batch: PacketBatch, i: int = 0) -> dict[str, Any]:
    out = {k: (bytes(v[i]) if v.ndim == 2 else v[i].item()) for k, v in batch.columns.items()}
    out["payload_offset"] = int(batch.payload_offset[i])
    out["payload_caplen"] = int(batch.payload_caplen[i])
    return out


def link(kind: str, pkt: Packet) -> tuple[bytes, int]:
    """Wrap an IP packet in a link header: ``(record bytes, linktype)``."""
    body = bytes(pkt)
    ethertype = 0x0800 if isinstance(pkt, IP) else 0x86DD
    family = 2 if isinstance(pkt, IP) else 30
    if kind == "eth":
        return bytes(Ether(**MACS) / pkt), 1
    if kind == "vlan":
        return bytes(Ether(**MACS) / Dot1Q(vlan=7) / pkt), 1
    if kind == "qinq":
        return bytes(Ether(**MACS) / Dot1AD(vlan=8) / Dot1Q(vlan=9) / pkt), 1
    if kind == "sll":
        return struct.pack(">HHH8sH", 0, 1, 6, bytes(8), ethertype) + body, 113
    if kind == "sll2":
        return struct.pack(">HHIHBB8s", ethertype, 0, 2, 1, 0, 6, bytes(8)) + body, 276
    if kind == "null":
        return struct.pack("<I", family) + body, 0
    if kind == "loop":
        return struct.pack(">I", family) + body, 108
    return body, 101


# ------------------------------------------------------------------ strategies

addr4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
addr6 = st.binary(min_size=16, max_size=16).map(lambda b: str(ipaddress.IPv6Address(b)))
u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
payloads = st.binary(max_size=40)
tcp_option = st.one_of(
    u16.map(lambda v: ("MSS", v)),
    st.just(("NOP", None)),
    st.integers(0, 14).map(lambda v: ("WScale", v)),
    st.just(("SAckOK", b"")),
    st.tuples(u32, u32).map(lambda t: ("Timestamp", t)),
)


@dataclass
class Case:
    """A packet built from a drawn spec, and what the decoder must find in it."""

    pkt: Packet
    payload: bytes
    expect: dict[str, Any]


# Strategies draw plain specs; packets are built in the test body (scapy keeps
# state of its own, which hypothesis must not see change inside a strategy).
Spec = dict[str, Any]
EXT6 = {"hbh": IPv6ExtHdrHopByHop, "routing": IPv6ExtHdrRouting, "dest": IPv6ExtHdrDestOpt}
IPOPT = {"nop": IPOption_NOP, "router_alert": IPOption_Router_Alert}


@st.composite
def transports(draw: st.DrawFn) -> Spec:
    spec = {"kind": draw(st.sampled_from(["tcp", "udp", "icmp"])), "payload": draw(payloads)}
    spec |= {"sport": draw(u16), "dport": draw(u16)}
    if spec["kind"] == "tcp":
        spec |= {"seq": draw(u32), "ack": draw(u32), "flags": draw(st.integers(0, 255))}
        spec |= {"window": draw(u16), "opts": draw(st.lists(tcp_option, max_size=4))}
    if spec["kind"] == "icmp":
        spec |= {"type": draw(st.integers(0, 255)), "code": draw(st.integers(0, 255))}
    return spec


@st.composite
def ipv4_specs(draw: st.DrawFn) -> Spec:
    spec = {"version": 4, "l4": draw(transports()), "src": draw(addr4), "dst": draw(addr4)}
    spec |= {"id": draw(u16), "ttl": draw(st.integers(0, 255)), "flags": draw(st.integers(0, 7))}
    return spec | {"opts": draw(st.lists(st.sampled_from(sorted(IPOPT)), max_size=3))}


@st.composite
def ipv6_specs(draw: st.DrawFn) -> Spec:
    spec = {"version": 6, "l4": draw(transports()), "src": draw(addr6), "dst": draw(addr6)}
    spec |= {"hlim": draw(st.integers(0, 255))}
    spec |= {"ext": draw(st.lists(st.sampled_from(sorted(EXT6)), max_size=3))}
    frag = st.none() | st.tuples(u32, st.integers(0, 1))
    return spec | {"frag": draw(frag)}


specs = ipv4_specs() | ipv6_specs()


def build_l4(spec: Spec) -> Case:
    ports = {"src_port": spec["sport"], "dst_port": spec["dport"]}
    if spec["kind"] == "udp":
        return Case(UDP(sport=spec["sport"], dport=spec["dport"]), spec["payload"], ports)
    if spec["kind"] == "icmp":
        header = Raw(bytes([spec["type"], spec["code"]]) + bytes(6))
        return Case(header, spec["payload"], {"src_port": spec["type"], "dst_port": spec["code"]})
    names = ("sport", "dport", "seq", "ack", "flags", "window")
    tcp = TCP(options=spec["opts"], **{k: spec[k] for k in names})
    mss = next((v for k, v in spec["opts"] if k == "MSS"), 0)
    expect = ports | {"tcp_seq": spec["seq"], "tcp_ack": spec["ack"], "tcp_mss": mss}
    expect |= {"tcp_flags": spec["flags"], "tcp_window": spec["window"]}
    return Case(tcp, spec["payload"], expect | {"tcp_options_len": len(bytes(tcp)) - 20})


def build(spec: Spec) -> Case:
    """The packet a spec describes and the fields the decoder must report."""
    l4 = build_l4(spec["l4"])
    proto = {"tcp": 6, "udp": 17, "icmp": 1 if spec["version"] == 4 else 58}[spec["l4"]["kind"]]
    expect = l4.expect | {"ip_version": spec["version"], "proto": proto}
    if spec["version"] == 4:
        opts = [IPOPT[name]() for name in spec["opts"]]
        header = IP(
            src=spec["src"],
            dst=spec["dst"],
            id=spec["id"],
            ttl=spec["ttl"],
            flags=spec["flags"],
            proto=proto,
            options=opts,
        )
        pkt = IP(bytes(header / l4.pkt / Raw(l4.payload)))
        expect |= {"ip_id": spec["id"], "ip_ttl": spec["ttl"], "ip_len": pkt.len}
        expect |= {"src_ip4": int(ipaddress.IPv4Address(spec["src"])), "src_ip6": bytes(16)}
        expect |= {"dst_ip4": int(ipaddress.IPv4Address(spec["dst"])), "dst_ip6": bytes(16)}
        return Case(pkt, l4.payload, expect | {"ip_frag": spec["flags"] << 13})
    chain: Packet = IPv6(src=spec["src"], dst=spec["dst"], hlim=spec["hlim"])
    for name in spec["ext"]:
        chain = chain / EXT6[name]()
    expect |= {"ip_id": 0, "ip_frag": 0}
    if spec["frag"] is not None:
        ident, more = spec["frag"]
        chain = chain / IPv6ExtHdrFragment(id=ident, m=more, offset=0)
        expect |= {"ip_id": ident & 0xFFFF, "ip_frag": 0x2000 * more}
    raw = bytearray(bytes(chain / l4.pkt / Raw(l4.payload)))
    raw[_last_next_header(raw)] = proto  # scapy cannot tell a raw ICMPv6 header
    pkt = IPv6(bytes(raw))
    expect |= {"ip_ttl": spec["hlim"], "ip_len": pkt.plen + 40, "src_ip4": 0, "dst_ip4": 0}
    expect |= {"src_ip6": ipaddress.IPv6Address(spec["src"]).packed}
    expect |= {"dst_ip6": ipaddress.IPv6Address(spec["dst"]).packed}
    return Case(pkt, l4.payload, expect)


def _last_next_header(raw: bytearray) -> int:
    """Offset of the next-header byte that names the transport, in an IPv6 packet."""
    at, nh, pos = 6, raw[6], 40
    while nh in (0, 43, 60, 44):
        at = pos
        pos += 8 if nh == 44 else (raw[pos + 1] + 1) * 8
        nh = raw[at]
    return at


# ------------------------------------------------------------------ properties


@SETTINGS
@given(spec=specs, kind=st.sampled_from(LINKS))
def test_random_headers_decode_to_their_fields(spec: Spec, kind: str) -> None:
    case = build(spec)
    record, linktype = link(kind, case.pkt)
    batch = decode_one(record, linktype)
    got = fields(batch)
    assert got["decode_error"] == 0
    assert {k: got[k] for k in case.expect} == case.expect
    assert got["payload_len"] == len(case.payload)
    o, n = got["payload_offset"], got["payload_caplen"]
    assert n == len(case.payload)
    assert (o == -1) if not n else record[o : o + n] == case.payload


@SETTINGS
@given(spec=specs, kind=st.sampled_from(LINKS), data=st.data())
def test_any_truncation_is_reported_and_keeps_the_rest(
    spec: Spec, kind: str, data: st.DataObject
) -> None:
    case = build(spec)
    record, linktype = link(kind, case.pkt)
    headers_end = len(record) - len(case.payload)
    cut = data.draw(st.integers(0, len(record)), label="cut")
    got = fields(decode_one(record[:cut], linktype, junk=bytes(range(256)) * 2))
    assert (got["decode_error"] == 0) == (cut >= headers_end)
    if cut >= headers_end:
        full = fields(decode_one(record, linktype))
        assert got["payload_caplen"] == cut - headers_end
        skip = {"payload_caplen", "payload_offset"}
        assert {k: v for k, v in got.items() if k not in skip} == {
            k: v for k, v in full.items() if k not in skip
        }


@SETTINGS
@given(
    record=st.binary(max_size=120),
    linktype=st.sampled_from(LINKTYPES),
    junk=st.binary(min_size=1, max_size=64),
)
def test_random_bytes_never_raise_nor_read_past_caplen(
    record: bytes, linktype: int, junk: bytes
) -> None:
    plain = fields(decode_one(record, linktype))
    assert fields(decode_one(record, linktype, junk)) == plain
    assert fields(decode_one(record, linktype, bytes(64) + b"\xff" * 64)) == plain


@SETTINGS
@given(
    records=st.lists(
        st.tuples(st.binary(max_size=80), st.sampled_from(LINKTYPES)), min_size=1, max_size=8
    )
)
def test_records_in_a_chunk_decode_independently(records: list[tuple[bytes, int]]) -> None:
    batch = decode(chunk([r for r, _ in records], [lt for _, lt in records]))
    start = 0
    for i, (record, linktype) in enumerate(records):
        alone = fields(decode_one(record, linktype))
        together = fields(batch, i)
        if together["payload_offset"] >= 0:
            together["payload_offset"] -= start
        assert together == alone
        start += len(record)


# The kernel is plain Python under NUMBA_DISABLE_JIT: there, a read past the end
# of the buffer raises IndexError and a value too big for its column raises
# OverflowError. Every record sits alone at the very end of its own buffer.
BOUNDS_SCRIPT = textwrap.dedent(
    """
    import struct
    import numpy as np
    from scapy.layers.inet import IP, TCP, UDP, ICMP, IPOption_Router_Alert
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrFragment
    from scapy.layers.l2 import Dot1Q, Ether
    from teiten.capture.source import RecordChunk
    from teiten.decode import decode, kernel

    assert not hasattr(kernel.decode_records, "targetoptions"), "the kernel is compiled"
    try:
        kernel._u16(np.zeros(1, np.uint8), 0)
        raise SystemExit("reads past the end do not raise")
    except IndexError:
        pass

    def one(record, linktype):
        n = len(record)
        data = np.frombuffer(record, np.uint8).copy()
        return decode(RecordChunk(data, np.zeros(1, np.int64), np.array([n], np.uint32),
                      np.array([n], np.uint32), np.zeros(1, np.int64),
                      np.array([linktype], np.uint16)))

    m = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    a, b, a6, b6 = "203.0.113.1", "192.0.2.1", "2001:db8::1", "2001:db8::2"
    pkts = [
        IP(src=a, dst=b, options=[IPOption_Router_Alert()]) / TCP(options=[("MSS", 1)]),
        IP(src=a, dst=b) / UDP() / b"x", IP(src=a, dst=b) / ICMP(),
        IPv6(src=a6, dst=b6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment() / TCP(),
    ]
    records = []
    for p in pkts:
        body = bytes(p)
        v6 = body[0] >> 4 == 6
        sll = struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x86DD if v6 else 0x0800)
        records += [(bytes(Ether(**m) / Dot1Q() / p), 1), (body, 101), (sll + body, 113),
                    (struct.pack(">I", 24 if v6 else 2) + body, 108)]
    rng = np.random.default_rng(7)
    count = 0
    for record, linktype in records:
        for cut in range(len(record) + 1):
            one(record[:cut], linktype)
            count += 1
    for _ in range(300):
        size = int(rng.integers(0, 100))
        for linktype in (0, 1, 12, 101, 108, 113, 228, 229, 276, 6, 7, 9, 10, 50, 51, 104,
                         105, 107, 129, 149, 226, 239, 258):
            one(rng.integers(0, 256, size, dtype=np.uint8).tobytes(), linktype)
            count += 1
        for ethertype in (0x8847, 0x8864, 0x88E5, 0x8926, 0x8903, 0x894F, 0x0020):
            head = bytes(12) + ethertype.to_bytes(2, "big")
            one(head + rng.integers(0, 256, size, dtype=np.uint8).tobytes(), 1)
            count += 1
    print(count)
    """
)


def test_pure_python_kernel_never_reads_out_of_bounds() -> None:
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run(
        [sys.executable, "-c", BOUNDS_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 3000
