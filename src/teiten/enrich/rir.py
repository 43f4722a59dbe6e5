"""Allocated country from the RIRs' statistics files (``delegated-*-latest``), as a country source.

Each Regional Internet Registry publishes what it has delegated as pipe-separated
lines, ``registry|cc|type|start|value|date|status[|opaque-id[|extensions]]``,
after a version line and summary lines. :class:`RirSource` reads one or more of
these files (plain or extended format) and answers lookups from sorted range
starts with :func:`numpy.searchsorted`.

* only ``allocated`` and ``assigned`` records count; ``available`` and
  ``reserved`` ones (and ``asn`` records) are skipped;
* an ``ipv4`` record's value is an address count (any count, not only powers
  of two), an ``ipv6`` record's value is a prefix length;
* where records overlap, the **first** wins: an earlier file over a later one,
  an earlier line over a later one in the same file. Overlaps are counted
  (:attr:`RirSource.overlaps`, :attr:`RirSource.conflicts` when the countries
  differ) and reported, never silently resolved;
* malformed lines are counted per file and reported; a file whose first line is
  not a version line is not a statistics file (:class:`~teiten.errors.InputError`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.enrich.country import COUNTRIES
from teiten.errors import InputError
from teiten.jit import kernel

MAX_FILE_BYTES = 256 * 1024 * 1024
"""Larger files are refused (the largest RIR file, RIPE NCC's, is about 20 MB)."""
MAX_LINE_BYTES = 4096
"""A longer line means the file is not a statistics file."""
COUNTED = frozenset({"allocated", "assigned"})
NOT_COUNTED = frozenset({"available", "reserved"})
_VERSION = re.compile(r"\d+(\.\d+)*")
_DATE = re.compile(r"(19|20)\d{6}")
_IP4 = re.compile(r"(?:(?:0|[1-9]\d{0,2})\.){3}(?:0|[1-9]\d{0,2})", re.ASCII)
_CODES = {cc: i for i, cc in enumerate(COUNTRIES) if cc and cc != "ZZ"}  # ZZ: unknown
_ANSWERS: npt.NDArray[np.object_] = np.array([None, *COUNTRIES[1:]], dtype=object)


@dataclass
class RirFile:
    """What was read from one statistics file."""

    path: str
    registry: str = ""
    date: str = ""
    """The end date of the file's period (``YYYYMMDD``) from its version line."""
    records: int = 0
    """``ipv4`` and ``ipv6`` records that count (allocated or assigned)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Lines read but not counted, by kind (``available``, ``reserved``, ``asn``, ``summary``)."""
    malformed: int = 0
    examples: list[str] = field(default_factory=list)
    """The first few malformed lines, as ``line N: reason``."""


@kernel(cache=True, nogil=True)
def _find(nxt: npt.NDArray[np.int64], s: int) -> int:
    root = s
    while nxt[root] != root:
        root = nxt[root]
    while nxt[s] != root:  # path compression
        nxt[s], s = root, nxt[s]
    return root


@kernel(cache=True, nogil=True)
def _paint(
    a: npt.NDArray[np.int64], z: npt.NDArray[np.int64], owner: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Give each segment ``[a[i], z[i])`` not yet owned to range ``i``, in order; count each's."""
    nxt = np.arange(owner.shape[0] + 1)  # the first unowned segment at or after each one
    painted = np.zeros(a.shape[0], np.int64)
    for i in range(a.shape[0]):
        s = _find(nxt, a[i])
        while s < z[i]:
            owner[s] = i
            painted[i] += 1
            nxt[s] = s + 1
            s = _find(nxt, s + 1)
    return painted


def _any_other(
    seg: npt.NDArray[np.int16],
    a: npt.NDArray[np.int64],
    z: npt.NDArray[np.int64],
    codes: npt.NDArray[np.int16],
) -> int:
    """How many ranges ``[a, z)`` of segments hold a code other than their own (sparse table)."""
    k = np.floor(np.log2(z - a)).astype(np.int64)
    lo, hi, count = [seg], [seg], 0
    for j in range(1, int(k.max()) + 1):
        h = 1 << (j - 1)
        lo.append(np.minimum(lo[-1][:-h], lo[-1][h:]))
        hi.append(np.maximum(hi[-1][:-h], hi[-1][h:]))
    for j in np.unique(k).tolist():
        m = k == j
        aj, zj, cj = a[m], z[m] - (1 << j), codes[m]
        low = np.minimum(lo[j][aj], lo[j][zj])
        high = np.maximum(hi[j][aj], hi[j][zj])
        count += int(((low != cj) | (high != cj)).sum())
    return count


def _sorted_unique(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    # np.unique hashes in numpy 2.x, much slower than sorting here
    s = np.sort(a)
    keep = np.ones(s.shape[0], np.bool_)
    keep[1:] = (s[1:] != s[:-1]).astype(np.bool_)
    return s[keep]


class RangeTable:
    """Disjoint ranges with a code each, made from possibly overlapping ranges (first wins).

    ``starts`` are sorted, begin with 0, and ``values[i]`` is the code from
    ``starts[i]`` up to the next start (0 where no range covers).
    """

    def __init__(
        self, starts: npt.NDArray[Any], ends: npt.NDArray[Any], codes: npt.NDArray[np.int16]
    ) -> None:
        self.overlaps = self.conflicts = 0
        self.starts: npt.NDArray[Any] = np.zeros(1, starts.dtype)
        self.values: npt.NDArray[np.int16] = np.zeros(1, np.int16)
        if starts.shape[0] == 0:
            return
        bounds = _sorted_unique(np.concatenate([starts, ends]))
        a = np.searchsorted(bounds, starts).astype(np.int64)
        z = np.searchsorted(bounds, ends).astype(np.int64)
        owner = np.full(bounds.shape[0] - 1, -1, np.int64)
        painted = _paint(a, z, owner)
        seg = np.where(owner >= 0, codes[owner], 0).astype(np.int16)
        lost = painted < z - a
        self.overlaps = int(lost.sum())
        if self.overlaps:
            self.conflicts = _any_other(seg, a[lost], z[lost], codes[lost])
        values = np.concatenate([[0], seg, [0]]).astype(np.int16)
        keep = np.ones(values.shape[0], np.bool_)
        keep[1:] = values[1:] != values[:-1]
        self.starts = np.concatenate([np.zeros(1, starts.dtype), bounds])[keep]
        self.values = values[keep]

    def codes(self, ips: npt.NDArray[Any]) -> npt.NDArray[np.int16]:
        """The code of each address (same integer kind as the starts)."""
        return self.values[np.searchsorted(self.starts, ips, side="right") - 1]


@kernel(cache=True, nogil=True)
def _parse_ip4(
    buf: npt.NDArray[np.uint8], out: npt.NDArray[np.uint32], ok: npt.NDArray[np.bool_]
) -> None:
    pos = 0
    for i in range(out.shape[0]):
        value, octet, digits, dots, good = 0, 0, 0, 0, True
        while buf[pos] != 10:
            c = buf[pos]
            pos += 1
            if 48 <= c <= 57 and digits < 3 and not (digits == 1 and octet == 0):
                octet = octet * 10 + (c - 48)
                digits += 1
            elif c == 46 and digits > 0 and octet < 256:
                value = (value << 8) | octet
                octet, digits, dots = 0, 0, dots + 1
            else:
                good = False
        pos += 1
        good = good and digits > 0 and dots == 3 and octet < 256
        out[i] = ((value << 8) | octet) if good else 0
        ok[i] = good


def parse_ip4_text(addresses: list[str]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
    """Integers of dotted-quad texts, and which texts were one (the rest are 0, False).

    Accepts what :class:`ipaddress.IPv4Address` accepts (no leading zeros).
    """
    joined = ("\n".join(addresses) + "\n").encode("utf-8", "replace")
    out = np.zeros(len(addresses), np.uint32)
    ok = np.zeros(len(addresses), np.bool_)
    if joined.count(b"\n") == len(addresses):  # else a text holds a newline: all go slow
        _parse_ip4(np.frombuffer(joined, np.uint8), out, ok)
    return out, ok


Records = list[tuple[int, int, int]]
"""Ranges in precedence order: ``(start, end, country code)``, the end excluded."""


def _table(records: Records, dtype: Any) -> RangeTable:
    starts, ends, codes = zip(*records, strict=True) if records else ((), (), ())
    return RangeTable(np.array(starts, dtype), np.array(ends, dtype), np.array(codes, np.int16))


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered raw lines of a file, refusing huge files and overlong lines."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InputError(f"{path}: not a file")
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes; not read")
        with path.open("rb") as f:
            for number, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
                if len(raw) > MAX_LINE_BYTES:
                    raise InputError(
                        f"{path}: line {number}: longer than {MAX_LINE_BYTES} bytes; "
                        "not an RIR statistics file"
                    )
                yield number, raw
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


def _header(info: RirFile, fields: list[str], number: int) -> None:
    if len(fields) < 6 or not _VERSION.fullmatch(fields[0]):
        raise InputError(
            f"{info.path}: line {number}: not an RIR statistics file (expected a version line "
            "'version|registry|serial|records|startdate|enddate|UTCoffset')"
        )
    info.registry = fields[1]
    info.date = next((d for d in (fields[5], fields[2]) if _DATE.fullmatch(d)), "")


def _ip4(text: str) -> int:
    if not _IP4.fullmatch(text):  # also keeps inet_aton from reading 010 as octal
        raise ValueError(text)
    return int.from_bytes(socket.inet_aton(text), "big")


def _net6(text: str, prefix: str) -> tuple[int, int]:
    start, length = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big"), int(prefix)
    size = 1 << (128 - length) if 0 <= length <= 128 else 0
    if not size or start & (size - 1):
        raise ValueError(prefix)
    return start, start + size


def _record(fields: list[str], v4: Records, v6: Records) -> str | None:
    """Add one record's range; return a skip kind (``"+…"``), or a malformed reason."""
    if len(fields) == 6 and fields[5].strip() == "summary":
        return "+summary"
    if len(fields) < 7:
        return "too few fields"
    kind, status = fields[2].strip().lower(), fields[6].strip().lower()
    if kind == "asn":
        return "+asn"
    if kind not in ("ipv4", "ipv6"):
        return f"unknown type {fields[2][:20]!r}"
    if status in NOT_COUNTED:
        return "+" + status
    if status not in COUNTED:
        return f"unknown status {fields[6][:20]!r}"
    code = _CODES.get(fields[1].strip().upper(), 0)
    if code == 0:
        return f"no country {fields[1][:20]!r}"
    start_text, value = fields[3].strip(), fields[4].strip()
    try:
        if kind == "ipv4":
            start, count = _ip4(start_text), int(value)
            if count < 1 or start + count > 1 << 32:
                return f"bad address count {value[:20]!r}"
            v4.append((start, start + count, code))
        else:
            v6.append((*_net6(start_text, value), code))
    except (ValueError, OSError):
        return f"bad range {start_text[:45]!r} {value[:20]!r}"
    return None


def read_rir_file(path: Path, v4: Records, v6: Records) -> RirFile:
    """Read one statistics file, adding its counted ranges to ``v4`` and ``v6``."""
    info = RirFile(path=str(path))
    seen_header = False
    for number, raw in _lines(path):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            line = "\0"  # not a version line; a malformed record
        if not line or line.startswith("#"):
            continue
        fields = line.split("|")
        if not seen_header:
            _header(info, fields, number)
            seen_header = True
            continue
        reason = _record(fields, v4, v6) if line != "\0" else "not UTF-8"
        if reason is None:
            info.records += 1
        elif reason.startswith("+"):
            info.skipped[reason[1:]] += 1
        else:
            info.malformed += 1
            if len(info.examples) < 5:
                info.examples.append(f"line {number}: {reason}")
    if not seen_header:
        raise InputError(f"{path}: empty; not an RIR statistics file")
    return info


class RirSource:
    """Country allocations from RIR statistics files; the first file wins where they overlap.

    ``RirSource([apnic, arin])`` reads the files at once (a few seconds for all
    five registries) and holds the ranges in memory.
    """

    name = "rir"

    def __init__(self, paths: Iterable[str | Path]) -> None:
        files = [Path(p) for p in paths]
        if not files:
            raise InputError("rir: no statistics files given")
        v4: Records = []
        v6: Records = []
        self.files = [read_rir_file(p, v4, v6) for p in files]
        self._v4 = _table(v4, np.int64)
        self._v6 = _table(v6, object)
        self.overlaps = self._v4.overlaps + self._v6.overlaps
        """Records that overlap an earlier record (which keeps the overlapping addresses)."""
        self.conflicts = self._v4.conflicts + self._v6.conflicts
        """Of those, the records whose country differs from an earlier record's."""
        newest = max((f.date for f in self.files), default="")
        when = f"{newest[:4]}-{newest[4:6]}-{newest[6:]}" if newest else "undated"
        self.version = ",".join(p.name for p in files) + " " + when

    @property
    def malformed(self) -> int:
        """Malformed lines over all files."""
        return sum(f.malformed for f in self.files)

    def report(self) -> list[str]:
        """One line per file (records, skips, malformed lines) and one for overlaps."""
        out = []
        for f in self.files:
            skipped = ", ".join(f"{n} {k}" for k, n in sorted(f.skipped.items()))
            line = f"{f.path}: {f.registry or '?'} {f.date or 'undated'}: {f.records} records"
            line += f" ({skipped} skipped)" if skipped else ""
            if f.malformed:
                line += f"; {f.malformed} malformed lines ({'; '.join(f.examples)})"
            out.append(line)
        if self.overlaps:
            out.append(
                f"{self.overlaps} records overlap earlier ones ({self.conflicts} with another "
                "country); the earlier file or line wins"
            )
        return out

    def codes_ip4(self, ips: npt.NDArray[np.uint32]) -> npt.NDArray[np.int16]:
        """Country codes (into :data:`~teiten.enrich.country.COUNTRIES`) of integer IPv4s."""
        return self._v4.codes(ips.astype(np.int64))

    def lookup(self, addresses: list[str]) -> list[str | None]:
        """Two-letter codes (or None) for text addresses; text that is no address gives None."""
        if not addresses:
            return []
        ips, ok = parse_ip4_text(addresses)
        codes = self.codes_ip4(ips)
        slow = np.flatnonzero(~ok)
        if slow.shape[0]:
            codes[slow] = self._slow([addresses[i] for i in slow.tolist()])
        answers: list[str | None] = _ANSWERS[codes].tolist()
        return answers

    def _slow(self, texts: list[str]) -> npt.NDArray[np.int16]:
        """Codes of texts the fast parser left: IPv6, other IPv4 spellings, non-addresses."""
        codes = np.zeros(len(texts), np.int16)
        ips: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for i, text in enumerate(texts):
            try:  # inet_pton is quicker than ipaddress, which also reads scoped addresses
                ips[6].append((i, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")))
            except (OSError, ValueError):
                try:
                    ip = ipaddress.ip_address(text)
                    ips[ip.version].append((i, int(ip)))
                except ValueError:
                    pass
        for table, found in ((self._v4, ips[4]), (self._v6, ips[6])):
            if found:
                at, values = zip(*found, strict=True)
                codes[list(at)] = table.codes(np.array(values, table.starts.dtype))
        return codes
