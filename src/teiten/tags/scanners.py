"""Lists of known scanners by their published source ranges: the shipped list, and operators'.

The shipped list is ``data/scanners.toml`` (research scanners, each entry citing
the page its ranges come from); operators add their own files in the same format
through the ``tag_files`` setting. Every file is checked whole when it is read:
a broken one is one :class:`~teiten.errors.ConfigError` line naming the file and
the entry, never a traceback and never a half-read list.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.errors import ConfigError
from teiten.tags.model import CLASSES, Tag

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

SHIPPED = "scanners.toml"
"""The shipped list, in the package's ``data`` folder."""
MAX_TEXT = 500
"""Longest name, source, note accepted from a file (characters)."""
MAX_RANGES = 100_000
"""Most ranges one file may list."""
_KEYS = {"name", "category", "ranges", "source", "checked", "note"}


@dataclass(frozen=True)
class Scanner:
    """One organisation's scanner: its ranges and where they were published."""

    name: str
    category: str
    """``benign`` (a research scanner), ``malicious`` or ``unknown``."""
    ranges: tuple[Net, ...]
    source: str
    """The page that publishes the ranges."""
    checked: str
    """When the ranges were last compared with that page (YYYY-MM-DD)."""
    origin: str
    """``data:scanners.toml`` for the shipped list, ``file:NAME`` for an operator's file."""
    note: str = ""


def _text(entry: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = entry.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{key!r} must be {'non-empty ' if required else ''}text")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{key!r} is longer than {MAX_TEXT} characters")
    return value.strip()


def _checked(value: Any) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError("'checked' must be a date (YYYY-MM-DD)")


def _ranges(value: Any) -> tuple[Net, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("'ranges' must be a non-empty list of CIDRs")
    out: list[Net] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"range {item!r} is not text")
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=True))
        except ValueError:
            raise ValueError(
                f"range {item[:80]!r} is not a CIDR (host bits must be zero)"
            ) from None
    return tuple(out)


def _scanner(entry: Any, origin: str) -> Scanner:
    if not isinstance(entry, dict):
        raise ValueError("each [[scanner]] must be a table")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0][:40]!r} (known: {', '.join(sorted(_KEYS))})")
    category = entry.get("category")
    if category not in CLASSES:
        raise ValueError(f"'category' must be one of {', '.join(CLASSES)}")
    return Scanner(
        name=_text(entry, "name"),
        category=str(category),
        ranges=_ranges(entry.get("ranges")),
        source=_text(entry, "source"),
        checked=_checked(entry.get("checked")),
        origin=origin,
        note=_text(entry, "note", required=False),
    )


def parse_scanners(text: str, origin: str) -> list[Scanner]:
    """The scanners of one file's text; ``ValueError`` (one line) naming the entry if broken."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"not valid TOML: {e}") from None
    extra = sorted(set(doc) - {"scanner"})
    if extra:
        raise ValueError(f"unknown top-level key {extra[0][:40]!r} (expected [[scanner]] tables)")
    entries = doc.get("scanner", [])
    if not isinstance(entries, list):
        raise ValueError("'scanner' must be an array of tables ([[scanner]])")
    out: list[Scanner] = []
    for i, entry in enumerate(entries, 1):
        try:
            out.append(_scanner(entry, origin))
        except ValueError as e:
            raise ValueError(f"scanner {i}: {e}") from None
    if sum(len(s.ranges) for s in out) > MAX_RANGES:
        raise ValueError(f"more than {MAX_RANGES:,} ranges")
    return out


def read_scanner_file(path: Path) -> list[Scanner]:
    """The scanners of an operator's file; a broken or unreadable file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"tag file {path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"tag file {path}: not UTF-8 text") from None
    try:
        return parse_scanners(text, f"file:{path.name}")
    except ValueError as e:
        raise ConfigError(f"tag file {path}: {e}") from None


def shipped_scanners() -> list[Scanner]:
    """The shipped list (read through importlib.resources, so it works installed or editable)."""
    text = resources.files("teiten.tags").joinpath("data", SHIPPED).read_text(encoding="utf-8")
    return parse_scanners(text, f"data:{SHIPPED}")


class ScannerList:
    """Scanners by range: which ones an address (or many IPv4 addresses) falls in."""

    def __init__(self, scanners: Iterable[Scanner]) -> None:
        self.scanners = tuple(scanners)
        pairs = [(s, n) for s in self.scanners for n in s.ranges]
        self._v4 = [(s, n) for s, n in pairs if n.version == 4]
        self._v6 = [(s, n) for s, n in pairs if n.version == 6]
        self._low4 = np.array([int(n.network_address) for _, n in self._v4], np.int64)
        self._high4 = np.array([int(n.broadcast_address) for _, n in self._v4], np.int64)

    def __len__(self) -> int:
        return len(self.scanners)

    def matching(self, ip: IP) -> list[tuple[Scanner, Net]]:
        """Each scanner whose ranges hold ``ip``, with the (narrowest) range that does."""
        pairs = self._v4 if ip.version == 4 else self._v6
        best: dict[int, tuple[Scanner, Net]] = {}
        for s, n in pairs:
            if ip in n and (id(s) not in best or n.prefixlen > best[id(s)][1].prefixlen):
                best[id(s)] = (s, n)
        return list(best.values())

    def tags(self, ip: IP) -> list[Tag]:
        """A tag per scanner whose ranges hold ``ip``, citing the range and its source."""
        out = []
        for s, n in self.matching(ip):
            evidence = f"in {n}, a range {s.name} publishes ({s.source}, checked {s.checked})"
            out.append(Tag(f"scanner:{s.name}", s.category, evidence, s.origin))
        return out

    def category_mask4(
        self, a4: npt.NDArray[np.integer[Any]], category: str
    ) -> npt.NDArray[np.bool_]:
        """For many IPv4 addresses (integers) at once: whether each lies in a range of a
        scanner of ``category``."""
        addresses = np.asarray(a4, np.int64)
        hit = np.zeros(addresses.shape[0], np.bool_)
        for i, (s, _) in enumerate(self._v4):
            if s.category == category:
                hit |= (addresses >= self._low4[i]) & (addresses <= self._high4[i])
        return hit


def load_scanners(paths: Sequence[Path] = ()) -> ScannerList:
    """The shipped list plus the operators' files, in that order."""
    found = shipped_scanners()
    for path in paths:
        found += read_scanner_file(Path(path))
    return ScannerList(found)
