"""The limits that stop one input early: content expanding past the file's size, junk."""

from __future__ import annotations

from typing import Any

import numpy as np

from teiten.capture.source import RecordChunk, Source
from teiten.schema import DECODE_ERRORS

JUNK_MIN_RECORDS = 100_000
"""Records an input must have given before the junk rule may stop it."""
JUNK_SHARE = 0.99
"""Share of malformed records (reader skips plus the decode errors in
:data:`JUNK_ERRORS`) above which an input is stopped as junk."""
JUNK_ERRORS = np.array(
    [name not in ("", "unsupported_link", "fragment") for name in DECODE_ERRORS], bool
)
"""Decode errors that count as junk: damage, not merely traffic teiten does not decode
(unsupported link types, non-first fragments)."""
EXPANSION_FLOOR = 1 << 20
"""Content bytes below which the expansion rule never stops an input."""
RECORD_HEADER_BYTES = 16
"""A pcap record header; content bytes are counted as captured bytes plus this per record
(a lower bound of the decompressed size for pcapng too)."""


class Guard:
    """The limits that stop an input early: expansion ratio and junk share.

    Checked after each chunk in the decoding thread; :attr:`reason` is the
    one-line message once a limit is passed.
    """

    def __init__(self, source: Source, max_expansion: int) -> None:
        self.source = source
        self.max_expansion = max_expansion
        self.content = 0
        self.junk = 0
        self.reason = ""

    def check(self, chunk: RecordChunk, errors: Any) -> bool:
        """Count a decoded chunk; True when the input must stop."""
        stats = self.source.stats
        self.content += int(chunk.caplen.sum(dtype=np.int64)) + RECORD_HEADER_BYTES * len(chunk)
        self.junk += int(errors[JUNK_ERRORS].sum())
        skipped = sum(stats.skipped.values())
        seen = stats.records + skipped
        junk = self.junk + skipped
        packed = max(stats.bytes, 1)
        if self.content > EXPANSION_FLOOR and self.content > self.max_expansion * packed:
            self.reason = (
                f"its content grew past {self.max_expansion:,}× the file's size "
                f"({self.content:,} bytes from {packed:,}; setting max_expansion)"
            )
        elif seen >= JUNK_MIN_RECORDS and junk > JUNK_SHARE * seen:
            self.reason = (
                f"{junk:,} of the first {seen:,} records are malformed (more than {JUNK_SHARE:.0%})"
            )
        return bool(self.reason)
