"""``teiten enrich``: recompute the country and ASN columns of the stored data."""

from __future__ import annotations

from teiten.app.sketches import pack_lake
from teiten.config import Settings
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import CountryEnricher
from teiten.enrich.recompute import EnrichResult, country_coverage, rewrite_enrichment
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.errors import ConfigError
from teiten.store.lake import Lake


def recompute_enrichment(settings: Settings, *, force: bool = False) -> EnrichResult:
    """Re-enrich every committed packet, session and rollup file with the configured sources.

    Refuses (:class:`ConfigError`) when the country source would remove many
    countries (see :class:`~teiten.enrich.recompute.Coverage`), unless ``force``.
    """
    country = CountryEnricher(open_country_source(str(settings.country_source)))
    asn_source = open_asn_source(str(settings.asn_source))
    asn = AsnEnricher(asn_source) if asn_source is not None else None
    text = country.description + (f"; asn {asn.description}" if asn else "")
    with Lake(settings.data_dir) as lake:
        lake.lock()
        coverage = country_coverage(lake, country, str(settings.home_country))
        problem = coverage.problem(str(settings.home_country))
        if problem and not force:
            raise ConfigError(
                f"not re-enriching with {country.description}: {problem}. Give a source that"
                " covers every registry (rir:FILE,FILE,… with all five RIR files) or use --force"
            )
        result = rewrite_enrichment(lake, country, asn, text=text)
        pack_lake(lake, int(settings.pack_files))  # the rebuilt day tables, packed again
    result.coverage = coverage
    return result
