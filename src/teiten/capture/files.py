"""Turn command-line paths into capture sources: expand files, directories and globs, sniff formats.

:func:`expand_paths` does not look inside files: it returns every regular
file it finds and leaves the format decision to :func:`open_source`, whose
:class:`~teiten.errors.InputError` the caller may report and skip, or treat
as fatal. That keeps one place (the sniffer) deciding what is a capture.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from teiten.capture.compressed import read_head
from teiten.capture.pcap import MAGICS as PCAP_MAGICS
from teiten.capture.pcap import PcapSource
from teiten.capture.pcapng import MAGIC as PCAPNG_MAGIC
from teiten.capture.pcapng import PcapngSource
from teiten.capture.source import ReadStats, RecordChunk, Source
from teiten.errors import FormatError, InputError

_GLOB_CHARS = frozenset("*?[")


class EmptySource:
    """A capture file with no content at all (zero bytes, or compressed nothing)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = ReadStats()

    def chunks(self) -> Iterator[RecordChunk]:
        """Yield nothing."""
        yield from ()


def open_source(path: str | os.PathLike[str], *, chunk_bytes: int = 16 << 20) -> Source:
    """Open a pcap or pcapng file, plain or gzip/zstd/xz-compressed, chosen by its magic bytes.

    ``chunk_bytes`` is the size of the one buffer the source reads into (it
    grows only for a single record that does not fit). The file is opened
    again each time :meth:`~teiten.capture.source.Source.chunks` is called.
    A zero-byte file is a source with no records. Raises
    :class:`~teiten.errors.InputError` (one line, naming the file) if the
    file is missing, unreadable, not a capture, or has a truncated header.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
    name = os.fspath(path)
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{name}: is a directory, not a capture file")
    head, compression = read_head(p, name)
    if not head:
        return EmptySource(name)
    if head[:4] in PCAP_MAGICS:
        return PcapSource(p, name, head, chunk_bytes)
    if head[:4] == PCAPNG_MAGIC:
        return PcapngSource(p, name, head, chunk_bytes)
    if compression:
        raise FormatError(f"{name}: {compression} data, but not a pcap or pcapng file inside")
    raise FormatError(f"{name}: not a pcap or pcapng file (nor gzip, zstd or xz)")


def expand_paths(args: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files named by ``args``, in order, each once.

    * a file is taken as is (even if hidden);
    * a directory contributes its regular files, recursively, sorted by path,
      skipping hidden files and directories (names starting with ``.``);
    * a pattern with ``*``, ``?`` or ``[`` (that is not itself an existing
      path) is expanded with :mod:`glob` (``**`` recurses), sorted; directories
      it matches are expanded as above.

    Raises :class:`~teiten.errors.InputError` for a path that does not exist
    or a pattern that matches nothing. Formats are not checked here.
    """
    out: dict[Path, None] = {}
    for arg in args:
        text = os.fspath(arg)
        p = Path(text)
        if p.exists():
            matches = [p]
        elif _GLOB_CHARS & set(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if not matches:
                raise InputError(f"{text}: no files match this pattern")
        else:
            raise InputError(f"{text}: no such file or directory")
        for m in matches:
            for f in _walk(m) if m.is_dir() else [m]:
                out.setdefault(f, None)
    return list(out)


def _walk(directory: Path) -> list[Path]:
    """Regular files under ``directory``, recursively, sorted, hidden ones skipped."""
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(
            Path(root, f) for f in files if not f.startswith(".") and Path(root, f).is_file()
        )
    return sorted(found)
