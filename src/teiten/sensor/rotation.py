"""Rotated capture files, closed atomically into the capture inbox.

A :class:`Rotator` writes pcap records (nanosecond timestamps) to a dot-file
in the inbox (``.NAME.pcap.part``), which the ingest never reads. A file is
opened at its first packet and closed when ``rotate_seconds`` have passed
since then or it reached ``rotate_bytes``: its bytes are fsync'd, it is
renamed to ``NAME.pcap`` (atomic within one file system) and the folder is
fsync'd, so the sensor's ingest sees either nothing or the whole file. A
file with no packet is never published.

A crash can leave a ``.part`` file behind; :func:`recover` finishes it at
the next start: it is cut after its last complete record, synced and
renamed into place, or removed when it holds no complete record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from teiten.capture.compressed import jit
from teiten.capture.pcap import DEFAULT_MAX_CAPLEN, HEADER_BYTES, RECORD_HEADER_BYTES, u32
from teiten.capture.source import U8

MAGIC_NS = 0xA1B23C4D
"""pcap with nanosecond timestamps, written in this machine's (little-endian) byte order."""
HEADER = struct.Struct("<IHHiIII")
PART = ".part"


def pcap_header(snaplen: int, linktype: int) -> bytes:
    """The 24-byte global header of the files written (version 2.4)."""
    return HEADER.pack(MAGIC_NS, 2, 4, 0, 0, snaplen, linktype)


@jit
def complete_end(buf: U8, pos: int, max_caplen: int) -> tuple[int, int]:
    """Where the last complete little-endian record of ``buf[pos:]`` ends, and how many."""
    n = 0
    end = buf.shape[0]
    while end - pos >= RECORD_HEADER_BYTES:
        cap = u32(buf, pos + 8, False)
        if cap > max_caplen or end - pos - RECORD_HEADER_BYTES < cap:
            break
        pos += RECORD_HEADER_BYTES + cap
        n += 1
    return pos, n


def warm_up() -> None:
    """Compile :func:`complete_end` now (before privileges are dropped)."""
    complete_end(np.zeros(RECORD_HEADER_BYTES, np.uint8), 0, DEFAULT_MAX_CAPLEN)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(part: Path) -> Path:
    """Rename ``.NAME.part`` to ``NAME`` (``NAME-1``… if taken) and sync the folder."""
    name = part.name[1 : -len(PART)]
    target = part.with_name(name)
    n = 0
    while target.exists():
        n += 1
        stem, dot, suffix = name.rpartition(".")
        target = part.with_name(f"{stem}-{n}{dot}{suffix}")
    os.rename(part, target)
    _sync_folder(part.parent)
    return target


def recover(folder: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """Finish the ``.part`` files a previous run left: ``(published file, packets)`` each,
    and a ``NAME: reason`` line for each file that could not be read, cut or renamed.

    A file is cut after its last complete record and published; one without a
    valid header or any complete record is removed.
    """
    done: list[tuple[Path, int]] = []
    errors: list[str] = []
    for part in sorted(folder.glob(f".*{PART}")):
        try:
            n = _finish(part)
            if n:
                done.append((publish(part), n))
            else:
                part.unlink()
        except OSError as e:
            errors.append(f"{part.name}: {e.strerror or e}")
    return done, errors


def _finish(part: Path) -> int:
    """Cut ``part`` after its last complete record and sync it; the records kept."""
    with part.open("r+b") as f:
        head = f.read(HEADER_BYTES)
        ok = len(head) == HEADER_BYTES and HEADER.unpack(head)[0] == MAGIC_NS
        size = os.fstat(f.fileno()).st_size
        end, n = HEADER_BYTES, 0
        if ok and size > HEADER_BYTES:
            data = np.memmap(part, np.uint8, mode="r")
            end, n = complete_end(data, HEADER_BYTES, DEFAULT_MAX_CAPLEN)
            del data
        if n:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    return n


class Rotator:
    """The current capture file: opened at its first packet, closed by time or size."""

    def __init__(
        self,
        folder: Path,
        prefix: str,
        header: bytes,
        rotate_seconds: float,
        rotate_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder, self.prefix, self.header = folder, prefix, header
        self.rotate_seconds, self.rotate_bytes, self.clock = rotate_seconds, rotate_bytes, clock
        self.fd = -1
        self.part: Path | None = None
        self.opened = 0.0
        self.size = 0
        self.packets = 0
        """Packets in the open file (or meant for it)."""
        self.closed_packets = 0
        """Packets in the file published last."""

    def _open(self) -> None:
        self.opened = self.clock()
        stamp = dt.datetime.fromtimestamp(self.opened, dt.UTC).strftime("%Y%m%dT%H%M%S.%f")
        self.part = self.folder / f".{self.prefix}-{stamp}Z.pcap{PART}"
        self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        self.size = 0
        self._write(memoryview(self.header))

    def _write(self, data: memoryview) -> None:
        while data:
            n = os.write(self.fd, data)
            data = data[n:]
            self.size += n

    def write(self, records: memoryview, packets: int) -> Path | None:
        """Append whole records; returns the file published when this reached ``rotate_bytes``."""
        if not packets:
            return None
        self.packets += packets  # counted first: on an error they are what is lost
        if self.fd < 0:
            self._open()
        self._write(records)
        return self.close() if self.size >= self.rotate_bytes else None

    def due(self) -> bool:
        """The open file has been open ``rotate_seconds`` (by the clock)."""
        return self.fd >= 0 and self.clock() - self.opened >= self.rotate_seconds

    def close(self) -> Path | None:
        """Sync, close and publish the open file; None when none is open."""
        if self.fd < 0 or self.part is None:
            return None
        fd, self.fd = self.fd, -1
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        path = publish(self.part)
        self.part = None
        self.closed_packets, self.packets = self.packets, 0
        return path

    def discard(self) -> None:
        """Close and remove the open file (after a write error: its tail is unknown)."""
        self.packets = 0
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        part, self.part = self.part, None
        if part is not None:
            with contextlib.suppress(OSError):
                part.unlink()
