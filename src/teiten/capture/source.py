"""The record batch every capture source yields, and the Source protocol.

A source never builds one Python object per packet. It fills a reused byte
buffer and hands out a :class:`RecordChunk`: the buffer plus numpy arrays that
say where each record's bytes start, how many were captured, how long the
packet was on the wire, when it was seen and on which link type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
U16 = npt.NDArray[np.uint16]


@dataclass
class RecordChunk:
    """Raw packet records, columnar.

    ``data`` may be a view into a buffer the source reuses: it is valid only
    until the source yields its next chunk. Stages that must keep bytes
    (payloads) copy what they need before asking for the next chunk.
    """

    data: U8
    """The bytes; record ``i`` is ``data[offset[i] : offset[i] + caplen[i]]``."""
    offset: I64
    caplen: U32
    """Bytes captured (≤ snaplen)."""
    origlen: U32
    """Bytes the packet had on the wire."""
    ts_ns: I64
    """Capture time, nanoseconds since 1970-01-01 UTC."""
    linktype: U16
    """LINKTYPE_* value of each record (pcapng files may mix link types)."""

    def __len__(self) -> int:
        return int(self.offset.shape[0])


@dataclass
class ReadStats:
    """What a source read and what it had to skip, by reason."""

    records: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """Counts of records or blocks skipped, by reason (e.g. ``truncated_record``)."""


class Source(Protocol):
    """Something that yields raw packet records in chunks."""

    name: str
    stats: ReadStats

    def chunks(self) -> Iterator[RecordChunk]:
        """Yield the records in file order, in chunks of bounded size."""
        ...
