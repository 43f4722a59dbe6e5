"""Tests that truth.json agrees with the pcap it describes, recounted independently with dpkt."""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dpkt
import iptocc
import pytest

from teiten.simulate import SimulationResult, simulate


@dataclass(frozen=True)
class Pkt:
    ts: float
    src: str
    dst: str
    proto: int
    ttl: int
    ip_id: int
    sport: int
    dport: int
    seq: int
    flags: int
    win: int
    opts: bytes
    raw_ip: bytes


def read(path: Path) -> Iterator[Pkt]:
    """Every packet of a pcap, decoded by dpkt (not by teiten)."""
    with path.open("rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            l4 = ip.data
            tcp = isinstance(l4, dpkt.tcp.TCP)
            icmp = isinstance(l4, dpkt.icmp.ICMP)
            yield Pkt(
                ts, socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst), ip.p, ip.ttl, ip.id,
                l4.type if icmp else l4.sport, l4.code if icmp else l4.dport,
                l4.seq if tcp else 0, l4.flags if tcp else 0, l4.win if tcp else 0,
                l4.opts if tcp else b"", bytes(buf[14:]),
            )  # fmt: skip


@pytest.fixture(scope="module", params=[("smoke", 1.0), ("npa-2017", 0.02)], ids=str)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        SimulationResult, dict[str, Any], list[Pkt]]:  # fmt: skip
    name, scale = request.param
    result = simulate(name, tmp_path_factory.mktemp(name), scale=scale, seed=3)
    truth = json.loads(result.truth.read_text())
    return result, truth, list(read(result.pcap))


Run = tuple[SimulationResult, dict[str, Any], list[Pkt]]


def _segment(cc: str | None, home: str) -> str:
    return "domestic" if cc == home else "foreign" if cc else "unknown"


def _key(p: Pkt, tracked: set[str]) -> str:
    proto = {6: "tcp", 17: "udp"}.get(p.proto)
    if proto is None:
        return "icmp"
    key = f"{p.dport}/{proto}"
    return key if key in tracked else f"other/{proto}"


def test_series_equals_a_recount_of_the_pcap(run: Run) -> None:
    result, truth, packets = run
    net = ipaddress.IPv4Network(truth["sensor_networks"][0])
    inbound = [p for p in packets if ipaddress.IPv4Address(p.src) not in net]
    srcs = sorted({p.src for p in inbound})
    seg = {s: _segment(c, "JP") for s, c in zip(srcs, iptocc.country_code(srcs), strict=True)}
    tracked = set(truth["keys"]) - {"other/tcp", "other/udp", "icmp"}
    count: Counter[tuple[str, str, str]] = Counter()
    sources: defaultdict[tuple[str, str, str], set[str]] = defaultdict(set)
    for p in inbound:
        day = datetime.fromtimestamp(float(p.ts), UTC).date().isoformat()
        k = (day, _key(p, tracked), seg[p.src])
        count[k] += 1
        sources[k].add(p.src)
    expect = {(r["date"], r["port"], r["segment"]): (r["packets"], r["sources"])
              for r in truth["series"]}  # fmt: skip
    got = {k: (n, len(sources[k])) for k, n in count.items()}
    assert got == expect
    assert truth["packets"]["total"] == len(packets) == result.packets
    assert truth["packets"]["inbound"] == len(inbound)


def test_packets_lie_in_the_period_and_sessions_start_with_their_syn(run: Run) -> None:
    _, truth, packets = run
    first = datetime.fromisoformat(truth["period"]["start"]).timestamp()
    last = datetime.fromisoformat(truth["period"]["end"]).timestamp() + 1
    assert first <= float(packets[0].ts) and float(packets[-1].ts) < last
    syn_ts = {(p.src, p.sport, p.dst, p.dport): round(float(p.ts) * 1e6)
              for p in packets if p.proto == 6 and p.flags == dpkt.tcp.TH_SYN}  # fmt: skip
    for s in truth["sessions"]:
        assert syn_ts[(s["src"], s["sport"], s["dst"], s["dport"])] == s["start_ns"] // 1000
        assert s["start"].startswith(
            datetime.fromtimestamp(s["start_ns"] // 1000 / 1e6, UTC).strftime("%Y-%m-%dT%H:%M")
        )


def test_sources_are_public_and_countries_match_segments(run: Run) -> None:
    _, truth, packets = run
    net = ipaddress.IPv4Network(truth["sensor_networks"][0])
    spoofed = set(truth["spoofed_sources"])
    srcs = sorted({p.src for p in packets if ipaddress.IPv4Address(p.src) not in net})
    ccs = dict(zip(srcs, iptocc.country_code(srcs), strict=True))
    for src, cc in ccs.items():
        addr = ipaddress.IPv4Address(src)
        assert (src in spoofed) == (not addr.is_global), src
        assert (cc is None) == (src in spoofed), src
    by_segment = Counter(_segment(c, "JP") for c in ccs.values())
    assert by_segment == Counter({k: v for k, v in truth["sources"]["by_segment"].items() if v})
    foreign = Counter(c for c in ccs.values() if c and c != "JP")
    assert {"CN", "US", "RU", "BR", "KR"} <= set(foreign)
    assert all(ipaddress.IPv4Address(p.dst) in net for p in packets
               if ipaddress.IPv4Address(p.src) not in net)  # fmt: skip


def _inet_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_every_checksum_is_valid(run: Run) -> None:
    _, _, packets = run
    for p in packets:
        ihl = (p.raw_ip[0] & 15) * 4
        assert _inet_sum(p.raw_ip[:ihl]) == 0xFFFF
        l4 = p.raw_ip[ihl:]
        if p.proto == 1:
            assert _inet_sum(l4) == 0xFFFF
        else:
            pseudo = p.raw_ip[12:20] + struct.pack(">BBH", 0, p.proto, len(l4))
            assert _inet_sum(pseudo + l4) == 0xFFFF


def test_fingerprint_counts_match_header_traits(run: Run) -> None:
    _, truth, packets = run
    syns = [p for p in packets if p.proto == 6 and p.flags == dpkt.tcp.TH_SYN]
    dst_int = {p.dst: struct.unpack(">I", socket.inet_aton(p.dst))[0] for p in syns}
    mirai = [p for p in syns if p.seq == dst_int[p.dst]]
    assert all(p.ttl <= 64 and p.opts == b"" and p.dport in (23, 2323) for p in mirai)
    zmap = [p for p in syns if p.ip_id == 54321]
    assert all(p.ttl > 200 and p.win == 65535 and p.opts == b"" for p in zmap)
    masscan = [p for p in syns if p.ip_id == (dst_int[p.dst] ^ p.dport ^ p.seq) & 0xFFFF]
    assert all(p.ttl > 200 and p.win == 1024 for p in masscan)
    nmap = [p for p in syns if p.win == 1024 and p.opts == b"\x02\x04\x05\xb4"]
    syn_ack = dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK
    scatter = [
        p for p in packets
        if (p.proto == 6 and p.flags & dpkt.tcp.TH_RST)
        or (p.proto == 6 and p.flags == syn_ack and p.sport not in (23, 52869, 37215))
        or (p.proto == 1 and p.sport == 3)
    ]  # fmt: skip
    fp = truth["fingerprints"]
    assert fp["mirai"]["packets"] == len(mirai) > 0
    assert fp["zmap"]["packets"] == len(zmap) > 0
    assert fp["masscan"]["packets"] == len(masscan) > 0
    assert fp["nmap_syn"]["packets"] == len(nmap) > 0
    assert fp["backscatter"]["packets"] == len(scatter) > 0
    assert fp["mirai"]["sources"] == len({p.src for p in mirai})


def test_mirai_bots_keep_one_port_and_window(run: Run) -> None:
    _, _, packets = run
    seen: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for p in packets:
        if p.proto == 6 and p.flags == dpkt.tcp.TH_SYN and p.seq == struct.unpack(
                ">I", socket.inet_aton(p.dst))[0]:  # fmt: skip
            seen[p.src].add((p.sport, p.win))
    assert seen and all(len(v) == 1 for v in seen.values())
