"""Tests for the classic pcap reader (teiten.capture.pcap)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.capture import open_source
from teiten.capture.pcap import PcapSource
from teiten.capture.source import ReadStats
from teiten.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data"
T0 = 1_700_000_000_123_456_789

Rec = tuple[int, int, bytes, int]  # ts_ns, origlen, captured bytes, linktype


def pcap(
    records: Sequence[tuple[int, bytes]],
    *,
    big: bool = False,
    nano: bool = False,
    snaplen: int = 65535,
    network: int = 1,
) -> bytes:
    """A pcap file; records are (ts_ns, bytes), written whole (origlen = len)."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, network)]
    for ts, data in records:
        sec, frac = divmod(ts, 10**9)
        frac = frac if nano else frac // 1000
        out.append(struct.pack(e + "IIII", sec, frac, len(data), len(data)) + data)
    return b"".join(out)


def read(path: Path, chunk_bytes: int = 1 << 20) -> tuple[list[Rec], ReadStats]:
    src = open_source(path, chunk_bytes=chunk_bytes)
    out: list[Rec] = []
    for c in src.chunks():
        for i in range(len(c)):
            o, n = int(c.offset[i]), int(c.caplen[i])
            out.append(
                (
                    int(c.ts_ns[i]),
                    int(c.origlen[i]),
                    c.data[o : o + n].tobytes(),
                    int(c.linktype[i]),
                )
            )
    return out, src.stats


def write(tmp_path: Path, data: bytes, name: str = "t.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def sample(n: int = 20) -> list[tuple[int, bytes]]:
    return [(T0 + i * 1_000_001_001, bytes([i]) * (20 + 7 * i)) for i in range(n)]


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_byte_orders_and_resolutions(tmp_path: Path, big: bool, nano: bool) -> None:
    recs = sample()
    path = write(tmp_path, pcap(recs, big=big, nano=nano))
    got, stats = read(path)
    unit = 1 if nano else 1000
    assert [g[0] for g in got] == [ts // unit * unit for ts, _ in recs]
    assert [g[2] for g in got] == [d for _, d in recs]
    assert stats.records == len(recs)
    assert stats.bytes == path.stat().st_size
    assert not stats.skipped


def test_linktype_ignores_fcs_bits(tmp_path: Path) -> None:
    got, _ = read(write(tmp_path, pcap(sample(3), network=0x14000000 | 113)))
    assert {g[3] for g in got} == {113}


def test_dtypes_and_header(tmp_path: Path) -> None:
    src = open_source(write(tmp_path, pcap(sample(3), big=True, nano=True, snaplen=1234)))
    assert isinstance(src, PcapSource)
    assert (src.header.big_endian, src.header.nanosecond, src.header.snaplen) == (True, True, 1234)
    chunk = next(iter(src.chunks()))
    assert chunk.offset.dtype == np.int64 and chunk.ts_ns.dtype == np.int64
    assert chunk.caplen.dtype == np.uint32 and chunk.origlen.dtype == np.uint32
    assert chunk.linktype.dtype == np.uint16 and chunk.data.dtype == np.uint8


def test_snaplen_truncated_records_are_normal(tmp_path: Path) -> None:
    got, stats = read(DATA / "snaplen64.pcap")
    assert [len(g[2]) for g in got] == [64, 64, 64]
    assert all(g[1] > 64 for g in got)
    assert not stats.skipped


@pytest.mark.parametrize("chunk", [1, 17, 100, 333])
def test_small_chunks_carry_records_over(tmp_path: Path, chunk: int) -> None:
    path = write(tmp_path, pcap(sample(50)))
    src = open_source(path, chunk_bytes=chunk)
    assert sum(1 for _ in src.chunks()) > 5
    assert read(path, chunk) == read(path, 1 << 20)


def test_record_larger_than_chunk(tmp_path: Path) -> None:
    recs = [(T0, b"a" * 10), (T0 + 1000, bytes(range(256)) * 200), (T0 + 2000, b"z" * 30)]
    path = write(tmp_path, pcap(recs, snaplen=262144))
    got, stats = read(path, chunk_bytes=100)
    assert [g[2] for g in got] == [d for _, d in recs]
    assert not stats.skipped


def test_caplen_above_default_limit_but_within_snaplen(tmp_path: Path) -> None:
    recs = [(T0, b"x" * 300_000)]
    got, stats = read(write(tmp_path, pcap(recs, snaplen=400_000)), chunk_bytes=4096)
    assert len(got) == 1 and not stats.skipped


@pytest.mark.parametrize("cut", [1, 8, 15, 16, 30])
def test_truncated_mid_record(tmp_path: Path, cut: int) -> None:
    recs = sample(5)
    whole = pcap(recs)
    last = 16 + len(recs[-1][1])
    got, stats = read(write(tmp_path, whole[: len(whole) - last + cut]))
    assert [g[2] for g in got] == [d for _, d in recs[:-1]]
    assert stats.skipped == {"truncated_record": 1}


@pytest.mark.parametrize("caplen", [262145, 0xFFFFFFFF])
def test_bad_caplen_stops_and_keeps_earlier(tmp_path: Path, caplen: int) -> None:
    bad = struct.pack("<IIII", 1, 0, caplen, caplen) + b"rest of the file"
    data = pcap(sample(4)) + bad + pcap(sample(2))[24:]
    got, stats = read(write(tmp_path, data), chunk_bytes=64)
    assert len(got) == 4
    assert stats.skipped == {"bad_record_header": 1}


def test_huge_snaplen_still_caps_at_64_mib(tmp_path: Path) -> None:
    bad = struct.pack("<IIII", 1, 0, (64 << 20) + 1, 10)
    got, stats = read(write(tmp_path, pcap(sample(2), snaplen=0xFFFFFFFF) + bad))
    assert len(got) == 2 and stats.skipped == {"bad_record_header": 1}


def test_header_only_and_empty(tmp_path: Path) -> None:
    assert read(write(tmp_path, pcap([]))) == ([], ReadStats(bytes=24))
    got, stats = read(write(tmp_path, b"", "empty.pcap"))
    assert got == [] and stats.records == 0


@pytest.mark.parametrize("size", [4, 10, 23])
def test_truncated_global_header_is_input_error(tmp_path: Path, size: int) -> None:
    path = write(tmp_path, pcap([])[:size])
    with pytest.raises(InputError, match=r"t\.pcap: truncated pcap header"):
        open_source(path)


def test_chunks_twice_resets_stats(tmp_path: Path) -> None:
    src = open_source(write(tmp_path, pcap(sample(7))[:-3]))
    first = [len(c) for c in src.chunks()]
    stats1 = (src.stats.records, dict(src.stats.skipped))
    assert [len(c) for c in src.chunks()] == first
    assert (src.stats.records, dict(src.stats.skipped)) == stats1 == (6, {"truncated_record": 1})


def test_data_files_match_scapy() -> None:
    from scapy.utils import RawPcapReader

    for path in sorted(DATA.glob("*.pcap")):
        got, stats = read(path, chunk_bytes=200)
        with RawPcapReader(str(path)) as r:
            want = [(m.sec, m.usec, m.wirelen, d, r.linktype) for d, m in r]
            unit = 1 if r.nano else 1000
        assert [(ts // 10**9, ts % 10**9 // unit, o, d, lt) for ts, o, d, lt in got] == want
        assert not stats.skipped, path


_records = st.lists(
    st.tuples(st.integers(0, (1 << 32) * 10**9 - 1), st.binary(max_size=300)), max_size=40
)


@settings(max_examples=60, deadline=None)
@given(recs=_records, big=st.booleans(), nano=st.booleans(), chunk=st.integers(1, 2000))
def test_roundtrip_property(
    tmp_path_factory: pytest.TempPathFactory,
    recs: list[tuple[int, bytes]],
    big: bool,
    nano: bool,
    chunk: int,
) -> None:
    path = write(tmp_path_factory.getbasetemp(), pcap(recs, big=big, nano=nano), "prop.pcap")
    got, stats = read(path, chunk)
    unit = 1 if nano else 1000
    assert got == [(ts // unit * unit, len(d), d, 1) for ts, d in recs]
    assert stats.records == len(recs) and not stats.skipped


@settings(max_examples=80, deadline=None)
@given(tail=st.binary(max_size=2000), big=st.booleans(), chunk=st.integers(1, 500))
def test_garbage_after_header_only_counts(
    tmp_path_factory: pytest.TempPathFactory, tail: bytes, big: bool, chunk: int
) -> None:
    path = write(tmp_path_factory.getbasetemp(), pcap([], big=big) + tail, "junk.pcap")
    got, stats = read(path, chunk)
    assert set(stats.skipped) <= {"bad_record_header", "truncated_record"}
    assert sum(stats.skipped.values()) <= 1
    assert stats.records == len(got)


def test_more_records_than_one_chunk_holds(tmp_path: Path) -> None:
    # a big record grows the buffer; then it holds more empty records than the
    # per-chunk arrays (sized for the original chunk_bytes) take at once
    recs = [(T0, b"x" * 5000)] + [(T0 + i, b"") for i in range(1000)]
    path = write(tmp_path, pcap(recs))
    src = open_source(path, chunk_bytes=100)
    sizes = [len(c) for c in src.chunks()]
    assert max(sizes) <= 100 // 16 + 1 and sum(sizes) == 1001
    assert read(path, 100) == read(path)
