"""Tests for the pcapng reader (teiten.capture.pcapng)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.capture import open_source
from teiten.capture.pcapng import PcapngSource
from teiten.capture.source import ReadStats
from teiten.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data"
T0_US = 1_700_000_000_123_456
Rec = tuple[int, int, bytes, int]  # ts_ns, origlen, captured bytes, linktype


def _pad(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


class Ng:
    """A tiny pcapng writer for tests, in one byte order."""

    def __init__(self, big: bool = False) -> None:
        self.e = ">" if big else "<"

    def block(self, btype: int, body: bytes) -> bytes:
        n = 12 + len(_pad(body))
        return struct.pack(self.e + "II", btype, n) + _pad(body) + struct.pack(self.e + "I", n)

    def shb(self, major: int = 1) -> bytes:
        return self.block(0x0A0D0D0A, struct.pack(self.e + "IHHq", 0x1A2B3C4D, major, 0, -1))

    def idb(self, linktype: int, snaplen: int = 0, opts: Sequence[tuple[int, bytes]] = ()) -> bytes:
        body = struct.pack(self.e + "HHI", linktype, 0, snaplen)
        if opts:
            body += b"".join(struct.pack(self.e + "HH", c, len(v)) + _pad(v) for c, v in opts)
            body += bytes(4)
        return self.block(1, body)

    def epb(self, ifid: int, ts: int, data: bytes, origlen: int | None = None) -> bytes:
        o = len(data) if origlen is None else origlen
        head = struct.pack(self.e + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), o)
        return self.block(6, head + data)

    def opb(self, ifid: int, ts: int, data: bytes) -> bytes:
        head = struct.pack(
            self.e + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)
        )
        return self.block(2, head + data)

    def spb(self, data: bytes, origlen: int | None = None) -> bytes:
        return self.block(
            3, struct.pack(self.e + "I", len(data) if origlen is None else origlen) + data
        )

    def tsresol(self, value: int) -> tuple[int, bytes]:
        return (9, bytes([value]))

    def tsoffset(self, seconds: int) -> tuple[int, bytes]:
        return (14, struct.pack(self.e + "q", seconds))


def read(path: Path, chunk_bytes: int = 1 << 20) -> tuple[list[Rec], ReadStats]:
    src = open_source(path, chunk_bytes=chunk_bytes)
    out: list[Rec] = []
    for c in src.chunks():
        for i in range(len(c)):
            o, n = int(c.offset[i]), int(c.caplen[i])
            rec = (
                int(c.ts_ns[i]),
                int(c.origlen[i]),
                c.data[o : o + n].tobytes(),
                int(c.linktype[i]),
            )
            out.append(rec)
    return out, src.stats


def write(tmp_path: Path, data: bytes, name: str = "t.pcapng") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("big", [False, True])
def test_epbs_both_byte_orders(tmp_path: Path, big: bool) -> None:
    ng = Ng(big)
    data = (
        ng.shb()
        + ng.idb(1)
        + b"".join(ng.epb(0, T0_US + i, bytes([i]) * (i + 1)) for i in range(9))
    )
    got, stats = read(write(tmp_path, data))
    assert got == [((T0_US + i) * 1000, i + 1, bytes([i]) * (i + 1), 1) for i in range(9)]
    assert stats.records == 9 and stats.bytes == len(data) and not stats.skipped


@pytest.mark.parametrize(
    ("resol", "offset", "raw", "want_ns"),
    [
        (None, 0, 5_000_001, 5_000_001_000),
        (9, 0, 5_000_001, 5_000_001),
        (3, 0, 5_001, 5_001_000_000),
        (12, 0, 5_000_001_999, 5_000_001),
        (0x80 | 10, 0, 3 * 1024 + 512, 3_500_000_000),
        (0x80 | 40, 0, (7 << 40) + (1 << 39), 7_500_000_000),
        (6, 100, 1, 100_000_001_000),
    ],
)
def test_tsresol_and_tsoffset(
    tmp_path: Path, resol: int | None, offset: int, raw: int, want_ns: int
) -> None:
    ng = Ng()
    opts = [] if resol is None else [ng.tsresol(resol)]
    if offset:
        opts.append(ng.tsoffset(offset))
    got, _ = read(write(tmp_path, ng.shb() + ng.idb(1, opts=opts) + ng.epb(0, raw, b"p")))
    assert [g[0] for g in got] == [want_ns]


def test_mixed_data_file() -> None:
    src = open_source(DATA / "mixed.pcapng")
    assert isinstance(src, PcapngSource)
    got, stats = read(DATA / "mixed.pcapng", chunk_bytes=64)
    base = 1_700_000_000_123_456_789
    assert [g[3] for g in got] == [1, 101, 101, 1, 1]
    assert [g[0] for g in got] == [
        base // 1000 * 1000,
        base + 1_000_001,
        base + 2_000_002,
        base + 2_000_002,  # SPB: the previous packet's time
        (base // 1000 + 3_003) * 1000,
    ]
    assert stats.skipped == {"other_blocks": 2}


def test_data_file_matches_scapy() -> None:
    from scapy.utils import RawPcapNgReader

    got, _ = read(DATA / "mixed.pcapng", chunk_bytes=100)
    with RawPcapNgReader(str(DATA / "mixed.pcapng")) as r:
        want = [(d, m.wirelen, m.linktype) for d, m in r]
    assert [(g[2], g[1], g[3]) for g in got] == want


def test_sections_reset_interfaces_and_byte_order(tmp_path: Path) -> None:
    le, be = Ng(False), Ng(True)
    data = le.shb() + le.idb(1) + le.idb(101) + le.epb(1, 1, b"a")
    data += be.shb() + be.idb(113) + be.epb(0, 2, b"b") + be.epb(1, 3, b"c")
    got, stats = read(write(tmp_path, data))
    assert [(g[2], g[3]) for g in got] == [(b"a", 101), (b"b", 113)]
    assert stats.skipped == {"undefined_interface": 1}


def test_spb_and_opb(tmp_path: Path) -> None:
    ng = Ng(True)
    data = ng.shb() + ng.spb(b"early") + ng.idb(1, snaplen=4) + ng.spb(b"0123456789", 10)
    data += ng.opb(0, 7, b"obsolete") + ng.spb(b"xy")
    got, stats = read(write(tmp_path, data))
    assert got == [(0, 10, b"0123", 1), (7000, 8, b"obsolete", 1), (7000, 2, b"xy", 1)]
    assert stats.skipped == {"undefined_interface": 1}


def test_other_blocks_counted_and_skipped(tmp_path: Path) -> None:
    ng = Ng()
    others = ng.block(4, b"\x00" * 8) + ng.block(5, bytes(12)) + ng.block(0x80000001, b"custom")
    data = ng.shb() + others + ng.idb(1) + ng.epb(0, 1, b"x") + ng.block(0x0BAD, b"")
    got, stats = read(write(tmp_path, data), chunk_bytes=20)
    assert len(got) == 1 and stats.skipped == {"other_blocks": 4}


@pytest.mark.parametrize(
    "bad",
    [
        struct.pack("<II", 6, 30) + bytes(22),  # length not a multiple of 4
        struct.pack("<II", 6, 8),  # shorter than 12
        struct.pack("<III", 6, 12, 16),  # trailing length differs
        struct.pack("<II", 1, 18) + bytes(10),  # IDB, bad length
        struct.pack("<III", 0x0A0D0D0A, 28, 0x11111111) + bytes(16),  # SHB, bad byte order
        Ng().shb(major=2),
    ],
)
def test_bad_block_stops_and_keeps_earlier(tmp_path: Path, bad: bytes) -> None:
    ng = Ng()
    good = ng.shb() + ng.idb(1) + ng.epb(0, 1, b"one") + ng.epb(0, 2, b"two")
    got, stats = read(write(tmp_path, good + bad + ng.epb(0, 3, b"after")), chunk_bytes=40)
    assert [g[2] for g in got] == [b"one", b"two"]
    assert stats.skipped == {"bad_block": 1}


def test_packet_block_inconsistent_with_its_length(tmp_path: Path) -> None:
    ng = Ng()
    liar = ng.block(6, struct.pack("<IIIII", 0, 0, 1, 100, 100) + b"short")
    stub = ng.block(6, b"tiny")
    data = ng.shb() + ng.idb(1) + liar + stub + ng.epb(0, 2, b"ok")
    got, stats = read(write(tmp_path, data))
    assert [g[2] for g in got] == [b"ok"]
    assert stats.skipped == {"bad_packet_block": 2}


@pytest.mark.parametrize("cut", [3, 11, 20, 40])
def test_truncated_mid_block(tmp_path: Path, cut: int) -> None:
    ng = Ng()
    data = ng.shb() + ng.idb(1) + ng.epb(0, 1, b"one") + ng.epb(0, 2, b"x" * 40)
    got, stats = read(write(tmp_path, data[: len(data) - 60 + cut]), chunk_bytes=16)
    assert [g[2] for g in got] == [b"one"]
    assert stats.skipped == {"truncated_record": 1}


def test_block_larger_than_chunk_and_chunk_invariance(tmp_path: Path) -> None:
    ng = Ng()
    big = bytes(range(256)) * 300
    data = ng.shb() + ng.idb(1, opts=[ng.tsresol(9)]) + ng.epb(0, 5, b"a" * 33) + ng.epb(0, 6, big)
    data += b"".join(ng.epb(0, 7 + i, bytes([i]) * i) for i in range(40))
    path = write(tmp_path, data)
    ref = read(path)
    assert ref[0][1][2] == big and len(ref[0]) == 42
    for chunk in (1, 13, 100, 999):
        assert read(path, chunk) == ref


def test_oversized_block_is_stepped_over(tmp_path: Path) -> None:
    ng = Ng()
    size = (64 << 20) + 16
    path = tmp_path / "huge.pcapng"
    with path.open("wb") as f:
        f.write(ng.shb() + ng.idb(1) + ng.epb(0, 1, b"before"))
        f.write(struct.pack("<II", 0x80000002, size))
        f.seek(size - 12, 1)  # sparse
        f.write(struct.pack("<I", size) + ng.epb(0, 2, b"after"))
    got, stats = read(path)
    assert [g[2] for g in got] == [b"before", b"after"]
    assert stats.skipped == {"oversized_block": 1}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (Ng().shb()[:20], "truncated pcapng section header"),
        (struct.pack("<III", 0x0A0D0D0A, 28, 0x12345678) + bytes(16), "byte-order magic"),
        (struct.pack("<III", 0x0A0D0D0A, 30, 0x1A2B3C4D) + bytes(16), "section header length"),
    ],
)
def test_bad_first_section_header_is_input_error(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_source(write(tmp_path, data))


def test_section_header_only(tmp_path: Path) -> None:
    got, stats = read(write(tmp_path, Ng(True).shb()))
    assert got == [] and not stats.skipped


# (interface, time in ns that int64 can hold, bytes)
_packets = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2**63 - 1), st.binary(max_size=200))
)


@settings(max_examples=60, deadline=None)
@given(pkts=_packets, big=st.booleans(), chunk=st.integers(1, 3000))
def test_roundtrip_property(
    tmp_path_factory: pytest.TempPathFactory,
    pkts: list[tuple[int, int, bytes]],
    big: bool,
    chunk: int,
) -> None:
    ng = Ng(big)
    ifaces = [(1, 6), (101, 9), (113, 3)]  # linktype, tsresol
    data = ng.shb() + b"".join(ng.idb(lt, opts=[ng.tsresol(r)]) for lt, r in ifaces)
    unit = [1000, 1, 1_000_000]  # ns per tick of each interface
    data += b"".join(ng.epb(i, ns // unit[i], d) for i, ns, d in pkts)
    got, stats = read(write(tmp_path_factory.getbasetemp(), data, "prop.pcapng"), chunk)
    want = [(ns // unit[i] * unit[i], len(d), d, ifaces[i][0]) for i, ns, d in pkts]
    assert got == want and not stats.skipped


@settings(max_examples=80, deadline=None)
@given(tail=st.binary(max_size=2000), big=st.booleans(), chunk=st.integers(1, 500))
def test_garbage_after_section_header_only_counts(
    tmp_path_factory: pytest.TempPathFactory, tail: bytes, big: bool, chunk: int
) -> None:
    ng = Ng(big)
    path = write(tmp_path_factory.getbasetemp(), ng.shb() + ng.idb(1) + tail, "junk.pcapng")
    got, stats = read(path, chunk)
    assert stats.records == len(got)
    known = {"bad_block", "truncated_record", "other_blocks", "undefined_interface"}
    assert set(stats.skipped) <= known | {"bad_packet_block", "oversized_block"}


def test_more_packets_than_one_chunk_holds(tmp_path: Path) -> None:
    ng = Ng()
    data = ng.shb() + ng.idb(1) + ng.epb(0, 0, b"x" * 5000)
    data += b"".join(ng.spb(b"") for _ in range(1000))
    path = write(tmp_path, data)
    src = open_source(path, chunk_bytes=100)
    sizes = [len(c) for c in src.chunks()]
    assert max(sizes) <= 100 // 16 + 1 and sum(sizes) == 1001
    assert read(path, 100) == read(path)
