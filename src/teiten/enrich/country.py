"""Allocated country of each packet's source address, with a per-address cache.

A :class:`CountrySource` answers for a list of text addresses (the default is
the offline ``iptocc`` package: RIR allocation data, the seed report's
"addresses allocated to Japan"). :class:`CountryEnricher` puts a numba hash
table in front of it, so each distinct IPv4 source is looked up once and every
packet costs one probe.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from teiten.jit import kernel

# Country labels: code 0 is "unknown", then AA..ZZ.
COUNTRIES: list[str] = [""] + [chr(a) + chr(b) for a in range(65, 91) for b in range(65, 91)]


_CODES = {cc: i for i, cc in enumerate(COUNTRIES) if cc}


def codes_of(answers: list[str | None]) -> npt.NDArray[np.int16]:
    """Codes of a source's answers (two-letter codes, any case, or None)."""
    return np.array([(_CODES.get(a) or country_code(a)) if a else 0 for a in answers], np.int16)


def country_code(cc: str | None) -> int:
    """The int code of a two-letter country (``country_code("JP")``), 0 when unknown."""
    if not cc or len(cc) != 2 or not cc.isascii() or not cc.isalpha():
        return 0
    cc = cc.upper()
    return 1 + (ord(cc[0]) - 65) * 26 + (ord(cc[1]) - 65)


class CountrySource(Protocol):
    """Answers which country addresses are allocated to."""

    name: str
    version: str

    def lookup(self, addresses: list[str]) -> list[str | None]:
        """Two-letter codes (or None) for text IPv4/IPv6 addresses, in order."""
        ...


class IptoccSource:
    """Offline RIR allocation data compiled into the ``iptocc`` package (default)."""

    name = "iptocc"

    def __init__(self) -> None:
        from importlib import metadata  # 13 ms at import: only when a lookup is made

        import iptocc

        self._iptocc: Any = iptocc
        self.version = metadata.version("iptocc")

    def lookup(self, addresses: list[str]) -> list[str | None]:
        if not addresses:
            return []
        result: list[str | None] = self._iptocc.country_code(addresses)
        return result


@kernel(cache=True, nogil=True)
def _probe(
    keys: npt.NDArray[np.uint32],
    vals: npt.NDArray[np.int16],
    ips: npt.NDArray[np.uint32],
    out: npt.NDArray[np.int16],
    misses: npt.NDArray[np.int64],
) -> int:
    mask = np.uint64(keys.shape[0] - 1)
    nmiss = 0
    for i in range(ips.shape[0]):
        ip = ips[i]
        if ip == 0:
            out[i] = 0
            continue
        h = (np.uint64(ip) * np.uint64(2654435761)) & mask
        while True:
            k = keys[h]
            if k == ip:
                out[i] = vals[h]
                break
            if k == 0:
                out[i] = -1
                misses[nmiss] = i
                nmiss += 1
                break
            h = (h + np.uint64(1)) & mask
    return nmiss


@kernel(cache=True, nogil=True)
def _insert(
    keys: npt.NDArray[np.uint32],
    vals: npt.NDArray[np.int16],
    ips: npt.NDArray[np.uint32],
    codes: npt.NDArray[np.int16],
) -> int:
    mask = np.uint64(keys.shape[0] - 1)
    added = 0
    for i in range(ips.shape[0]):
        ip = ips[i]
        h = (np.uint64(ip) * np.uint64(2654435761)) & mask
        while keys[h] != 0 and keys[h] != ip:
            h = (h + np.uint64(1)) & mask
        if keys[h] == 0:
            added += 1
        keys[h] = ip
        vals[h] = codes[i]
    return added


def _unique(a: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    # np.unique in numpy 2.x hashes and is ~20x slower than sorting for this.
    s = np.sort(a)
    keep = np.empty(s.shape[0], np.bool_)
    keep[:1] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def ip4_text(ips: npt.NDArray[np.uint32]) -> list[str]:
    """Dotted-quad text of IPv4 addresses given as integers."""
    o = [((ips >> s) & 0xFF).tolist() for s in (24, 16, 8, 0)]
    return [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(*o, strict=True)]


class CountryEnricher:
    """Fills ``src_cc`` codes for a batch's sources, caching every address it looked up."""

    def __init__(self, source: CountrySource, *, cache_slots: int = 1 << 22) -> None:
        if cache_slots & (cache_slots - 1):
            raise ValueError("cache_slots must be a power of two")
        self.source = source
        self._keys = np.zeros(cache_slots, np.uint32)
        self._vals = np.zeros(cache_slots, np.int16)
        self._used = 0
        self.lookups = 0

    @property
    def description(self) -> str:
        return f"{self.source.name} {self.source.version}"

    def codes_ip4(self, ips: npt.NDArray[np.uint32]) -> npt.NDArray[np.int16]:
        """Country codes (into :data:`COUNTRIES`) of IPv4 addresses given as integers."""
        out = np.empty(ips.shape[0], np.int16)
        misses = np.empty(ips.shape[0], np.int64)
        nmiss = _probe(self._keys, self._vals, ips, out, misses)
        if nmiss == 0:
            return out
        missed = misses[:nmiss]
        new = _unique(ips[missed])
        text = ip4_text(new)
        self.lookups += len(text)
        codes = codes_of(self.source.lookup(text))
        out[missed] = codes[np.searchsorted(new, ips[missed])]
        capacity = len(self._keys) // 2  # keep the table at most half full
        if self._used + len(new) > capacity:
            self._keys[:] = 0
            self._used = 0
        if len(new) <= capacity:
            self._used += _insert(self._keys, self._vals, new, codes)
        return out

    def codes_ip6(self, ips: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
        """Country codes of IPv6 addresses as ``(n, 16)`` bytes, one lookup per distinct one."""
        if ips.shape[0] == 0:
            return np.zeros(0, np.int16)
        uniq, inv = np.unique(ips, axis=0, return_inverse=True)
        text = [str(ipaddress.IPv6Address(bytes(row))) for row in uniq]
        self.lookups += len(text)
        return codes_of(self.source.lookup(text))[inv.reshape(-1)]

    def fill(self, columns: dict[str, npt.NDArray[Any]]) -> None:
        """Set ``columns["src_cc"]`` (int32 codes into :data:`COUNTRIES`)."""
        version = columns["ip_version"]
        cc = self.codes_ip4(columns["src_ip4"]).astype(np.int32)
        v6 = version == 6
        if v6.any():
            cc[v6] = self.codes_ip6(columns["src_ip6"][v6])
        cc[(version != 4) & ~v6] = 0
        columns["src_cc"] = cc
