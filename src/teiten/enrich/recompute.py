"""Recompute the country and ASN columns of stored data without re-reading captures.

``teiten enrich`` reads each committed Parquet file, looks its sources up in
the configured sources (say, the RIR delegation files of the capture's own
time), writes the file again with new ``src_cc`` bits (inside ``lens``),
``src_asn`` and ``src_as_org`` — every other column untouched, row order kept —
and swaps it in with an atomic rename. Each input's catalog entry records the
new enrichment. Readers see each file either before or after, never half.
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
from teiten.enrich.country import COUNTRIES, CountryEnricher
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.store.arrow import writer_options
from teiten.store.lake import Lake
from teiten.store.layout import PACKED

_LENS = next(p for p in PACKED if p.name == "lens")
_CC_SHIFT, _CC_BITS = next((sh, b) for c, sh, b in _LENS.shifts() if c == "src_cc")


@dataclass
class EnrichResult:
    files: int
    packets: int
    sessions: int
    enrichment: str


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


def recompute_enrichment(settings: Settings) -> EnrichResult:
    """Re-enrich every committed packet and session file with the configured sources."""
    country = CountryEnricher(open_country_source(str(settings.country_source)))
    asn_source = open_asn_source(str(settings.asn_source))
    asn = AsnEnricher(asn_source) if asn_source is not None else None
    text = country.description + (f"; asn {asn.description}" if asn else "")
    files = packets = sessions = 0
    with Lake(settings.data_dir) as lake:
        lake.lock()
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
    return EnrichResult(files, packets, sessions, text)
