"""Recompute the country and ASN columns of stored data without re-reading captures.

``teiten enrich`` reads each committed Parquet file, looks its sources up in
the configured sources (say, the RIR delegation files of the capture's own
time), writes the file again with new ``src_cc`` bits (inside ``lens``),
``src_asn`` and ``src_as_org`` — every other column untouched, row order kept —
and swaps it in with an atomic rename. Each input's catalog entry records the
new enrichment. Readers see each file either before or after, never half.

Before writing anything it measures what the new country source would change
(:func:`country_coverage`): a source that covers less than the stored one —
one registry's file instead of all five, a truncated file — would silently
remove countries, and ``--split domestic`` would drop to nothing. It refuses
when more than :data:`MAX_LOSS` of the packets that have a country would have
none, or when the home country's packets would fall by more than
:data:`MAX_LOSS`, unless ``force`` is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from teiten.config import Settings
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import COUNTRIES, CountryEnricher, country_code
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.errors import ConfigError
from teiten.store.arrow import writer_options
from teiten.store.lake import Lake
from teiten.store.layout import PACKED

_LENS = next(p for p in PACKED if p.name == "lens")
_CC_SHIFT, _CC_BITS = next((sh, b) for c, sh, b in _LENS.shifts() if c == "src_cc")


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


def _sources(table: pa.Table) -> dict[str, Any]:
    n = table.num_rows
    ip6 = table.column("src_ip6").combine_chunks()
    valid = ~np.asarray(ip6.is_null().to_numpy(zero_copy_only=False), bool)
    six = np.zeros((n, 16), np.uint8)
    if valid.any():
        six[valid] = np.frombuffer(
            b"".join(v for v in ip6.to_pylist() if v is not None), np.uint8
        ).reshape(-1, 16)
    version = np.where(valid, 6, 4).astype(np.uint8)
    return {"ip_version": version, "src_ip4": table.column("src_ip4").to_numpy(), "src_ip6": six}


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
    for path in lake.files("packets"):
        table = pq.read_table(path, columns=["src_ip4", "src_ip6", "lens"], partitioning=None)
        lens = table.column("lens").to_numpy().astype(np.int64)
        before = (lens >> _CC_SHIFT) & ((1 << _CC_BITS) - 1)
        c = _sources(table)
        country.fill(c)
        after = c["src_cc"]
        had, gone = before != 0, (before != 0) & (after == 0)
        cov.packets += table.num_rows
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


def _recompute(table: pa.Table, country: CountryEnricher, asn: AsnEnricher | None) -> pa.Table:
    c = _sources(table)
    country.fill(c)
    lens = table.column("lens").to_numpy().astype(np.int64)
    mask = np.int64(((1 << _CC_BITS) - 1) << _CC_SHIFT)
    lens = (lens & ~mask) | (c["src_cc"].astype(np.int64) << _CC_SHIFT)
    table = table.set_column(table.schema.get_field_index("lens"), "lens", pa.array(lens))
    if asn is not None:
        asn.fill(c)
        i = table.schema.get_field_index("src_asn")
        table = table.set_column(i, "src_asn", pa.array(c["src_asn"].astype(np.uint32)))
        j = table.schema.get_field_index("src_as_org")
        org = pa.DictionaryArray.from_arrays(pa.array(c["src_as_org"], pa.int32()), list(asn.orgs))
        table = table.set_column(j, table.schema.field(j), org)
    return table


def _rewrite(path: str, table: pa.Table, **options: Any) -> None:
    tmp = path + ".enrich-tmp"
    pq.write_table(table, tmp, **options)
    os.replace(tmp, path)


def recompute_enrichment(settings: Settings, *, force: bool = False) -> EnrichResult:
    """Re-enrich every committed packet and session file with the configured sources.

    Refuses (:class:`ConfigError`) when the country source would remove many
    countries (see :class:`Coverage`), unless ``force``.
    """
    country = CountryEnricher(open_country_source(str(settings.country_source)))
    asn_source = open_asn_source(str(settings.asn_source))
    asn = AsnEnricher(asn_source) if asn_source is not None else None
    text = country.description + (f"; asn {asn.description}" if asn else "")
    files = packets = sessions = 0
    with Lake(settings.data_dir) as lake:
        lake.lock()
        coverage = country_coverage(lake, country, str(settings.home_country))
        problem = coverage.problem(str(settings.home_country))
        if problem and not force:
            raise ConfigError(
                f"not re-enriching with {country.description}: {problem}. Give a source that"
                " covers every registry (rir:FILE,FILE,… with all five RIR files) or use --force"
            )
        for path in lake.files("packets"):
            table = pq.read_table(path, partitioning=None)
            options = {**writer_options(), "row_group_size": max(table.num_rows, 1)}
            _rewrite(str(path), _recompute(table, country, asn), **options)
            files, packets = files + 1, packets + table.num_rows
        for path in lake.files("sessions"):
            table = pq.read_table(path, partitioning=None)
            ip4 = table.column("src_ip4").to_numpy()
            codes = country.codes_ip4(ip4)
            cc = [COUNTRIES[int(x)] if v else "" for x, v in zip(codes, ip4 != 0, strict=True)]
            i = table.schema.get_field_index("src_cc")
            _rewrite(
                str(path),
                table.set_column(i, "src_cc", pa.array(cc, pa.string())),
                compression="zstd",
            )
            files, sessions = files + 1, sessions + table.num_rows
        lake.catalog.set_enrichment(text)
    return EnrichResult(files, packets, sessions, text, coverage)
