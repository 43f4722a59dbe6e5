"""Get a capture file's bytes into one reused buffer, decompressing gzip, zstd and xz on the fly.

Three pieces, used by the pcap and pcapng readers:

* :func:`read_head` opens a file, tells whether it is compressed (by magic, not
  by name) and returns the first bytes of its (decompressed) content, for
  sniffing the capture format.
* :class:`ByteStream` is a file's content as a stream, decompressed if needed.
  Damage inside a compressed stream does not raise: the stream ends early and
  :attr:`ByteStream.damage` names the reason, which the reader counts.
* :class:`Window` is the one reused ``uint8`` buffer a reader scans. Bytes not
  yet consumed are carried to the front before each refill; the buffer grows
  (once per larger need, never past :data:`MAX_RECORD_BYTES` plus a header)
  only when a single record does not fit.
"""

from __future__ import annotations

import gzip
import lzma
import zlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar, cast

import numba
import numpy as np
import zstandard

from teiten.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

MAX_RECORD_BYTES = 64 << 20
"""Largest record or block a reader accepts; bigger ones are skipped and counted."""
HEAD_BYTES = 32
"""How many leading content bytes :func:`read_head` returns (enough for any file header)."""
_GROW_STEP = 64 << 10

_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)
_DAMAGE: tuple[type[BaseException], ...] = (
    OSError,  # includes gzip.BadGzipFile
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
        if self.compression == "gzip":
            self._reader = gzip.GzipFile(fileobj=self._file, mode="rb")
        elif self.compression == "xz":
            self._reader = lzma.LZMAFile(self._file)  # noqa: SIM115
        elif self.compression == "zstd":
            dctx = zstandard.ZstdDecompressor()
            self._reader = dctx.stream_reader(self._file, read_across_frames=True, closefd=False)

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
