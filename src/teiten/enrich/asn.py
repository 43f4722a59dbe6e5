"""Autonomous system of each packet's source address, with a per-address cache.

An :class:`AsnSource` answers ``(AS number, organisation)`` for text addresses
(:class:`~teiten.enrich.mmdb.MmdbAsnSource` reads a GeoLite2-ASN-style
database). :class:`AsnEnricher` keeps the answers per IPv4 address in the same
numba hash table as :class:`~teiten.enrich.country.CountryEnricher` and fills
two columns: ``src_asn`` (uint32, 0 unknown) and ``src_as_org`` (int32 codes
into the growing label table :attr:`AsnEnricher.orgs`, code 0 unknown).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from teiten.enrich.country import _insert, _probe, _unique, ip4_text

MAX_ASN = (1 << 32) - 1

# CountryEnricher's hash-table kernels, annotated for int16 codes; numba compiles
# them once more for the int32 rows kept here.
_probe_rows: Any = _probe
_insert_rows: Any = _insert

Answer = tuple[int | None, str | None]
"""An AS number (or None) and its organisation's name (or None)."""


class AsnSource(Protocol):
    """Answers which autonomous system announces addresses."""

    name: str
    version: str

    def lookup(self, addresses: list[str]) -> list[Answer]:
        """``(asn, organisation)`` for text IPv4/IPv6 addresses, in order; None when unknown."""
        ...


class AsnEnricher:
    """Fills ``src_asn`` and ``src_as_org`` for a batch's sources, caching each address's answer.

    The cache maps an IPv4 address to a *row*: one distinct ``(asn, org code)``
    pair, row 0 being ``(0, 0)``, unknown.
    """

    def __init__(self, source: AsnSource, *, cache_slots: int = 1 << 22) -> None:
        if cache_slots & (cache_slots - 1):
            raise ValueError("cache_slots must be a power of two")
        self.source = source
        self.orgs: list[str] = [""]
        """Organisation names; ``src_as_org`` codes index this list (0 is unknown)."""
        self.lookups = 0
        self._org_codes: dict[str, int] = {}
        self._rows: dict[tuple[int, int], int] = {(0, 0): 0}
        self._asn = np.zeros(256, np.uint32)
        self._org = np.zeros(256, np.int32)
        self._keys = np.zeros(cache_slots, np.uint32)
        self._vals = np.zeros(cache_slots, np.int32)
        self._used = 0

    @property
    def description(self) -> str:
        return f"{self.source.name} {self.source.version}"

    def org_code(self, org: str | None) -> int:
        """The code of an organisation's name in :attr:`orgs`, added if new; 0 for none."""
        name = org.strip() if isinstance(org, str) else ""
        if not name:
            return 0
        code = self._org_codes.get(name)
        if code is None:
            code = self._org_codes[name] = len(self.orgs)
            self.orgs.append(name)
        return code

    def _row(self, answer: Answer) -> int:
        asn, org = answer
        number = asn if isinstance(asn, int) and 0 < asn <= MAX_ASN else 0
        key = (number, self.org_code(org))
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = len(self._rows)
            if row >= self._asn.shape[0]:
                self._asn = np.concatenate([self._asn, np.zeros_like(self._asn)])
                self._org = np.concatenate([self._org, np.zeros_like(self._org)])
            self._asn[row], self._org[row] = key
        return row

    def _ask(self, text: list[str]) -> npt.NDArray[np.int32]:
        self.lookups += len(text)
        return np.array([self._row(a) for a in self.source.lookup(text)], np.int32)

    def rows_ip4(self, ips: npt.NDArray[np.uint32]) -> npt.NDArray[np.int32]:
        """Rows of IPv4 addresses given as integers, asking the source only for new ones."""
        out = np.empty(ips.shape[0], np.int32)
        misses = np.empty(ips.shape[0], np.int64)
        nmiss = _probe_rows(self._keys, self._vals, ips, out, misses)
        if nmiss == 0:
            return out
        missed = misses[:nmiss]
        new = _unique(ips[missed])
        rows = self._ask(ip4_text(new))
        out[missed] = rows[np.searchsorted(new, ips[missed])]
        capacity = len(self._keys) // 2  # keep the table at most half full
        if self._used + len(new) > capacity:
            self._keys[:] = 0
            self._used = 0
        if len(new) <= capacity:
            self._used += _insert_rows(self._keys, self._vals, new, rows)
        return out

    def rows_ip6(self, ips: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
        """Rows of IPv6 addresses as ``(n, 16)`` bytes, one lookup per distinct one."""
        if ips.shape[0] == 0:
            return np.zeros(0, np.int32)
        uniq, inv = np.unique(ips, axis=0, return_inverse=True)
        rows = self._ask([str(ipaddress.IPv6Address(bytes(row))) for row in uniq])
        return rows[inv.reshape(-1)]

    def codes_ip4(
        self, ips: npt.NDArray[np.uint32]
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]:
        """AS numbers and organisation codes of IPv4 addresses given as integers."""
        rows = self.rows_ip4(ips)
        return self._asn[rows], self._org[rows]

    def codes_ip6(
        self, ips: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]:
        """AS numbers and organisation codes of IPv6 addresses as ``(n, 16)`` bytes."""
        rows = self.rows_ip6(ips)
        return self._asn[rows], self._org[rows]

    def fill(self, columns: dict[str, npt.NDArray[Any]]) -> None:
        """Set ``columns["src_asn"]`` (uint32) and ``columns["src_as_org"]`` (int32 codes)."""
        version = columns["ip_version"]
        rows = self.rows_ip4(columns["src_ip4"])
        v6 = version == 6
        if v6.any():
            rows[v6] = self.rows_ip6(columns["src_ip6"][v6])
        rows[(version != 4) & ~v6] = 0
        columns["src_asn"] = self._asn[rows]
        columns["src_as_org"] = self._org[rows]
