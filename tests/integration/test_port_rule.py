"""One port rule: ports, the series view, trend and detect's matrix count the same packets.

A packet counts for its destination port when the port was captured, even if
the TCP header is cut short (snaplen 64); a non-first fragment or a packet
cut before its port counts for no port (no ``0/udp`` row); an ICMP non-first
fragment is not backscatter.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from teiten.analysis.series import parse_ports, trend
from teiten.analysis.series_matrix import daily_matrix
from teiten.analysis.window import resolve_window
from teiten.app.engine import open_engine, run_query
from teiten.app.ingest import ingest
from teiten.app.traffic import port_ranking
from teiten.config import Settings

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pcap"
MIRAI = CORPUS / "suricata-verify" / "mac-eve-packet" / "test.pcap"
T0 = 1_700_000_000
SCANNERS = [f"198.51.100.{i}" for i in range(1, 9)]
DARK = "192.0.2.7"


def pcap(frames: list[tuple[bytes, int]]) -> bytes:
    """A microsecond pcap of ``(bytes, captured length)`` records, one second apart."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, (frame, caplen) in enumerate(frames):
        cut = frame[:caplen]
        out.append(struct.pack("<IIII", T0 + i, 0, len(cut), len(frame)) + cut)
    return b"".join(out)


def eth(pkt: Packet) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt)


def frames() -> list[tuple[bytes, int]]:
    out: list[tuple[bytes, int]] = []
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]
    for k, src in enumerate(SCANNERS):
        syn = eth(IP(src=src, dst=DARK) / TCP(sport=40000 + k, dport=23, flags="S", options=opts))
        out.append((syn, 64))  # snaplen 64: TCP options cut, the port is there
        out.append((syn, 14 + 20 + 6))  # even the flags are cut: the port still counts
        out.append((syn, 14 + 20 + 2))  # cut before the destination port: no port
        later = IP(src=src, dst=DARK, proto=17, flags="MF", frag=185) / Raw(bytes(100))
        out.append((eth(later), 200))  # non-first UDP fragment: no port, not 0/udp
        ping = IP(src=src, dst=DARK, proto=1, frag=185) / Raw(bytes(30))
        out.append((eth(ping), 200))  # non-first ICMP fragment: not an echo reply
        out.append((eth(IP(src=src, dst=DARK) / UDP(sport=5353, dport=53) / b"q"), 200))
    out.append((eth(IP(src=SCANNERS[0], dst=DARK) / ICMP(type=0)), 200))  # a real echo reply
    return out


@pytest.fixture
def stored(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap(frames()))
    ingest([path], settings)
    return settings


def test_ports_series_trend_and_detect_count_the_same(stored: Settings) -> None:
    ranked = {r["port"]: r["packets"] for r in port_ranking(stored, top=50)}
    assert ranked == {"23/tcp": 16, "53/udp": 8}
    series = run_query(stored, "SELECT proto, port, sum(packets) AS n FROM series GROUP BY 1, 2")
    assert sorted(series.to_pylist(), key=str) == sorted(
        [{"proto": "tcp", "port": 23, "n": 16}, {"proto": "udp", "port": 53, "n": 8}], key=str
    )
    with open_engine(stored) as engine:
        window = resolve_window(engine, None, None, "UTC")
        assert window is not None
        rows = trend(engine, parse_ports(["23/tcp", "0/udp", "0/tcp"]), window)
        by_port: dict[str, int] = {}
        for r in rows:
            by_port[r["port"]] = by_port.get(r["port"], 0) + r["packets"]
        assert by_port == {"23/tcp": 16, "0/udp": 0, "0/tcp": 0}
        matrix = daily_matrix(engine, window, "JP", min_sources=1)
        assert {str(p) for p in matrix.ports} == {"23/tcp", "53/udp"}
        assert matrix.packets.sum() == 24


def test_fragments_have_their_own_category_and_are_not_backscatter(stored: Settings) -> None:
    sql = (
        "SELECT decode_error, proto, count(*) AS n, "
        "count(*) FILTER (WHERE list_contains(fingerprints, 'backscatter')) AS backscatter "
        "FROM packets GROUP BY 1, 2"
    )
    got = {
        (r["decode_error"], r["proto"]): (r["n"], r["backscatter"])
        for r in run_query(stored, sql).to_pylist()
    }
    assert got[("fragment", "udp")] == (8, 0)
    assert got[("fragment", "icmp")] == (8, 0)
    assert got[("truncated_ports", "tcp")] == (8, 0)
    assert got[(None, "icmp")] == (1, 1)


@pytest.mark.skipif(not MIRAI.is_file(), reason="the shared corpus is not present")
def test_real_mirai_syns_count_for_telnet(settings: Settings) -> None:
    ingest([MIRAI], settings)
    ranked = {r["port"]: r["packets"] for r in port_ranking(settings, top=50)}
    assert ranked.get("23/tcp") == 2
