"""Read classic libpcap files as chunks of raw records, located by a numba scanner.

The 24-byte global header gives the byte order and timestamp resolution (by
its magic: ``0xa1b2c3d4`` microseconds, ``0xa1b23c4d`` nanoseconds), the
snapshot length and the link type (low 16 bits; the FCS bits above are
ignored). Records are a 16-byte header (seconds, fraction, captured length,
original length) and the captured bytes.

Damage is counted, never raised, in ``stats.skipped``:

* ``bad_record_header``: a captured length above ``max(snaplen, 262144)`` or
  above 64 MiB. Reading the file stops there (what follows cannot be trusted);
  every record before it is kept.
* ``truncated_record``: the file ends inside a record.
* ``truncated_compressed`` / ``corrupt_compressed``: a compressed file's
  stream broke off (see :mod:`teiten.capture.compressed`); records before the
  break are kept. Both readers count these.

This module also holds :class:`RecordArrays`, the preallocated per-record
arrays that the pcapng reader fills the same way.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from teiten.capture.compressed import MAX_RECORD_BYTES, ByteStream, Window, jit
from teiten.capture.source import I64, U8, U16, U32, ReadStats, RecordChunk
from teiten.errors import InputError

HEADER_BYTES = 24
RECORD_HEADER_BYTES = 16
DEFAULT_MAX_CAPLEN = 262144
MAX_RECORDS_PER_CHUNK = 1 << 20

# magic bytes as stored in the file -> (big endian, nanosecond)
MAGICS: dict[bytes, tuple[bool, bool]] = {
    b"\xd4\xc3\xb2\xa1": (False, False),
    b"\xa1\xb2\xc3\xd4": (True, False),
    b"\x4d\x3c\xb2\xa1": (False, True),
    b"\xa1\xb2\x3c\x4d": (True, True),
}

# scanner status codes
NEED_MORE = 0
FULL = 1
BAD = 2


@dataclass(frozen=True)
class PcapHeader:
    """What the global header says about every record of the file."""

    big_endian: bool
    nanosecond: bool
    snaplen: int
    linktype: int

    @property
    def max_caplen(self) -> int:
        """Largest captured length accepted before a record header counts as bad."""
        return min(max(self.snaplen, DEFAULT_MAX_CAPLEN), MAX_RECORD_BYTES)


def parse_header(head: bytes, name: str) -> PcapHeader:
    """Parse the global header at the start of ``head``; InputError if it is not one."""
    if head[:4] not in MAGICS:
        raise InputError(f"{name}: not a pcap file")
    if len(head) < HEADER_BYTES:
        raise InputError(f"{name}: truncated pcap header ({len(head)} of {HEADER_BYTES} bytes)")
    big, nano = MAGICS[head[:4]]
    snaplen, network = struct.unpack_from(">II" if big else "<II", head, 16)
    return PcapHeader(big, nano, snaplen, network & 0xFFFF)


class RecordArrays:
    """Preallocated per-record arrays a scanner fills; copied out into each chunk."""

    def __init__(self, chunk_bytes: int) -> None:
        n = max(1, min(chunk_bytes // RECORD_HEADER_BYTES + 1, MAX_RECORDS_PER_CHUNK))
        self.offset = np.empty(n, np.int64)
        self.caplen = np.empty(n, np.uint32)
        self.origlen = np.empty(n, np.uint32)
        self.ts_ns = np.empty(n, np.int64)
        self.linktype = np.empty(n, np.uint16)

    def chunk(
        self, data: U8, n: int, stats: ReadStats, stream: ByteStream, linktype: U16 | None = None
    ) -> RecordChunk:
        """The first ``n`` records as a chunk over ``data``; counts them in ``stats``."""
        stats.records += n
        stats.bytes = stream.tell()
        return RecordChunk(
            data=data,
            offset=self.offset[:n].copy(),
            caplen=self.caplen[:n].copy(),
            origlen=self.origlen[:n].copy(),
            ts_ns=self.ts_ns[:n].copy(),
            linktype=self.linktype[:n].copy() if linktype is None else linktype,
        )


def reset_stats(stats: ReadStats) -> None:
    """Zero ``stats`` in place (each pass over a source counts afresh).

    ``stats.bytes`` counts bytes of the *file* read so far (compressed bytes
    for a compressed file), so that it reaches the file size at the end and
    can drive a progress display.
    """
    stats.records = 0
    stats.bytes = 0
    stats.skipped.clear()


@jit
def u32(buf: U8, i: int, big: bool) -> int:
    """The 32-bit unsigned integer at ``buf[i]`` in either byte order (numba)."""
    if big:
        return int(
            (np.int64(buf[i]) << 24)
            | (np.int64(buf[i + 1]) << 16)
            | (np.int64(buf[i + 2]) << 8)
            | np.int64(buf[i + 3])
        )
    return int(
        np.int64(buf[i])
        | (np.int64(buf[i + 1]) << 8)
        | (np.int64(buf[i + 2]) << 16)
        | (np.int64(buf[i + 3]) << 24)
    )


@jit
def scan_records(
    buf: U8,
    pos: int,
    end: int,
    big: bool,
    frac_ns: int,
    max_caplen: int,
    arrays: tuple[I64, U32, U32, I64],
) -> tuple[int, int, int, int]:
    """Locate the complete records in ``buf[pos:end]``.

    ``arrays`` is ``(offset, caplen, origlen, ts_ns)`` of :class:`RecordArrays`.
    Returns ``(n, pos, status, need)``: records found, where scanning stopped,
    why (``NEED_MORE``: ``need`` bytes from ``pos`` are wanted; ``FULL``: the
    arrays are full; ``BAD``: bad record header at ``pos``).
    """
    off, cap, orig, ts = arrays
    limit = off.shape[0]
    n = 0
    while n < limit:
        if end - pos < 16:
            return n, pos, 0, 16
        caplen = u32(buf, pos + 8, big)
        if caplen > max_caplen:
            return n, pos, 2, 0
        if end - pos < 16 + caplen:
            return n, pos, 0, 16 + caplen
        ts[n] = u32(buf, pos, big) * 1_000_000_000 + u32(buf, pos + 4, big) * frac_ns
        off[n] = pos + 16
        cap[n] = caplen
        orig[n] = u32(buf, pos + 12, big)
        n += 1
        pos += 16 + caplen
    return n, pos, 1, 0


class PcapSource:
    """A pcap file (possibly compressed) as a :class:`~teiten.capture.source.Source`."""

    def __init__(self, path: Path, name: str, head: bytes, chunk_bytes: int) -> None:
        self.name = name
        self.stats = ReadStats()
        self.header = parse_header(head, name)
        self._path = path
        self._chunk_bytes = chunk_bytes

    def chunks(self) -> Iterator[RecordChunk]:
        """Yield the records in file order; ``data`` is a view into a reused buffer."""
        reset_stats(self.stats)
        hdr = self.header
        frac_ns = 1 if hdr.nanosecond else 1000
        arrays = RecordArrays(self._chunk_bytes)
        scratch = (arrays.offset, arrays.caplen, arrays.origlen, arrays.ts_ns)
        skipped = self.stats.skipped
        with ByteStream(self._path, self.name) as stream:
            win = Window(stream, self._chunk_bytes)
            if not win.skip(HEADER_BYTES):
                return
            while True:
                n, win.start, status, need = scan_records(
                    win.buf, win.start, win.end, hdr.big_endian, frac_ns, hdr.max_caplen, scratch
                )
                if n:
                    lt = np.full(n, hdr.linktype, np.uint16)
                    yield arrays.chunk(win.buf[: win.end], n, self.stats, stream, lt)
                if status == FULL:
                    continue
                if status == BAD:
                    skipped["bad_record_header"] += 1
                    break
                if not win.ensure(need):
                    if win.end > win.start:
                        skipped["truncated_record"] += 1
                    break
            self.stats.bytes = stream.tell()
            if stream.damage:
                skipped[stream.damage] += 1
