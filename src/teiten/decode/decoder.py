"""Turn one :class:`~teiten.capture.source.RecordChunk` into a :class:`PacketBatch`.

The work happens in :func:`teiten.decode.kernel.decode_records`; this module
allocates the output columns with the dtypes of :mod:`teiten.schema`, hands the
chunk's arrays over in the layout the kernel was compiled for, and wraps the
result. The kernel releases the GIL, so ``decode`` can run in a worker thread
while another thread writes the previous batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.capture.source import RecordChunk
from teiten.decode.batch import PacketBatch, empty_columns
from teiten.decode.kernel import Columns, decode_records
from teiten.schema import DECODED


def decode(chunk: RecordChunk) -> PacketBatch:
    """Decode every record of ``chunk`` into the columns listed in ``schema.DECODED``.

    Never raises on bad packets: each row's ``decode_error`` says why it could
    not be decoded completely, and the fields read before that point are kept.
    The pipeline adds the other columns (``sensor``, ``fp``…).

    >>> batch = decode(chunk)  # doctest: +SKIP
    >>> batch["dst_port"][:3]  # doctest: +SKIP
    array([23, 2323, 445], dtype=uint16)
    """
    n = len(chunk)
    columns = empty_columns(n, DECODED)
    columns["ts"][:] = chunk.ts_ns
    out = _outputs(columns, n)
    decode_records(
        _contiguous(chunk.data, np.uint8),
        _contiguous(chunk.offset, np.int64),
        _contiguous(chunk.caplen, np.uint32),
        _contiguous(chunk.linktype, np.uint16),
        out,
    )
    return PacketBatch(columns, out.payload_offset, out.payload_caplen)


def _outputs(columns: dict[str, npt.NDArray[Any]], n: int) -> Columns:
    """The kernel's view of ``columns`` plus the two payload arrays."""
    arrays = {name: columns[name] for name in Columns._fields if name in columns}
    return Columns(
        **arrays,
        payload_offset=np.full(n, -1, np.int64),
        payload_caplen=np.zeros(n, np.uint32),
    )


def _contiguous(array: npt.NDArray[Any], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """``array`` as a C-contiguous 1-d array of ``dtype`` (no copy when it already is)."""
    return np.ascontiguousarray(array, dtype=dtype).reshape(-1)
