"""Spec strings open the right enrichment sources, and bad specs fail in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from teiten.enrich.country import COUNTRIES, CountryEnricher, IptoccSource
from teiten.enrich.mmdb import MmdbAsnSource, MmdbCountrySource
from teiten.enrich.rir import RirSource
from teiten.enrich.sources import open_asn_source, open_country_source, parse_spec
from teiten.errors import ConfigError, InputError, TeitenError

DATA = Path(__file__).resolve().parents[1] / "data" / "enrich"
APNIC = DATA / "delegated-apnic-extended-latest"
ARIN = DATA / "delegated-arin-extended-latest"


def test_parse_spec() -> None:
    assert parse_spec("") == parse_spec(" IPTOCC ") == ("iptocc", [])
    assert parse_spec(f"rir:{APNIC}, {ARIN},") == ("rir", [APNIC, ARIN])
    assert parse_spec("mmdb:~/a,b.mmdb") == ("mmdb", [Path("~/a,b.mmdb").expanduser()])
    assert parse_spec("none") == ("none", [])


def test_country_sources() -> None:
    assert isinstance(open_country_source(), IptoccSource)
    assert isinstance(open_country_source("iptocc"), IptoccSource)
    rir = open_country_source(f"rir:{APNIC},{ARIN}")
    assert isinstance(rir, RirSource)
    assert rir.version.startswith("delegated-apnic-extended-latest,delegated-arin-extended-latest")
    mmdb = open_country_source(f"mmdb:{DATA / 'country.mmdb'}")
    assert isinstance(mmdb, MmdbCountrySource)
    assert mmdb.lookup(["1.0.16.1"]) == ["JP"]
    mmdb.close()


def test_enricher_over_rir_source() -> None:
    e = CountryEnricher(open_country_source(f"rir:{APNIC},{ARIN}"), cache_slots=1 << 8)
    codes = e.codes_ip4(np.array([0x01001001, 0x03000001, 0x09090909], np.uint32))
    assert [COUNTRIES[c] for c in codes] == ["JP", "US", ""]
    assert e.description.startswith("rir delegated-apnic-extended-latest,")


def test_asn_sources() -> None:
    assert open_asn_source("iptocc") is None
    assert open_asn_source("none") is None
    assert open_asn_source("rir:/no/such/file") is None  # RIR files hold no AS of addresses
    s = open_asn_source(f"mmdb:{DATA / 'asn.mmdb'}")
    assert isinstance(s, MmdbAsnSource)
    assert s.lookup(["1.0.16.1"]) == [(64496, "Example Net Japan")]
    s.close()


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("geoip:x.dat", ConfigError, "unknown enrichment source 'geoip:x.dat'"),
        ("rir:", ConfigError, "no file named"),
        ("rir: , ", ConfigError, "no file named"),
        ("mmdb:", ConfigError, "no file named"),
        ("iptocc:/tmp/x", ConfigError, "takes no path"),
        ("none", ConfigError, "gives no country"),
        ("rir:/no/such/delegated-apnic-latest", InputError, "no such file"),
        ("mmdb:/no/such/GeoLite2-Country.mmdb", InputError, "no such file"),
    ],
)
def test_bad_country_specs(spec: str, error: type[TeitenError], message: str) -> None:
    with pytest.raises(error, match=message) as info:
        open_country_source(spec)
    assert "\n" not in str(info.value)


def test_bad_asn_specs() -> None:
    with pytest.raises(ConfigError, match="expected iptocc, rir:PATH"):
        open_asn_source("whois")
    with pytest.raises(InputError, match="no such file"):
        open_asn_source("mmdb:/no/such/GeoLite2-ASN.mmdb")
