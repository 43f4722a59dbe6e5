"""Read pcapng files as chunks of raw records, walking packet blocks with numba.

The walker handles the blocks that come by the million, without a Python
object per block: Enhanced Packet Blocks (EPB), Simple Packet Blocks (SPB),
obsolete Packet Blocks (type 2), and every other non-control block, which it
steps over. It hands control back to Python only at a Section Header Block
(SHB: byte order, resets the interfaces) or an Interface Description Block
(IDB: link type, snaplen, ``if_tsresol``, ``if_tsoffset``).

Behaviours:

* Timestamps are converted from the interface's units (``if_tsresol``, bit 7
  clear = 10^-n s, set = 2^-n s; default microseconds) to nanoseconds, plus
  ``if_tsoffset`` seconds.
* An SPB has no timestamp. It is yielded (it is a real packet) with the
  timestamp of the previous packet in the section, or 0 if there is none yet;
  its captured length is the smallest of its original length, the interface's
  snaplen (when nonzero) and the bytes in the block.

Counted in ``stats.skipped`` (reading goes on unless said otherwise):

* ``other_blocks``: name resolution, statistics, secrets, custom and unknown blocks.
* ``undefined_interface``: a packet block naming an interface no IDB defined.
* ``bad_packet_block``: a packet block too short for its header or its captured length.
* ``oversized_block``: a block above 64 MiB, stepped over unread.
* ``bad_block``: a block length not a multiple of 4, below the minimum, or not
  repeated at the block's end; a bad byte-order magic; an unknown major
  version. Reading the file stops there, keeping everything before.
* ``truncated_record``: the file ends inside a block (reading stops).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from teiten.capture.compressed import MAX_RECORD_BYTES, ByteStream, Window, jit
from teiten.capture.pcap import BAD, NEED_MORE, RecordArrays, reset_stats, u32
from teiten.capture.source import I64, U8, U16, U32, ReadStats, RecordChunk
from teiten.errors import InputError

MAGIC = b"\x0a\x0d\x0d\x0a"
SHB = 0x0A0D0D0A
IDB = 1
OPB = 2
SPB = 3
EPB = 6
MIN_SHB_BYTES = 28
MIN_IDB_BYTES = 20

# walker status codes beyond pcap's NEED_MORE / FULL / BAD
CONTROL = 3
OVERSIZED = 4
# interface table columns
LINKTYPE, SNAPLEN, MODE, PARAM, OFFSET_NS = range(5)
MUL, DIV, POW2 = range(3)
# walker counters, in stats.skipped order
COUNTERS = ("other_blocks", "undefined_interface", "bad_packet_block")


def check_head(head: bytes, name: str) -> None:
    """Raise :class:`InputError` unless ``head`` starts with a usable Section Header Block."""
    if len(head) < MIN_SHB_BYTES:
        raise InputError(f"{name}: truncated pcapng section header ({len(head)} bytes)")
    big = _byte_order(head[8:12])
    if big is None:
        raise InputError(f"{name}: bad pcapng byte-order magic")
    (length,) = struct.unpack_from(">I" if big else "<I", head, 4)
    if length < MIN_SHB_BYTES or length % 4:
        raise InputError(f"{name}: bad pcapng section header length {length}")


def _byte_order(bom: bytes) -> bool | None:
    """True for big endian, False for little, None if ``bom`` is not the byte-order magic."""
    if bom == b"\x1a\x2b\x3c\x4d":
        return True
    if bom == b"\x4d\x3c\x2b\x1a":
        return False
    return None


def interface_row(linktype: int, snaplen: int, tsresol: int, tsoffset: int) -> list[int]:
    """One interface table row: link type, snaplen and how to turn its timestamps into ns."""
    if tsresol & 0x80:
        mode, param = POW2, min(tsresol & 0x7F, 63)
    elif tsresol <= 9:
        mode, param = MUL, 10 ** (9 - tsresol)
    else:
        mode, param = DIV, 10 ** min(tsresol - 9, 18)
    offset_ns = max(-(2**63), min(tsoffset * 1_000_000_000, 2**63 - 1))
    return [linktype, snaplen, mode, param, offset_ns]


def parse_idb(block: bytes, big: bool) -> list[int]:
    """The interface table row an IDB describes (malformed options are ignored)."""
    e = ">" if big else "<"
    linktype, _, snaplen = struct.unpack_from(e + "HHI", block, 8)
    tsresol, tsoffset = 6, 0
    pos, end = 16, len(block) - 4
    while pos + 4 <= end:
        code, length = struct.unpack_from(e + "HH", block, pos)
        if code == 0 or pos + 4 + length > end:
            break
        if code == 9 and length >= 1:
            tsresol = block[pos + 4]
        elif code == 14 and length >= 8:
            (tsoffset,) = struct.unpack_from(e + "q", block, pos + 4)
        pos += 4 + (length + 3) // 4 * 4
    return interface_row(linktype, snaplen, tsresol, tsoffset)


@jit
def _to_ns(raw: int, mode: int, param: int) -> int:
    if mode == 0:
        return raw * param
    if mode == 1:
        return raw // param
    mask = (np.int64(1) << param) - 1
    sec = (raw >> param) * 1_000_000_000
    if param <= 33:
        return int(sec + (((raw & mask) * 1_000_000_000) >> param))
    return int(sec + ((((raw & mask) >> (param - 33)) * 1_000_000_000) >> 33))


@jit
def _packet(
    buf: U8, pos: int, blen: int, btype: int, big: bool, iface: I64, last_ts: int
) -> tuple[int, int, int, int, int, int]:
    """Decode one packet block: ``(counter or -1, interface, offset, caplen, origlen, ts)``."""
    if btype == 3:
        if blen < 16:
            return 2, 0, 0, 0, 0, 0
        if iface.shape[0] == 0:
            return 1, 0, 0, 0, 0, 0
        orig = u32(buf, pos + 8, big)
        cap = min(orig, blen - 16)
        if iface[0, 1] > 0:
            cap = min(cap, iface[0, 1])
        return -1, 0, pos + 12, cap, orig, last_ts
    if blen < 32:
        return 2, 0, 0, 0, 0, 0
    word = u32(buf, pos + 8, big)
    ifn = word if btype == 6 else ((word >> 16) if big else (word & 0xFFFF))
    if ifn >= iface.shape[0]:
        return 1, 0, 0, 0, 0, 0
    cap = u32(buf, pos + 20, big)
    if 32 + cap > blen:
        return 2, 0, 0, 0, 0, 0
    raw = (u32(buf, pos + 12, big) << 32) | u32(buf, pos + 16, big)
    ts = _to_ns(raw, iface[ifn, 2], iface[ifn, 3]) + iface[ifn, 4]
    return -1, ifn, pos + 28, cap, u32(buf, pos + 24, big), ts


@jit
def walk_blocks(
    buf: U8,
    pos: int,
    end: int,
    big: bool,
    iface: I64,
    last_ts: int,
    arrays: tuple[I64, U32, U32, I64, U16],
    counts: I64,
) -> tuple[int, int, int, int, int]:
    """Walk the blocks in ``buf[pos:end]``, filling ``arrays`` with the packets found.

    Returns ``(n, pos, status, need, last_ts)``; ``need`` is the bytes wanted
    from ``pos`` (``NEED_MORE``) or the oversized block's length (``OVERSIZED``).
    """
    off, cap, orig, ts, lt = arrays
    n = 0
    while n < off.shape[0]:
        if end - pos < 12:
            return n, pos, 0, 12, last_ts
        btype = u32(buf, pos, big)
        if btype == 0x0A0D0D0A or btype == 1:
            return n, pos, 3, 0, last_ts
        blen = u32(buf, pos + 4, big)
        if blen < 12 or blen % 4 != 0:
            return n, pos, 2, 0, last_ts
        if blen > 64 << 20:
            return n, pos, 4, blen, last_ts
        if end - pos < blen:
            return n, pos, 0, blen, last_ts
        if u32(buf, pos + blen - 4, big) != blen:
            return n, pos, 2, 0, last_ts
        if btype == 2 or btype == 3 or btype == 6:
            err, ifn, o, c, g, t = _packet(buf, pos, blen, btype, big, iface, last_ts)
            if err >= 0:
                counts[err] += 1
            else:
                off[n], cap[n], orig[n], ts[n], lt[n] = o, c, g, t, iface[ifn, 0]
                last_ts = t
                n += 1
        else:
            counts[0] += 1
        pos += blen
    return n, pos, 1, 0, last_ts


class _Section:
    """The state a section carries: byte order, interfaces, last timestamp."""

    def __init__(self) -> None:
        self.big = False
        self.rows: list[list[int]] = []
        self.iface = np.zeros((0, 5), np.int64)
        self.last_ts = 0

    def reset(self, big: bool) -> None:
        self.big = big
        self.rows = []
        self.iface = np.zeros((0, 5), np.int64)
        self.last_ts = 0

    def add_interface(self, row: list[int]) -> None:
        self.rows.append(row)
        self.iface = np.array(self.rows, np.int64)


def _control_block(win: Window, sec: _Section, skipped: Counter[str]) -> bool:
    """Consume the SHB or IDB at ``win.start``; False (with a counted reason) to stop."""
    buf, pos = win.buf, win.start
    is_shb = u32(buf, pos, False) == SHB  # the walker saw >= 12 bytes here
    big = _byte_order(bytes(buf[pos + 8 : pos + 12])) if is_shb else sec.big
    if big is None:
        skipped["bad_block"] += 1
        return False
    blen = u32(win.buf, win.start + 4, big)
    if blen % 4 or blen < (MIN_SHB_BYTES if is_shb else MIN_IDB_BYTES) or blen > MAX_RECORD_BYTES:
        skipped["bad_block"] += 1
        return False
    if not win.ensure(blen):
        skipped["truncated_record"] += 1
        return False
    block = bytes(win.buf[win.start : win.start + blen])
    e = ">" if big else "<"
    if struct.unpack_from(e + "I", block, blen - 4)[0] != blen or (
        is_shb and struct.unpack_from(e + "H", block, 12)[0] != 1
    ):
        skipped["bad_block"] += 1
        return False
    if is_shb:
        sec.reset(big)
    else:
        sec.add_interface(parse_idb(block, big))
    win.start += blen
    return True


def _fold_counts(counts: I64, skipped: Counter[str]) -> None:
    """Move the walker's counters into ``skipped`` and zero them."""
    for reason, count in zip(COUNTERS, counts.tolist(), strict=True):
        if count:
            skipped[reason] += count
    counts[:] = 0


class PcapngSource:
    """A pcapng file (possibly compressed) as a :class:`~teiten.capture.source.Source`."""

    def __init__(self, path: Path, name: str, head: bytes, chunk_bytes: int) -> None:
        check_head(head, name)
        self.name = name
        self.stats = ReadStats()
        self._path = path
        self._chunk_bytes = chunk_bytes

    def chunks(self) -> Iterator[RecordChunk]:
        """Yield the packets in file order; ``data`` is a view into a reused buffer."""
        reset_stats(self.stats)
        skipped = self.stats.skipped
        arrays = RecordArrays(self._chunk_bytes)
        scratch = (arrays.offset, arrays.caplen, arrays.origlen, arrays.ts_ns, arrays.linktype)
        counts = np.zeros(len(COUNTERS), np.int64)
        sec = _Section()
        with ByteStream(self._path, self.name) as stream:
            win = Window(stream, self._chunk_bytes)
            while True:
                n, win.start, status, need, sec.last_ts = walk_blocks(
                    win.buf, win.start, win.end, sec.big, sec.iface, sec.last_ts, scratch, counts
                )
                _fold_counts(counts, skipped)
                if n:
                    yield arrays.chunk(win.buf[: win.end], n, self.stats, stream)
                if not self._next_step(win, sec, status, need):
                    break
            self.stats.bytes = stream.tell()
            if stream.damage:
                skipped[stream.damage] += 1

    def _next_step(self, win: Window, sec: _Section, status: int, need: int) -> bool:
        """Act on the walker's status; False when reading the file is over."""
        skipped = self.stats.skipped
        if status == NEED_MORE:
            if win.ensure(need):
                return True
            if win.end > win.start:
                skipped["truncated_record"] += 1
            return False
        if status == CONTROL:
            return _control_block(win, sec, skipped)
        if status == OVERSIZED:
            skipped["oversized_block"] += 1
            if win.skip(need):
                return True
            skipped["truncated_record"] += 1
            return False
        if status == BAD:
            skipped["bad_block"] += 1
            return False
        return True  # FULL: the walker resumes where it stopped
