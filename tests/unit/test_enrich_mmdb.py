"""MaxMind DB sources (country, AS) on the repo's small .mmdb files, and the AS enricher."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import numpy as np
import pytest

from teiten.decode.batch import empty_columns
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.mmdb import MmdbAsnSource, MmdbCountrySource, asn_of, country_of
from teiten.errors import DependencyError, EnrichmentError, InputError

DATA = Path(__file__).resolve().parents[1] / "data" / "enrich"


def test_country_lookup() -> None:
    with MmdbCountrySource(DATA / "country.mmdb") as s:
        assert (s.name, s.version) == ("mmdb", "GeoLite2-Country 2024-05-21")
        cases = {
            "1.0.16.5": "JP",
            "1.0.1.1": "CN",
            "3.4.1.1": "US",
            "3.5.1.1": "DE",  # geolocated to DE, registered to US: country wins
            "5.1.2.3": "DE",  # registered_country only
            "9.9.9.9": None,
            "2001:200::5": "JP",
            "2003:1::": "DE",
            "2600::1": None,
            "bogus": None,
            "": None,
        }
        assert s.lookup(list(cases)) == list(cases.values())
        assert s.lookup([]) == []


def test_asn_lookup() -> None:
    with MmdbAsnSource(DATA / "asn.mmdb") as s:
        assert s.version == "GeoLite2-ASN 2024-05-21"
        assert s.lookup(["1.0.16.5", "3.5.0.1", "5.1.0.1", "9.9.9.9", "2001:200::1", "x"]) == [
            (64496, "Example Net Japan"),
            (64498, "Example Cloud"),
            (64499, None),
            (None, None),
            (64496, "Example Net Japan"),
            (None, None),
        ]


def test_other_vendors_keys_and_ipv4_only_file() -> None:
    with MmdbCountrySource(DATA / "vendor.mmdb") as c, MmdbAsnSource(DATA / "vendor.mmdb") as a:
        addresses = ["1.0.16.1", "1.0.1.1", "3.1.1.1", "2001:200::1"]
        assert c.lookup(addresses) == ["JP", "CN", "US", None]  # IPv6 in an IPv4-only file
        assert a.lookup(addresses) == [
            (64496, "Example Net Japan"),
            (None, None),
            (64498, "Example Cloud"),
            (None, None),
        ]


def test_record_keys() -> None:
    assert country_of({"country": {"iso_code": "jp"}}) == "JP"
    assert country_of({"country": {}, "registered_country": {"iso_code": "US"}}) == "US"
    assert country_of({"country": {"iso_code": "Japan"}, "country_code": "JP"}) == "JP"
    assert country_of({"continent": {"code": "AS"}}) is None
    assert asn_of({"asn": "as64496", "as_name": " Org "}) == (64496, "Org")
    assert asn_of({"traits": {"autonomous_system_number": 64500, "organization": "T"}}) == (
        64500,
        "T",
    )
    assert asn_of({"asn": True, "as_org": ""}) == (None, None)
    assert asn_of({"asn": 2**32}) == (None, None)
    assert asn_of({"as_number": "AS12x"}) == (None, None)


def test_missing_and_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        MmdbCountrySource(tmp_path / "absent.mmdb")
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database" * 10)
    with pytest.raises(InputError, match=rf"^{bad}: not a MaxMind DB file$"):
        MmdbAsnSource(bad)


def test_dependency_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "maxminddb", None)  # import maxminddb → ImportError
    with pytest.raises(DependencyError, match=r"teiten\[mmdb\]"):
        MmdbCountrySource(DATA / "country.mmdb")


class FakeAsn:
    """AS by first octet, counting lookups."""

    name = "fake"
    version = "1"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup(self, addresses: list[str]) -> list[tuple[int | None, str | None]]:
        self.asked += addresses
        table = {"1": (64496, "One"), "2": (64497, "Two"), "3": (64497, None)}
        return [table.get(a.split(".")[0], (None, None)) for a in addresses]


def test_asn_enricher_caches_and_codes() -> None:
    src = FakeAsn()
    e = AsnEnricher(src, cache_slots=1 << 8)
    ips = np.array([0x01000001, 0x02000002, 0x01000001, 0x03000003, 0x09000009, 0], np.uint32)
    for _ in range(2):
        asn, org = e.codes_ip4(ips)
        assert asn.tolist() == [64496, 64497, 64496, 64497, 0, 0]
        assert [e.orgs[o] for o in org] == ["One", "Two", "One", "", "", ""]
    assert sorted(src.asked) == ["1.0.0.1", "2.0.0.2", "3.0.0.3", "9.0.0.9"]
    assert e.orgs == ["", "One", "Two"] and e.description == "fake 1"


def test_asn_enricher_cache_reset_and_growth() -> None:
    e = AsnEnricher(FakeAsn(), cache_slots=1 << 4)
    ips = np.arange(0x01000000, 0x01000000 + 50, dtype=np.uint32)
    for _ in range(3):
        assert (e.codes_ip4(ips)[0] == 64496).all()
    for i in range(600):  # more distinct (asn, org) pairs than the first tables hold
        e._row((i + 1, f"org {i % 300}"))
    assert len(e.orgs) == 302 and e.codes_ip4(ips[:1])[0].tolist() == [64496]
    row = e._row((600, "org 299"))
    assert row > 256 and (e._asn[row], e.orgs[e._org[row]]) == (600, "org 299")


def test_asn_enricher_fill_with_mmdb() -> None:
    c = empty_columns(4)
    c["ip_version"][:] = [4, 6, 0, 4]
    c["src_ip4"][:] = [0x01001005, 0, 0x01001005, 0x09090909]
    c["src_ip6"][1] = np.frombuffer(ipaddress.IPv6Address("2001:200::1").packed, np.uint8)
    with MmdbAsnSource(DATA / "asn.mmdb") as s:
        e = AsnEnricher(s)
        e.fill(c)
    assert c["src_asn"].dtype == np.uint32 and c["src_asn"].tolist() == [64496, 64496, 0, 0]
    assert [e.orgs[o] for o in c["src_as_org"]] == ["Example Net Japan"] * 2 + ["", ""]
    assert e.lookups == 3 and e.description == "mmdb GeoLite2-ASN 2024-05-21"


BAD_DATA = Path(__file__).resolve().parents[3] / "shared/corpus/country/maxmind-test-data/bad-data"
BAD_FILES = sorted(BAD_DATA.rglob("*.mmdb")) if BAD_DATA.is_dir() else []


@pytest.mark.skipif(not BAD_FILES, reason="../shared/corpus is absent")
@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.name)
def test_fuzzer_found_broken_files_give_a_clear_error_or_work(path: Path) -> None:
    """Opening is checked up front; a lookup that reaches damage raises EnrichmentError."""
    for kind in (MmdbCountrySource, MmdbAsnSource):
        try:
            source = kind(path)
        except InputError as e:  # cannot be opened at all
            assert str(e) == f"{path}: not a MaxMind DB file"
            continue
        except EnrichmentError as e:
            assert str(e).startswith(f"{path}: damaged MaxMind DB file (")
            assert "\n" not in str(e)
            continue
        with source:  # what the probes missed: every lookup either answers or says damaged
            for a in ("1.1.1.1", "128.0.0.1", "255.255.255.254", "::1", "2001:db8::"):
                try:
                    source.lookup([a])
                except EnrichmentError as e:
                    assert "damaged MaxMind DB file" in str(e)


@pytest.mark.skipif(not BAD_FILES, reason="../shared/corpus is absent")
def test_most_broken_files_are_refused_when_opened() -> None:
    refused = 0
    for path in BAD_FILES:
        try:
            MmdbCountrySource(path).close()
        except (InputError, EnrichmentError):
            refused += 1
    # 21 files; four hold damage no lookup reaches (e.g. metadata maps ending early)
    assert refused >= len(BAD_FILES) - 4


def test_damage_found_during_lookups_is_an_enrichment_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import maxminddb

    with MmdbCountrySource(DATA / "country.mmdb") as s:

        def broken(text: str) -> None:
            raise maxminddb.InvalidDatabaseError("The MaxMind DB file's search tree is corrupt")

        real = s._reader
        monkeypatch.setattr(s, "_reader", type("R", (), {"get": staticmethod(broken)})())
        with pytest.raises(EnrichmentError, match=r"damaged MaxMind DB file .*search tree"):
            s.lookup(["1.2.3.4"])
        s._reader = real
