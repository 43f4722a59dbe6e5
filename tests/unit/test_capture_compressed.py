"""Tests for compressed captures and the byte layer (teiten.capture.compressed)."""

from __future__ import annotations

import gzip
import io
import lzma
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from teiten.capture import open_source
from teiten.capture.compressed import (
    ByteStream,
    Window,
    ZstdInflater,
    compression_of,
    read_head,
)
from teiten.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data"
T0 = 1_700_000_000_000_000_000

Rec = tuple[int, int, bytes, int]


def pcap(n: int, size: int = 40) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]
    for i in range(n):
        data = bytes([i % 256]) * size
        out.append(struct.pack("<IIII", T0 // 10**9 + i, i, size, size) + data)
    return b"".join(out)


def pcapng(n: int) -> bytes:
    def block(t: int, body: bytes) -> bytes:
        return struct.pack("<II", t, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)), block(1, bytes(8))]
    out += [block(6, struct.pack("<IIIII", 0, 0, i, 4, 4) + b"pkt!") for i in range(n)]
    return b"".join(out)


def read(path: Path, chunk_bytes: int = 1 << 20) -> tuple[list[Rec], dict[str, int]]:
    src = open_source(path, chunk_bytes=chunk_bytes)
    out: list[Rec] = []
    for c in src.chunks():
        for i in range(len(c)):
            o, n = int(c.offset[i]), int(c.caplen[i])
            out.append((int(c.ts_ns[i]), int(c.origlen[i]), c.data[o : o + n].tobytes(), 0))
    return out, dict(src.stats.skipped)


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gz": lambda b: gzip.compress(b, mtime=0),
    # with a checksum, as the zstd tool writes by default: without one, corrupt
    # zstd content that still parses cannot be told from the real thing
    "zst": lambda b: zstandard.ZstdCompressor(write_checksum=True).compress(b),
    "xz": lzma.compress,
}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
@pytest.mark.parametrize("chunk", [50, 1 << 20])
def test_compressed_pcap_same_records(tmp_path: Path, ext: str, chunk: int) -> None:
    plain = pcap(300)
    want = read(write(tmp_path, "p.pcap", plain))
    assert len(want[0]) == 300
    assert read(write(tmp_path, f"p.pcap.{ext}", COMPRESSORS[ext](plain)), chunk) == want


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_stats_bytes_count_file_bytes_for_progress(tmp_path: Path, ext: str) -> None:
    path = write(tmp_path, "p", COMPRESSORS[ext](pcap(3000)))
    src = open_source(path, chunk_bytes=4096)
    seen = [src.stats.bytes for _ in src.chunks()]
    assert seen == sorted(seen) and 0 < seen[0] <= path.stat().st_size
    assert src.stats.bytes == path.stat().st_size and src.stats.records == 3000


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_compressed_pcapng(tmp_path: Path, ext: str) -> None:
    got, skipped = read(write(tmp_path, "p.bin", COMPRESSORS[ext](pcapng(50))), 64)
    assert [g[2] for g in got] == [b"pkt!"] * 50 and not skipped


def test_data_files_compressed_variants_agree() -> None:
    want = read(DATA / "eth_ipv4.pcap")
    for ext in ("gz", "zst", "xz"):
        assert read(DATA / f"eth_ipv4.pcap.{ext}", chunk_bytes=100) == want


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_concatenated_streams(tmp_path: Path, ext: str) -> None:
    plain = pcap(40)
    packed = COMPRESSORS[ext](plain[:500]) + COMPRESSORS[ext](plain[500:])
    assert read(write(tmp_path, "cat", packed)) == read(write(tmp_path, "plain", plain))


@pytest.mark.parametrize("ext", ["gz", "xz"])
def test_truncated_compressed_stream(tmp_path: Path, ext: str) -> None:
    plain = pcap(2000, size=200)
    packed = COMPRESSORS[ext](plain)
    got, skipped = read(write(tmp_path, "cut", packed[: len(packed) // 2]), 4096)
    assert 0 < len(got) < 2000
    assert skipped["truncated_compressed"] == 1
    assert set(skipped) <= {"truncated_compressed", "truncated_record"}


def test_truncated_zstd_is_counted(tmp_path: Path) -> None:
    plain = pcap(2000, size=200)
    packed = zstandard.ZstdCompressor().compress(plain)
    got, skipped = read(write(tmp_path, "cut.zst", packed[: len(packed) // 2]), 4096)
    assert 0 < len(got) < 2000
    assert skipped["truncated_compressed"] == 1
    assert set(skipped) <= {"truncated_compressed", "truncated_record"}


def record_ends(plain: bytes) -> list[int]:
    """Where each record of a little-endian pcap ends."""
    ends, pos = [], 24
    while pos + 16 <= len(plain):
        pos += 16 + struct.unpack_from("<I", plain, pos + 8)[0]
        ends.append(pos)
    return ends


def available(ext: str, packed: bytes) -> int:
    """Content bytes a streaming decompressor gets out of ``packed`` (a cut stream)."""
    if ext == "gz":
        return len(zlib.decompressobj(wbits=31).decompress(packed))
    if ext == "xz":
        return len(lzma.LZMADecompressor().decompress(packed))
    return len(zstandard.ZstdDecompressor().decompressobj().decompress(packed))


def zstd_blocks(plain: bytes, size: int) -> bytes:
    """One zstd frame with a block per ``size`` bytes of content (a real stream's shape)."""
    packer = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    pieces = [plain[i : i + size] for i in range(0, len(plain), size)]
    flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
    return b"".join(packer.compress(p) + packer.flush(flush) for p in pieces) + packer.flush()


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_cut_compressed_keeps_every_whole_record(tmp_path: Path, ext: str) -> None:
    original = (DATA / "eth_ipv4.pcap").read_bytes()
    plain = original + original[24:] * 7  # 8 × the records, to span several blocks
    ends = record_ends(plain)
    packed = COMPRESSORS[ext](plain) if ext != "zst" else zstd_blocks(plain, 300)
    tested = 0
    for cut in range(1, len(packed)):
        content = available(ext, packed[:cut])
        if content < 32:  # not even a capture header: open_source refuses the file
            continue
        path = write(tmp_path, f"cut{cut}", packed[:cut])
        got, skipped = read(path, 512)
        assert len(got) == sum(1 for e in ends if e <= content), cut
        assert skipped["truncated_compressed"] == 1, cut
        tested += 1
    assert tested > len(packed) // 2


def test_zstd_cut_between_frames_is_a_clean_end(tmp_path: Path) -> None:
    plain = pcap(40)
    first = COMPRESSORS["zst"](plain[:500])
    got, skipped = read(write(tmp_path, "frames", first + COMPRESSORS["zst"](plain[500:])))
    assert len(got) == 40 and not skipped
    got, skipped = read(write(tmp_path, "first", first))
    assert skipped == {"truncated_record": 1}


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_corrupt_compressed_stream_never_raises(tmp_path: Path, ext: str) -> None:
    packed = bytearray(COMPRESSORS[ext](pcap(3000, size=100)))
    for i in range(len(packed) // 2, len(packed) // 2 + 64):
        packed[i] ^= 0x5A
    got, skipped = read(write(tmp_path, "bad", bytes(packed)), 1000)
    assert len(got) < 3000
    assert skipped


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_compressed_non_capture_is_input_error(tmp_path: Path, ext: str) -> None:
    path = write(tmp_path, "notes.gz", COMPRESSORS[ext](b"just some text, not packets"))
    with pytest.raises(InputError, match=r"notes\.gz: .* not a pcap or pcapng file inside"):
        open_source(path)


@pytest.mark.parametrize("head", [b"\x1f\x8b", b"\x1f\x8b\x08\x00garbage", b"\xfd7zXZ\x00\x00"])
def test_broken_compressed_header_is_input_error(tmp_path: Path, head: bytes) -> None:
    with pytest.raises(InputError, match="cannot decompress"):
        open_source(write(tmp_path, "broken", head))


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_compressed_empty_content_has_no_records(tmp_path: Path, ext: str) -> None:
    got, skipped = read(write(tmp_path, "empty", COMPRESSORS[ext](b"")))
    assert got == [] and not skipped


def test_compression_of() -> None:
    assert compression_of(b"\x1f\x8b\x08") == "gzip"
    assert compression_of(b"\x28\xb5\x2f\xfd") == "zstd"
    assert compression_of(b"\xfd7zXZ\x00") == "xz"
    assert compression_of(b"\xd4\xc3\xb2\xa1") is None


def test_read_head_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_head(tmp_path / "missing", "missing")
    with pytest.raises(InputError, match="is a directory"):
        read_head(tmp_path, "dir")
    assert read_head(write(tmp_path, "x.gz", gzip.compress(b"abc")), "x.gz") == (b"abc", "gzip")


def test_window_carries_grows_and_skips(tmp_path: Path) -> None:
    path = write(tmp_path, "bytes", bytes(range(256)) * 4)
    with ByteStream(path, "bytes") as stream:
        win = Window(stream, 10)
        assert win.ensure(4) and win.buf[:4].tolist() == [0, 1, 2, 3]
        win.start = 8
        assert win.ensure(5)  # carries bytes 8, 9 to the front, refills
        assert win.buf[win.start : win.start + 5].tolist() == [8, 9, 10, 11, 12]
        assert win.ensure(100) and win.buf.shape[0] >= 100  # grown once
        assert win.buf[win.start] == 8
        assert win.skip(300)  # past the buffer
        assert win.ensure(1) and win.buf[win.start] == (8 + 300) % 256
        assert not win.skip(10_000)
        assert not win.ensure(1)


def test_zstd_skippable_frames_and_bounded_steps(tmp_path: Path) -> None:
    plain = pcap(300)
    skippable = struct.pack("<II", 0x184D2A50, 5) + b"hello"
    packed = COMPRESSORS["zst"](plain[:500]) + skippable + COMPRESSORS["zst"](plain[500:])
    assert read(write(tmp_path, "skip", packed)) == read(write(tmp_path, "plain", plain))
    inflater = ZstdInflater(io.BytesIO(zstandard.ZstdCompressor().compress(bytes(20 << 20))))
    view = memoryview(bytearray(64 << 20))
    sizes = []
    while got := inflater.readinto(view):
        sizes.append(got)
    assert sum(sizes) == 20 << 20
    assert max(sizes) <= 128 << 10  # one block at a time, never the whole expansion


def test_gzip_members_with_zero_padding(tmp_path: Path) -> None:
    plain = pcap(40)
    packed = COMPRESSORS["gz"](plain[:700]) + bytes(16) + COMPRESSORS["gz"](plain[700:])
    assert read(write(tmp_path, "pad", packed)) == read(write(tmp_path, "plain", plain))
