"""Recompute the country and ASN columns of stored data without re-reading captures.

``teiten enrich`` asks the store to rewrite every committed packet, session and
``port_hours`` rollup file with new ``src_cc`` (and, with an ASN source, ``src_asn`` and
``src_as_org``) computed from each row group's source addresses — say, with the
RIR delegation files of the capture's own time. It passes only that function
of the logical columns (:func:`teiten.store.rewrite.rewrite_table`); the store
keeps every other column, the row order and the row groups, and swaps all the
files and each input's recorded enrichment in one catalog commit. Readers see
the data either before or after, never half.

Before writing anything it measures what the new country source would change
(:func:`country_coverage`): a source that covers less than the stored one —
one registry's file instead of all five, a truncated file — would silently
remove countries, and ``--split domestic`` would drop to nothing. It refuses
when more than :data:`MAX_LOSS` of the packets that have a country would have
none, or when the home country's packets would fall by more than
:data:`MAX_LOSS`, unless ``force`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import COUNTRIES, CountryEnricher, country_code
from teiten.store.lake import Lake
from teiten.store.rewrite import Change, Columns, read_columns, rewrite_table
from teiten.store.sketch import SketchCut, rebuild

_SOURCES = ("ip_version", "src_ip4", "src_ip6")


MAX_LOSS = 0.10
"""Largest share of country-known packets that may lose their country (and of home-country
packets that may leave the home country) before ``enrich`` refuses without ``force``."""


@dataclass
class Coverage:
    """What a country source would change in the stored packets, before anything is written."""

    packets: int = 0
    known_before: int = 0
    """Packets whose source has a country now."""
    known_after: int = 0
    lost: int = 0
    """Packets whose source has a country now and would have none."""
    sources_known_before: int = 0
    sources_lost: int = 0
    home_before: int = 0
    """Packets from the home country now."""
    home_after: int = 0

    @property
    def lost_share(self) -> float:
        return self.lost / self.known_before if self.known_before else 0.0

    @property
    def home_loss(self) -> float:
        if not self.home_before:
            return 0.0
        return max(0, self.home_before - self.home_after) / self.home_before

    def problem(self, home_country: str) -> str | None:
        """Why this change looks like a mistake, or None when it looks like a correction."""
        parts = []
        if self.lost_share > MAX_LOSS:
            parts.append(
                f"{self.lost_share:.1%} of the packets that have a country now "
                f"({self.lost:,} of {self.known_before:,}; {self.sources_lost:,} of "
                f"{self.sources_known_before:,} sources) would have none"
            )
        if self.home_loss > MAX_LOSS:
            parts.append(
                f"packets from {home_country} (domestic) would fall from "
                f"{self.home_before:,} to {self.home_after:,}"
            )
        return "; ".join(parts) or None


@dataclass
class EnrichResult:
    files: int
    packets: int
    sessions: int
    enrichment: str
    coverage: Coverage | None = None


def _source_keys(c: dict[str, Any]) -> np.ndarray[Any, Any]:
    """One 16-byte key per row: the IPv6 source, or the IPv4 one as ::ffff:a.b.c.d."""
    keys: np.ndarray[Any, Any] = c["src_ip6"].copy()
    v4 = c["ip_version"] == 4
    keys[v4, 10:12] = 0xFF
    keys[v4, 12:16] = c["src_ip4"][v4].astype(">u4").view(np.uint8).reshape(-1, 4)
    return np.ascontiguousarray(keys).view("V16").reshape(-1)


def country_coverage(lake: Lake, country: CountryEnricher, home_country: str) -> Coverage:
    """How many stored packets and sources would keep, gain or lose a country with ``country``."""
    cov = Coverage()
    home = country_code(home_country)
    known: list[np.ndarray[Any, Any]] = []
    lost: list[np.ndarray[Any, Any]] = []
    for c in read_columns(lake, "packets", (*_SOURCES, "src_cc")):
        before = c.pop("src_cc")
        country.fill(c)
        after = c["src_cc"]
        had, gone = before != 0, (before != 0) & (after == 0)
        cov.packets += len(before)
        cov.known_before += int(had.sum())
        cov.known_after += int((after != 0).sum())
        cov.lost += int(gone.sum())
        cov.home_before += int((before == home).sum())
        cov.home_after += int((after == home).sum())
        keys = _source_keys(c)
        known.append(np.unique(keys[had]))
        lost.append(np.unique(keys[gone]))
    if known:
        cov.sources_known_before = len(np.unique(np.concatenate(known)))
        cov.sources_lost = len(np.unique(np.concatenate(lost)))
    return cov


def _country_change(country: CountryEnricher, asn: AsnEnricher | None) -> Change:
    """The new country (and ASN) columns of rows, from their source addresses."""

    def change(c: Columns) -> Columns:
        sources = {k: c[k] for k in ("ip_version", "src_ip4", "src_ip6")}
        country.fill(sources)
        out = {"src_cc": sources["src_cc"]}
        if asn is not None:
            asn.fill(sources)
            out["src_asn"] = sources["src_asn"].astype(np.uint32)
            out["src_as_org"] = sources["src_as_org"]
        return out

    return change


def _rollup_change(country: CountryEnricher, asn: AsnEnricher | None) -> Change:
    """The same change for ``port_hours`` rows (no AS name column; ``src_cc`` as its code)."""
    packets = _country_change(country, asn)

    def change(c: Columns) -> Columns:
        out = packets(c)
        out.pop("src_as_org", None)
        return out

    return change


def rewrite_enrichment(
    lake: Lake, country: CountryEnricher, asn: AsnEnricher | None, *, text: str
) -> EnrichResult:
    """Rewrite every committed packet, session, ``port_hours`` and ``source_ports`` file of
    a locked lake with new country (and ASN) columns, all files and the enrichment text
    in one commit.

    The rollup rows carry their source address, so their country and ASN come
    from the same function as the packets'; the rollups keep answering as the
    packets do (``address_hours`` has no source columns). The day sketches
    (by country and by segment) are rebuilt from those rows in the same commit."""
    change = _country_change(country, asn)
    labels = {"src_cc": COUNTRIES, "src_as_org": asn.orgs if asn is not None else []}
    with lake.rewriting() as tx:  # every file and the enrichment text: one commit
        packets = rewrite_table(tx, "packets", change, reads=_SOURCES, labels=labels)
        sessions = rewrite_table(
            tx, "sessions", _country_change(country, None), reads=_SOURCES, labels=labels
        )
        rewrite_table(tx, "port_hours", _rollup_change(country, asn), reads=_SOURCES)
        rewrite_table(tx, "source_ports", change, reads=_SOURCES, labels=labels)
        zone, home = lake.day_zone(), lake.sketch_home()
        if zone is not None and home is not None:  # the sketches, with the new countries
            rebuild(tx, SketchCut(zone, country_code(home)), _rollup_change(country, asn))
        tx.commit_replacements(enrichment=text)
    return EnrichResult(packets.files + sessions.files, packets.rows, sessions.rows, text)
