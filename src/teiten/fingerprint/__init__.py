"""What a scanner fingerprint is: the unit every built-in and every plugin declares.

A :class:`Fingerprint` names one vectorised numpy predicate over a batch's
columns (``dict`` of column name → array, as in
:attr:`teiten.decode.batch.PacketBatch.columns`) and the bit it sets in the
stored ``fp`` column. :mod:`teiten.fingerprint.registry` holds the built-ins
with their fixed bits, loads third-party fingerprints from the
``teiten.fingerprints`` entry point group, and applies them all to a batch::

    from teiten.fingerprint import registry
    columns["fp"] = registry.apply(columns)
    registry.names(int(columns["fp"][0]))  # e.g. ["mirai", "spoofed_suspect"]

Bits are stored on disk, so a fingerprint's bit never changes. Bits 0–15 are
reserved for built-ins; a plugin takes one of bits 16–31.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Columns = dict[str, npt.NDArray[Any]]
"""A batch's columns: name → array (IPv6 addresses as ``(n, 16)`` uint8)."""
Predicate = Callable[[Columns], npt.NDArray[np.bool_]]
"""Vectorised test: one boolean per row of the columns it is given."""

FIRST_PLUGIN_BIT = 16
LAST_BIT = 31  # the ``fp`` column is uint32


@dataclass(frozen=True)
class Fingerprint:
    """One registered scanner or traffic fingerprint.

    >>> Fingerprint("ttl_one", 16, "IPv4 TTL of 1", "my notes",
    ...             lambda c: c["ip_ttl"] == 1).mask
    65536
    """

    name: str
    """Identifier shown in views and reports, e.g. ``mirai``."""
    bit: int
    """Bit set in the ``fp`` column (0–31); never renumbered."""
    title: str
    """One-line description."""
    source: str
    """Where the formula comes from: tool source file, paper, RFC."""
    predicate: Predicate

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"fingerprint name must be an identifier, not {self.name!r}")
        if not 0 <= self.bit <= LAST_BIT:
            raise ValueError(f"fingerprint {self.name}: bit {self.bit} is not in 0–{LAST_BIT}")

    @property
    def mask(self) -> int:
        """The fingerprint's bit as a mask (``1 << bit``)."""
        return 1 << self.bit


__all__ = ["FIRST_PLUGIN_BIT", "LAST_BIT", "Columns", "Fingerprint", "Predicate"]
