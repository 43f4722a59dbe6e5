"""Get a capture file's bytes into one reused buffer, decompressing gzip, zstd and xz on the fly.

Three pieces, used by the pcap and pcapng readers:

* :func:`read_head` opens a file, tells whether it is compressed (by magic, not
  by name) and returns the first bytes of its (decompressed) content, for
  sniffing the capture format.
* :class:`ByteStream` is a file's content as a stream, decompressed if needed.
  Damage inside a compressed stream does not raise: the stream ends early and
  :attr:`ByteStream.damage` names the reason, which the reader counts. Every
  byte decompressed before a break is delivered first (gzip and xz are
  inflated here in bounded steps, so a cut file keeps all its whole records);
  a zstd stream that ends inside a frame is told from a clean end by walking
  its frame and block headers (:class:`ZstdFrames`).
* :class:`Window` is the one reused ``uint8`` buffer a reader scans. Bytes not
  yet consumed are carried to the front before each refill; the buffer grows
  (once per larger need, never past :data:`MAX_RECORD_BYTES` plus a header)
  only when a single record does not fit.
"""

from __future__ import annotations

import lzma
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar, cast

import numba
import numpy as np
import zstandard

from teiten.capture.source import ReadStats
from teiten.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

MAX_RECORD_BYTES = 64 << 20
"""Largest record or block a reader accepts; bigger ones are skipped and counted."""
HEAD_BYTES = 32
"""How many leading content bytes :func:`read_head` returns (enough for any file header)."""
_GROW_STEP = 64 << 10
_INPUT_STEP = 64 << 10
"""Compressed bytes read from the file per step."""
_ZSTD_MAGIC = 0xFD2FB528

_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)
_DAMAGE: tuple[type[BaseException], ...] = (
    OSError,
    lzma.LZMAError,
    zlib.error,
    zstandard.ZstdError,
)


def jit(fn: F) -> F:
    """Compile ``fn`` with ``numba.njit(cache=True, nogil=True)``, keeping its type for mypy."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


def compression_of(magic: bytes) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``"xz"`` if ``magic`` starts a compressed stream, else None."""
    for prefix, kind in _MAGICS:
        if magic.startswith(prefix):
            return kind
    return None


def read_head(path: Path, name: str) -> tuple[bytes, str | None]:
    """The first :data:`HEAD_BYTES` content bytes of ``path`` and its compression.

    Raises :class:`InputError` if the file cannot be opened or its compressed
    stream is broken right at the start.
    """
    with ByteStream(path, name) as stream:
        head = stream.read(HEAD_BYTES)
        if stream.damage is not None:
            raise InputError(f"{name}: cannot decompress {stream.compression} data")
        return head, stream.compression


def _open_error(name: str, exc: OSError) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{name}: is a directory, not a capture file")
    if isinstance(exc, PermissionError):
        return InputError(f"{name}: permission denied")
    return InputError(f"{name}: cannot read: {exc.strerror or exc}")


class Inflater:
    """gzip or xz content, decompressed in steps bounded by the caller's buffer.

    Concatenated members (gzip) and streams (xz) follow one another; zero
    padding between them is skipped. :meth:`readinto` returns what it could
    decompress; the call after the last byte before a break raises
    :class:`EOFError` (cut short) or the decompressor's error (corrupt).
    """

    def __init__(self, file: BinaryIO, kind: str) -> None:
        self._file = file
        self._kind = kind
        self._dec: Any = self._new()
        self._input = b""
        self._started = False  # some input went into the current decompressor

    def _new(self) -> Any:
        return zlib.decompressobj(wbits=31) if self._kind == "gzip" else lzma.LZMADecompressor()

    def _next_stream(self) -> bool:
        """After a stream ended: start the next one, False at a clean end of file."""
        rest = self._input.lstrip(b"\0")
        while not rest:
            more = self._file.read(_INPUT_STEP)
            if not more:
                return False
            rest = more.lstrip(b"\0")
        self._dec, self._input, self._started = self._new(), rest, False
        return True

    def readinto(self, view: memoryview) -> int:
        """Decompress up to ``len(view)`` bytes into ``view``; 0 at the end of the content."""
        size = len(view)
        while True:
            if self._dec.eof:
                self._input = self._dec.unused_data + self._input
                if not self._next_stream():
                    return 0
            if self._kind == "gzip":
                if not self._input:
                    self._input = self._file.read(_INPUT_STEP)
                if not self._input:  # the file ended: take what zlib still holds
                    out = self._dec.decompress(b"", size)
                    if not out and not self._dec.eof:
                        raise EOFError("compressed stream ends before its end marker")
                else:
                    out = self._dec.decompress(self._input, size)
                # at the end of a member the rest is in unused_data (taken above)
                self._input = b"" if self._dec.eof else self._dec.unconsumed_tail
            else:
                data, self._input = self._input, b""
                if not data and self._dec.needs_input:
                    data = self._file.read(_INPUT_STEP)
                    if not data:
                        raise EOFError("compressed stream ends before its end marker")
                out = self._dec.decompress(data, size)
            if out:
                view[: len(out)] = out
                return len(out)

    def close(self) -> None:
        """Nothing to release beyond the file, which the caller closes."""


class ZstdFrames:
    """Follows zstd frame and block headers in the compressed bytes, without decompressing.

    ``complete`` is True when the bytes seen so far end exactly at a frame
    boundary: a stream cut inside a frame (or inside its checksum) is not,
    which is how a truncated ``.zst`` is told from a clean end. Content that
    is not zstd at all stops the walk (the decompressor reports that).
    """

    def __init__(self) -> None:
        self._head = bytearray()
        self._want = 4  # header bytes needed in the current state
        self._state = "magic"
        self._skip = 0
        self._checksum = False
        self._offset = 0  # bytes fed so far
        self._ends: deque[int] = deque()  # offsets where a block or frame ends
        self.lost = False  # stopped following (not zstd framing)

    @property
    def complete(self) -> bool:
        """The bytes fed so far end at a frame boundary."""
        return self.lost or (self._state == "magic" and not self._head and not self._skip)

    def next_boundary(self, offset: int) -> int | None:
        """The first block or frame end after ``offset`` seen so far (None if none)."""
        while self._ends and self._ends[0] <= offset:
            self._ends.popleft()
        return self._ends[0] if self._ends else None

    def feed(self, data: bytes) -> None:
        """Account for the next compressed bytes."""
        pos, n = 0, len(data)
        while pos < n and not self.lost:
            if self._skip:
                step = min(self._skip, n - pos)
                self._skip -= step
                pos += step
                if not self._skip and not self._head:
                    self._ends.append(self._offset + pos)
                continue
            take = min(self._want - len(self._head), n - pos)
            self._head += data[pos : pos + take]
            pos += take
            if len(self._head) == self._want:
                self._header(bytes(self._head))
                if not self._skip:
                    self._ends.append(self._offset + pos)
        self._offset += n

    def _header(self, head: bytes) -> None:
        """One complete header of the current state: decide what follows."""
        self._head.clear()
        if self._state == "magic":
            magic = int.from_bytes(head, "little")
            if magic == _ZSTD_MAGIC:
                self._state, self._want = "descriptor", 1
            elif magic & 0xFFFFFFF0 == 0x184D2A50:
                self._state, self._want = "skippable", 4
            else:
                self.lost = True
        elif self._state == "descriptor":
            fhd = head[0]
            single = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            self._skip = (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            self._state, self._want = "block", 3
        elif self._state == "skippable":
            self._skip = int.from_bytes(head, "little")
            self._state, self._want = "magic", 4
        else:  # block header: last-block bit, type, size
            value = int.from_bytes(head, "little")
            kind, size = (value >> 1) & 3, value >> 3
            if kind == 3:
                self.lost = True
                return
            self._skip = 1 if kind == 1 else size
            if value & 1:
                self._skip += 4 if self._checksum else 0
                self._state, self._want = "magic", 4


class ZstdInflater:
    """zstd content, fed to the decompressor one block at a time.

    A block never expands past 128 KiB, so each step's output is bounded, and
    every block that arrived whole is delivered even when the file is cut
    (python-zstandard's stream reader drops decoded output it has not handed
    out once its input runs dry). A file that ends inside a frame raises
    :class:`EOFError` after the last whole block.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._frames = ZstdFrames()
        self._dctx = zstandard.ZstdDecompressor()
        self._dec: Any = self._dctx.decompressobj()
        self._raw = b""  # compressed bytes read but not yet fed
        self._fed = 0  # compressed bytes fed so far
        self._out = b""
        self._pos = 0

    def readinto(self, view: memoryview) -> int:
        """Copy up to ``len(view)`` content bytes into ``view``; 0 at a clean end."""
        while self._pos >= len(self._out):
            if not self._step():
                if not self._frames.complete:
                    raise EOFError("zstd stream ends inside a frame")
                return 0
        n = min(len(view), len(self._out) - self._pos)
        view[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n

    def _step(self) -> bool:
        """Feed the bytes up to the next block or frame end; False once the file is used up."""
        if not self._raw:
            self._raw = self._file.read(_INPUT_STEP)
            if not self._raw:
                return False
            self._frames.feed(self._raw)
        stop = self._frames.next_boundary(self._fed)
        take = len(self._raw) if stop is None else min(len(self._raw), stop - self._fed)
        piece, self._raw = self._raw[:take], self._raw[take:]
        self._fed += take
        if self._dec.eof:  # the previous frame ended exactly at a boundary
            self._dec = self._dctx.decompressobj()
        self._out, self._pos = self._dec.decompress(piece), 0
        return True

    def close(self) -> None:
        """Nothing to release beyond the file, which the caller closes."""


class ByteStream:
    """A file's content bytes, decompressed if the file is gzip, zstd or xz."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self.damage: str | None = None
        """``truncated_compressed`` or ``corrupt_compressed`` once the stream broke off."""
        try:
            self._file = cast(BinaryIO, open(path, "rb", buffering=0))  # noqa: SIM115
            magic = self._file.read(8) or b""
            self._file.seek(0)
        except OSError as exc:
            if hasattr(self, "_file"):
                self._file.close()
            raise _open_error(name, exc) from None
        self.compression = compression_of(magic)
        self._reader: Any = self._file
        if self.compression in ("gzip", "xz"):
            self._reader = Inflater(self._file, self.compression)
        elif self.compression == "zstd":
            self._reader = ZstdInflater(self._file)

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` as far as the content goes; fewer bytes than asked means the end."""
        total = 0
        size = len(view)
        while total < size and self.damage is None:
            try:
                got = self._reader.readinto(view[total:])
            except EOFError:
                self.damage = "truncated_compressed"
                break
            except _DAMAGE as exc:
                if self.compression is None:
                    raise _open_error(self.name, cast(OSError, exc)) from None
                self.damage = "corrupt_compressed"
                break
            if not got:
                break
            total += got
        return total

    def tell(self) -> int:
        """Bytes of the file (compressed bytes, if compressed) read so far."""
        return int(self._file.tell())

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the content)."""
        buf = bytearray(size)
        got = self.readinto(memoryview(buf))
        return bytes(buf[:got])

    def lines(self, max_line: int, chunk: int = 1 << 20) -> Iterator[bytes | None]:
        """The content's lines without the newline; None for a line longer than ``max_line``.

        Memory stays bounded by ``chunk + max_line`` however long a line is.
        """
        pending, dropping = bytearray(), False
        while data := self.read(chunk):
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                too_long = dropping or len(pending) + end - start > max_line
                yield None if too_long else bytes(pending) + data[start:end]
                pending.clear()
                start, dropping = end + 1, False
            if not dropping:
                dropping = len(pending) + len(data) - start > max_line
                pending[:] = b"" if dropping else pending + data[start:]
        if dropping or pending.strip():
            yield None if dropping else bytes(pending)

    def records(self, max_line: int, chunk: int, stats: ReadStats) -> Iterator[bytes]:
        """The non-blank lines of a line-per-record log, each counted in ``stats.records``;
        a line longer than ``max_line`` is counted as skipped (``line_too_long``), not given."""
        for line in self.lines(max_line, chunk):
            if line is not None and not line.strip():
                continue
            stats.records += 1
            if line is None:
                stats.skipped["line_too_long"] += 1
            else:
                yield line

    def close(self) -> None:
        """Close the decompressor (if any) and the file."""
        if self._reader is not self._file:
            self._reader.close()
        self._file.close()

    def __enter__(self) -> ByteStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Window:
    """One reused ``uint8`` buffer over a :class:`ByteStream`.

    ``buf[start:end]`` holds the bytes read but not yet consumed. A reader scans
    from ``start``, moves ``start`` past what it consumed and calls
    :meth:`ensure` when it needs more; the unconsumed tail is then moved to the
    front and the rest of the buffer refilled.
    """

    def __init__(self, stream: ByteStream, size: int) -> None:
        self.stream = stream
        self.buf = np.empty(max(size, 1), np.uint8)
        self.start = 0
        self.end = 0
        self.eof = False

    def ensure(self, need: int) -> bool:
        """Make at least ``need`` unconsumed bytes available; False if the content ends first."""
        while self.end - self.start < need:
            if self.eof:
                return False
            self._compact(need)
            space = self.buf.shape[0] - self.end
            got = self.stream.readinto(self.buf[self.end :].data)
            self.end += got
            self.eof = got < space
        return True

    def skip(self, count: int) -> bool:
        """Consume ``count`` bytes, reading past the buffer if needed; False if the content ends."""
        avail = self.end - self.start
        if count <= avail:
            self.start += count
            return True
        count -= avail
        self.start = self.end = 0
        while count > 0 and not self.eof:
            want = min(count, self.buf.shape[0])
            got = self.stream.readinto(self.buf[:want].data)
            count -= got
            self.eof = got < want
        return count <= 0

    def _compact(self, need: int) -> None:
        keep = self.end - self.start
        if need > self.buf.shape[0]:
            size = -(-need // _GROW_STEP) * _GROW_STEP
            grown = np.empty(size, np.uint8)
            grown[:keep] = self.buf[self.start : self.end]
            self.buf = grown
        elif self.start:
            self.buf[:keep] = self.buf[self.start : self.end]
        self.start = 0
        self.end = keep
