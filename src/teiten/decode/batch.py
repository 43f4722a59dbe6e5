"""The columnar packet batch that flows between ingest stages.

A :class:`PacketBatch` holds one numpy array per column of
:data:`teiten.schema.PACKETS` (IPv6 addresses as ``(n, 16)`` uint8 arrays),
plus where each packet's transport payload lies in the chunk it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.schema import PACKETS


@dataclass
class PacketBatch:
    """Decoded packets, one array per column."""

    columns: dict[str, npt.NDArray[Any]]
    payload_offset: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    """Start of the transport payload within the source chunk's ``data``; -1 if none."""
    payload_caplen: npt.NDArray[np.uint32] = field(default_factory=lambda: np.zeros(0, np.uint32))
    """Payload bytes actually captured (≤ ``payload_len``)."""
    labels: dict[str, list[str]] = field(default_factory=dict)
    """For ``str`` columns (stored as int32 codes): the text of each code."""

    def __len__(self) -> int:
        return int(self.columns["ts"].shape[0])

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.columns[name]

    def select(self, mask: npt.NDArray[np.bool_]) -> PacketBatch:
        """The rows where ``mask`` is true."""
        return PacketBatch(
            {k: v[mask] for k, v in self.columns.items()},
            self.payload_offset[mask] if len(self.payload_offset) else self.payload_offset,
            self.payload_caplen[mask] if len(self.payload_caplen) else self.payload_caplen,
            self.labels,
        )


def empty_columns(n: int, names: tuple[str, ...] | None = None) -> dict[str, npt.NDArray[Any]]:
    """Zeroed arrays for ``n`` packets, with the declared dtypes.

    ``bytes16`` columns are ``(n, 16)`` uint8; ``str`` columns are int32 codes
    into a label list kept beside them (``PacketBatch.labels``).
    """
    out: dict[str, npt.NDArray[Any]] = {}
    for c in PACKETS:
        if names is not None and c.name not in names:
            continue
        if c.dtype == "bytes16":
            out[c.name] = np.zeros((n, 16), np.uint8)
        elif c.dtype == "str":
            out[c.name] = np.zeros(n, np.int32)
        else:
            out[c.name] = np.zeros(n, c.numpy_dtype)
    return out
