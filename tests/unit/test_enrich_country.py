"""Country enrichment: codes, the per-address cache, and a fake source as the test double."""

from __future__ import annotations

import ipaddress

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from teiten.decode.batch import empty_columns
from teiten.enrich.country import (
    COUNTRIES,
    CountryEnricher,
    IptoccSource,
    country_code,
    ip4_text,
)


class FakeSource:
    """Country by first octet, counting lookups."""

    name = "fake"
    version = "1"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup(self, addresses: list[str]) -> list[str | None]:
        self.asked += addresses
        return [
            "JP" if a.startswith("1.") else None if a.startswith("9.") else "US" for a in addresses
        ]


def test_codes() -> None:
    assert COUNTRIES[country_code("JP")] == "JP"
    assert country_code("jp") == country_code("JP")
    assert country_code(None) == country_code("") == country_code("J1") == 0
    assert len(COUNTRIES) == 677


@given(st.lists(st.integers(0, 2**32 - 1), max_size=30))
def test_ip4_text(ips: list[int]) -> None:
    assert ip4_text(np.array(ips, np.uint32)) == [str(ipaddress.IPv4Address(i)) for i in ips]


def test_each_address_looked_up_once() -> None:
    src = FakeSource()
    e = CountryEnricher(src, cache_slots=1 << 8)
    ips = np.array([0x01000001, 0x02000002, 0x01000001, 0x09000009, 0], np.uint32)
    codes = e.codes_ip4(ips)
    assert [COUNTRIES[c] for c in codes] == ["JP", "US", "JP", "", ""]
    e.codes_ip4(ips)
    assert sorted(src.asked) == ["1.0.0.1", "2.0.0.2", "9.0.0.9"]  # 0.0.0.0 is never asked


def test_cache_full_is_reset_not_wrong() -> None:
    src = FakeSource()
    e = CountryEnricher(src, cache_slots=1 << 4)
    ips = np.arange(0x01000000, 0x01000000 + 50, dtype=np.uint32)
    for _ in range(3):
        assert all(COUNTRIES[c] == "JP" for c in e.codes_ip4(ips))


def test_fill_mixed_versions() -> None:
    c = empty_columns(3)
    c["ip_version"][:] = [4, 6, 0]
    c["src_ip4"][:] = [0x01000001, 0, 0x01000001]
    c["src_ip6"][1] = np.frombuffer(ipaddress.IPv6Address("2001:db8::1").packed, np.uint8)
    CountryEnricher(FakeSource()).fill(c)
    assert [COUNTRIES[x] for x in c["src_cc"]] == ["JP", "US", ""]


def test_iptocc_default_source() -> None:
    s = IptoccSource()
    assert s.lookup(["1.0.16.1", "192.0.2.1"]) == ["JP", None]
    assert s.version
