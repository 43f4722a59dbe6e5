"""Tests for the scanner fingerprints (teiten.fingerprint): predicates, bits, registry, docs."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from teiten.capture.source import RecordChunk
from teiten.decode import decode
from teiten.decode.batch import empty_columns
from teiten.fingerprint import FIRST_PLUGIN_BIT, Columns, Fingerprint, registry
from teiten.fingerprint.spoofed import BOGONS4, BOGONS6
from teiten.schema import DECODED

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fingerprints.md"
PINNED = {"mirai": 0, "zmap": 1, "masscan": 2, "nmap_syn": 3, "backscatter": 4}
PINNED |= {"spoofed_suspect": 5}


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


# A plain IPv4 TCP SYN that matches nothing, and its IPv6 twin.
BASE: dict[str, Any] = {"ip_version": 4, "proto": 6, "tcp_flags": 0x02, "tcp_seq": 12345}
BASE |= {"src_ip4": ip4("203.0.113.10"), "dst_ip4": ip4("192.0.2.1"), "ip_id": 1, "ip_ttl": 64}
BASE |= {"src_port": 40000, "dst_port": 23, "tcp_window": 29200, "tcp_options_len": 20}
BASE6 = BASE | {"ip_version": 6, "src_ip4": 0, "dst_ip4": 0, "tcp_options_len": 0}
BASE6 |= {"src_ip6": ip6("2001:db8:1::10"), "dst_ip6": ip6("2001:db8:2::1")}


def columns(*rows: dict[str, Any]) -> Columns:
    """Decoded-style columns holding ``rows`` (each a dict of column → value)."""
    c = empty_columns(len(rows), DECODED)
    for i, r in enumerate(rows):
        for name, value in r.items():
            c[name][i] = np.frombuffer(value, np.uint8) if isinstance(value, bytes) else value
    return c


def hits(name: str, *rows: dict[str, Any]) -> list[bool]:
    """Which rows the fingerprint ``name`` matches, through ``registry.apply``."""
    fp = registry.by_name(name)
    masks = registry.apply(columns(*rows), [fp])
    return [bool(m & fp.mask) for m in masks]


# ------------------------------------------------------------------ the registry


def test_bits_are_pinned() -> None:
    assert {fp.name: fp.bit for fp in registry.BUILTINS} == PINNED


def test_bits_and_names_are_unique_and_reserved() -> None:
    bits = [fp.bit for fp in registry.BUILTINS]
    assert bits == sorted(set(bits))
    assert len({fp.name for fp in registry.BUILTINS}) == len(bits)
    assert max(bits) < FIRST_PLUGIN_BIT
    assert all(fp.source and fp.title for fp in registry.BUILTINS)


def test_apply_ors_the_bits() -> None:
    mirai_and_spoofed = dict(BASE, src_ip4=ip4("10.1.2.3"), tcp_seq=BASE["dst_ip4"])
    fp = registry.apply(columns(mirai_and_spoofed, BASE), registry.BUILTINS)
    assert fp.dtype == np.uint32
    assert fp.tolist() == [0b100001, 0]
    assert registry.names(int(fp[0])) == ["mirai", "spoofed_suspect"]


def test_apply_over_many_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        dict(BASE, ip_id=54321 if i % 3 else 0, src_ip4=ip4("127.0.0.1") * (i % 2))
        for i in range(11)
    ]
    whole = registry.apply(columns(*rows), registry.BUILTINS)
    monkeypatch.setattr(registry, "BLOCK_ROWS", 4)
    assert registry.apply(columns(*rows), registry.BUILTINS).tolist() == whole.tolist()


def test_empty_batch() -> None:
    assert registry.apply(columns(), registry.BUILTINS).shape == (0,)
    for fp in registry.BUILTINS:
        assert fp.predicate(columns()).shape == (0,)


def test_names_and_by_name() -> None:
    assert registry.names(0) == []
    assert registry.names(0b111111) == list(PINNED)
    assert registry.by_name("masscan").bit == 2
    with pytest.raises(KeyError):
        registry.by_name("hajime")


def test_fingerprint_validation() -> None:
    with pytest.raises(ValueError, match="bit"):
        Fingerprint("x", 32, "t", "s", lambda c: c["proto"] == 6)
    with pytest.raises(ValueError, match="identifier"):
        Fingerprint("no spaces", 16, "t", "s", lambda c: c["proto"] == 6)


def test_non_ip_rows_match_nothing() -> None:
    c = columns(dict(ip_version=0), dict(ip_version=0, tcp_flags=0x12))
    assert registry.apply(c, registry.BUILTINS).tolist() == [0, 0]


# ------------------------------------------------------------------ mirai


def test_mirai() -> None:
    syn = dict(BASE, tcp_seq=BASE["dst_ip4"])
    assert hits("mirai", syn, dict(syn, tcp_flags=0xC2)) == [True, True]  # ECN bits ignored
    ack_set = dict(syn, tcp_flags=0x12)  # seq == dst but ACK set
    other_seq, udp = dict(syn, tcp_seq=BASE["dst_ip4"] + 1), dict(syn, proto=17)
    ipv6 = dict(BASE6, tcp_seq=0)  # IPv6 rows have dst_ip4 == 0
    assert not any(hits("mirai", ack_set, other_seq, udp, ipv6))


# ------------------------------------------------------------------ zmap


def test_zmap() -> None:
    syn = dict(BASE, ip_id=54321)
    assert hits("zmap", syn) == [True]
    others = [dict(syn, ip_id=54320), dict(syn, tcp_flags=0x12), dict(syn, proto=17)]
    assert not any(hits("zmap", *others, dict(BASE6, ip_id=54321)))


# ------------------------------------------------------------------ masscan


def test_masscan_formula_truncates_to_16_bits() -> None:
    dst, port, seq = ip4("192.0.2.1"), 80, 0xDEADBEEF
    ident = (dst ^ port ^ seq) & 0xFFFF
    syn = dict(BASE, dst_ip4=dst, dst_port=port, tcp_seq=seq, ip_id=ident)
    high_bits_differ = dict(syn, dst_ip4=dst ^ 0xFFFF0000)
    assert hits("masscan", syn, high_bits_differ) == [True, True]
    off_by_one, other_port = dict(syn, ip_id=(ident + 1) & 0xFFFF), dict(syn, dst_port=81)
    ipv6 = dict(BASE6, ip_id=0, dst_port=0, tcp_seq=0)  # 0 == 0 ^ 0 ^ 0, but IPv6
    assert not any(hits("masscan", off_by_one, other_port, dict(syn, tcp_flags=0x12), ipv6))


# ------------------------------------------------------------------ nmap


def test_nmap_syn() -> None:
    nmap = {"tcp_window": 1024, "tcp_options_len": 4, "tcp_mss": 1460}
    probe = BASE | nmap
    windows = [probe | {"tcp_window": w} for w in (1024, 2048, 3072, 4096)]
    assert hits("nmap_syn", *windows, BASE6 | nmap) == [True] * 5
    others = [probe | {"tcp_window": w} for w in (0, 512, 1023, 1025, 2047, 3000, 5120, 65535)]
    others += [probe | {"tcp_mss": 1440}, probe | {"proto": 17}]
    others += [probe | {"tcp_options_len": 8}, probe | {"tcp_flags": 0x12}]
    assert not any(hits("nmap_syn", *others))


CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pcap"
NMAP_SCANS = {"ndpi/default/pcap/synscan.pcap": 1994, "ndpi/default/pcap/tcp_scan.pcapng": 1}
"""Real nmap scans and their raw SYN probes (tshark; see bench/fingerprints.py)."""
CENSYS = [ipaddress.IPv4Network(n) for n in ("162.142.125.0/24", "167.94.138.0/24")]
CENSYS += [ipaddress.IPv4Network(n) for n in ("167.248.133.0/24", "74.120.14.0/24")]
"""Censys' published scanner ranges: their SYNs carry nmap's default header (window 1024)."""


def corpus_columns(path: Path) -> list[Columns]:
    from teiten.capture import open_source

    return [decode(chunk).columns for chunk in open_source(path).chunks()]


def fingerprint_count(path: Path, name: str) -> int:
    fp = registry.by_name(name)
    return sum(int(np.count_nonzero(registry.apply(c, [fp]))) for c in corpus_columns(path))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
def test_nmap_recall_on_real_nmap_scans() -> None:
    found = sum(fingerprint_count(CORPUS / f, "nmap_syn") for f in NMAP_SCANS)
    assert found >= 0.95 * sum(NMAP_SCANS.values())
    assert fingerprint_count(CORPUS / "ndpi/default/pcap/tcp_scan.pcapng", "nmap_syn") == 1


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
def test_connect_scans_are_neither_mirai_nor_nmap() -> None:
    test7 = CORPUS / "slips" / "test7-malicious.pcap"
    assert fingerprint_count(test7, "mirai") == 0
    assert fingerprint_count(test7, "nmap_syn") == 0


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
def test_nmap_matches_nothing_else_in_the_corpus() -> None:
    """Outside the nmap scans, only Censys' scanners (nmap's exact header) match."""
    from teiten.capture.files import expand_paths
    from teiten.errors import TeitenError

    fp = registry.by_name("nmap_syn")
    strays = []
    for path in expand_paths([CORPUS]):
        if any(path.as_posix().endswith(f) for f in NMAP_SCANS):
            continue
        try:
            batches = corpus_columns(path)
        except TeitenError:
            continue
        for c in batches:
            hit = registry.apply(c, [fp]) != 0
            for src in c["src_ip4"][hit].tolist():
                if not any(ipaddress.IPv4Address(src) in n for n in CENSYS):
                    strays.append((path.name, ipaddress.IPv4Address(src)))
    assert strays == []


# ------------------------------------------------------------------ backscatter


def icmp(kind: int, version: int = 4) -> dict[str, Any]:
    base = BASE if version == 4 else BASE6
    return dict(base, proto=1 if version == 4 else 58, src_port=kind, dst_port=0, tcp_flags=0)


def test_backscatter_tcp() -> None:
    replies = [dict(BASE, tcp_flags=f) for f in (0x12, 0x04, 0x14)] + [dict(BASE6, tcp_flags=0x12)]
    assert all(hits("backscatter", *replies))
    others = [dict(BASE, tcp_flags=f) for f in (0x02, 0x10, 0x18)]
    assert not any(hits("backscatter", *others, dict(BASE, proto=17, tcp_flags=4)))


def test_backscatter_icmp() -> None:
    assert all(hits("backscatter", *(icmp(t) for t in (0, 3, 4, 5, 11, 12))))
    assert not any(hits("backscatter", *(icmp(t) for t in (8, 13, 16, 19, 259))))
    assert all(hits("backscatter", *(icmp(t, 6) for t in (1, 2, 3, 4, 129))))
    assert not any(hits("backscatter", *(icmp(t, 6) for t in (0, 5, 128, 135, 257))))
    assert hits("backscatter", dict(BASE, proto=17, src_port=3, tcp_flags=0)) == [False]


# ------------------------------------------------------------------ spoofed


def v4_src(text: str) -> dict[str, Any]:
    return dict(BASE, src_ip4=ip4(text))


def v6_src(text: str) -> dict[str, Any]:
    return dict(BASE6, src_ip6=ip6(text))


@pytest.mark.parametrize("network", BOGONS4)
def test_spoofed_ipv4_bogon_edges(network: str) -> None:
    net = ipaddress.IPv4Network(network)
    first, last = int(net.network_address), int(net.broadcast_address)
    inside = [dict(BASE, src_ip4=first), dict(BASE, src_ip4=last)]
    assert hits("spoofed_suspect", *inside) == [True, True]
    outside = [a for a in (first - 1, last + 1) if 0 <= a < 2**32]
    bogon = [ipaddress.IPv4Network(b) for b in BOGONS4]
    outside = [a for a in outside if not any(ipaddress.IPv4Address(a) in b for b in bogon)]
    assert not any(hits("spoofed_suspect", *(dict(BASE, src_ip4=a) for a in outside)))


def test_spoofed_ipv4() -> None:
    assert hits("spoofed_suspect", v4_src("255.255.255.255"), v4_src("192.0.2.1")) == [True] * 2
    assert not any(hits("spoofed_suspect", v4_src("8.8.8.8"), v4_src("100.128.0.1")))


@pytest.mark.parametrize("network", BOGONS6)
def test_spoofed_ipv6_bogon_edges(network: str) -> None:
    net = ipaddress.IPv6Network(network)
    edges = [v6_src(str(net.network_address)), v6_src(str(net.broadcast_address))]
    assert hits("spoofed_suspect", *edges) == [True, True]


def test_spoofed_ipv6() -> None:
    outside = ["::2", "fbff:ffff::1", "fec0::1", "feff::1", "2001:db8::1", "::ffff:10.0.0.1"]
    assert not any(hits("spoofed_suspect", *(v6_src(a) for a in outside)))
    same = dict(BASE6, src_ip6=BASE6["dst_ip6"])
    assert hits("spoofed_suspect", same, dict(BASE6)) == [True, False]


def test_spoofed_does_not_mix_families() -> None:
    ipv4_zero_v6 = dict(BASE)  # src_ip6 all zero ("::") but an IPv4 row
    ipv6_zero_v4 = dict(BASE6)  # src_ip4 == dst_ip4 == 0 but an IPv6 row
    assert hits("spoofed_suspect", ipv4_zero_v6, ipv6_zero_v4) == [False, False]


# ------------------------------------------------------------------ end to end


def test_decoded_scanner_packets() -> None:
    dst = "192.0.2.77"
    seq = ip4(dst)
    probes = [
        IP(src="203.0.113.1", dst=dst, id=999) / TCP(dport=23, seq=seq, flags="S"),  # mirai
        IP(src="203.0.113.2", dst=dst, id=54321, ttl=255) / TCP(dport=80, flags="S"),  # zmap
        IP(src="203.0.113.3", dst=dst, id=(seq ^ 443 ^ 7) & 0xFFFF)
        / TCP(dport=443, seq=7, flags="S"),
        IP(src="203.0.113.4", dst=dst)
        / TCP(dport=22, flags="S", window=1024, options=[("MSS", 1460)]),
        IP(src="203.0.113.5", dst=dst) / TCP(sport=80, flags="SA"),
        IP(src="10.0.0.1", dst=dst) / TCP(dport=9, flags="S"),
    ]
    records = [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p) for p in probes]
    lens = np.array([len(r) for r in records], np.uint32)
    offset = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    data = np.frombuffer(b"".join(records), np.uint8).copy()
    n = len(records)
    chunk = RecordChunk(
        data, offset, lens, lens.copy(), np.zeros(n, np.int64), np.ones(n, np.uint16)
    )
    fp = registry.apply(decode(chunk).columns, registry.BUILTINS)
    assert [registry.names(int(m)) for m in fp] == [[name] for name in PINNED]


# ------------------------------------------------------------------ plugins


class FakeEntryPoint:
    def __init__(self, name: str, obj: object) -> None:
        self.name, self.value, self.obj = name, f"fake:{name}", obj

    def load(self) -> object:
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


def ttl_one(bit: int = 16, name: str = "ttl_one") -> Fingerprint:
    return Fingerprint(name, bit, "TTL 1", "test", lambda c: c["ip_ttl"] == 1)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> list[FakeEntryPoint]:
    """Entry points the registry will see, and a registry that has loaded none yet."""
    eps: list[FakeEntryPoint] = []
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    monkeypatch.setattr(registry, "_plugins", None)
    monkeypatch.setattr(registry, "_failed", set())
    return eps


def test_plugin_is_loaded_and_applied(plugins: list[FakeEntryPoint]) -> None:
    plugins.append(FakeEntryPoint("ttl", ttl_one()))
    plugins.append(FakeEntryPoint("pair", [ttl_one(17, "a"), ttl_one(18, "b")]))
    assert [fp.name for fp in registry.registered()][-3:] == ["ttl_one", "a", "b"]
    fp = registry.apply(columns(dict(BASE, ip_ttl=1), BASE))
    assert fp.tolist() == [0b111 << 16, 0]
    assert registry.names(int(fp[0])) == ["ttl_one", "a", "b"]
    assert registry.by_name("ttl_one").bit == 16


def test_bad_plugins_are_skipped_with_a_warning(
    plugins: list[FakeEntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    plugins += [
        FakeEntryPoint("broken", ImportError("no module named nowhere")),
        FakeEntryPoint("reserved", ttl_one(bit=6)),
        FakeEntryPoint("clash", ttl_one(bit=20, name="mirai")),
        FakeEntryPoint("junk", "not a fingerprint"),
        FakeEntryPoint("good", ttl_one(bit=20)),
        FakeEntryPoint("same_bit", ttl_one(bit=20, name="other")),
    ]
    with caplog.at_level(logging.WARNING, logger="teiten.fingerprint.registry"):
        names = [fp.name for fp in registry.registered()]
    assert names == [*PINNED, "ttl_one"]
    text = caplog.text
    for word in ("broken", "reserved", "clash", "junk", "same_bit"):
        assert word in text
    assert "good" not in text


def test_failing_plugin_predicate_is_disabled(
    plugins: list[FakeEntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    def boom(c: Columns) -> Any:
        raise RuntimeError("boom")

    plugins += [
        FakeEntryPoint("boom", Fingerprint("boom", 16, "t", "s", boom)),
        FakeEntryPoint("shape", Fingerprint("shape", 17, "t", "s", lambda c: np.ones(3, bool))),
    ]
    with caplog.at_level(logging.WARNING, logger="teiten.fingerprint.registry"):
        fp = registry.apply(columns(dict(BASE, tcp_seq=BASE["dst_ip4"])))
    assert fp.tolist() == [1]
    assert "boom" in caplog.text and "shape" in caplog.text
    assert [f.name for f in registry.registered()] == list(PINNED)


# ------------------------------------------------------------------ docs


def docs_table() -> str:
    lines = ["| bit | name | flags | source |", "|---:|---|---|---|"]
    lines += [f"| {fp.bit} | `{fp.name}` | {fp.title} | {fp.source} |" for fp in registry.BUILTINS]
    return "\n".join(lines)


def test_docs_table_matches_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    begin, end = "<!-- fingerprints:begin -->\n", "\n<!-- fingerprints:end -->"
    table = text[text.index(begin) + len(begin) : text.index(end)]
    assert table == docs_table(), f"update {DOCS.name} with:\n{docs_table()}"
