"""A stored column, declared as data (:class:`Column`): what every table of
:mod:`teiten.schema` is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Column:
    """One stored column."""

    name: str
    dtype: str
    """numpy dtype name (``uint32``…), or ``str`` (packets: int32 codes in
    memory, a dictionary-encoded string on disk), ``bytes16`` (an IPv6
    address), ``binary``, ``list_str``, ``struct`` (the named :attr:`fields`)
    or ``list_struct`` (a list of such structs)."""
    doc: str
    encoding: str = "plain"
    """Parquet encoding hint: ``plain``, ``dict`` (few distinct values) or ``delta`` (sorted)."""
    nullable: bool = False
    fields: tuple[Column, ...] = ()
    """The fields of a ``struct`` or ``list_struct`` column, declared like columns."""
    limit: int = 0
    """Most characters (``str``) or items (lists) kept; 0 = unbounded. What a limit
    cuts is counted (sessions: ``evidence_cut``), never dropped silently."""

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(self.dtype)
