from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from teiten.enrich.network import NetworkSet
from teiten.errors import ConfigError


@given(
    st.lists(st.integers(0, 2**32 - 1), max_size=50), st.integers(0, 2**32 - 1), st.integers(0, 32)
)
def test_ip4_membership_matches_ipaddress(ips: list[int], base: int, plen: int) -> None:
    net = ipaddress.ip_network((base, plen), strict=False)
    got = NetworkSet([str(net)]).contains_ip4(np.array(ips, np.uint32))
    assert got.tolist() == [ipaddress.ip_address(i) in net for i in ips]


@given(
    st.lists(st.binary(min_size=16, max_size=16), max_size=20),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 128),
)
def test_ip6_membership_matches_ipaddress(ips: list[bytes], base: bytes, plen: int) -> None:
    net = ipaddress.ip_network((base, plen), strict=False)
    arr = np.frombuffer(b"".join(ips), np.uint8).reshape(-1, 16)
    got = NetworkSet([str(net)]).contains_ip6(arr)
    assert got.tolist() == [ipaddress.IPv6Address(i) in net for i in ips]


def test_mixed_batch() -> None:
    nets = NetworkSet(["203.0.113.0/24", "2001:db8::/32"])
    version = np.array([4, 4, 6, 6], np.uint8)
    ip4 = np.array([0xCB007101, 0x01020304, 0, 0], np.uint32)
    ip6 = np.zeros((4, 16), np.uint8)
    ip6[2, :4] = [0x20, 0x01, 0x0D, 0xB8]
    assert nets.contains(version, ip4, ip6).tolist() == [True, False, True, False]


def test_bad_cidr() -> None:
    with pytest.raises(ConfigError, match="not a network"):
        NetworkSet(["203.0.113.0/33"])
