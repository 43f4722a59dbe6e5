"""Sets of IP networks tested against address columns: the sensor's own networks."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from teiten.errors import ConfigError


class NetworkSet:
    """IPv4 and IPv6 networks, tested against columns without a per-packet loop.

    >>> nets = NetworkSet(["203.0.113.0/24"])
    >>> nets.contains_ip4(np.array([0xCB007105, 0x08080808], np.uint32)).tolist()
    [True, False]
    """

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.v4: list[tuple[int, int]] = []
        self.v6: list[tuple[bytes, int]] = []
        self.cidrs: list[str] = []
        for text in cidrs:
            try:
                net = ipaddress.ip_network(str(text).strip(), strict=False)
            except ValueError:
                raise ConfigError(
                    f"not a network: {text!r} (expected a CIDR such as 203.0.113.0/24)"
                ) from None
            self.cidrs.append(str(net))
            if net.version == 4:
                self.v4.append((int(net.network_address), int(net.netmask)))
            else:
                self.v6.append((net.network_address.packed, net.prefixlen))

    def __bool__(self) -> bool:
        return bool(self.cidrs)

    def contains_ip4(self, ips: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
        out = np.zeros(ips.shape[0], np.bool_)
        for net, mask in self.v4:
            out |= (ips & np.uint32(mask)) == np.uint32(net)
        return out

    def contains_ip6(self, ips: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
        """Membership of ``(n, 16)`` byte addresses."""
        out = np.zeros(ips.shape[0], np.bool_)
        for packed, plen in self.v6:
            net = np.frombuffer(packed, np.uint8)
            full, rest = divmod(plen, 8)
            hit = (ips[:, :full] == net[:full]).all(axis=1)
            if rest:
                m = np.uint8((0xFF << (8 - rest)) & 0xFF)
                hit &= (ips[:, full] & m) == (net[full] & m)
            out |= hit
        return out

    def contains(
        self,
        ip_version: npt.NDArray[np.uint8],
        ip4: npt.NDArray[np.uint32],
        ip6: npt.NDArray[np.uint8],
    ) -> npt.NDArray[np.bool_]:
        """Membership of a batch's addresses (one side: src or dst columns)."""
        out = np.zeros(ip_version.shape[0], np.bool_)
        if self.v4:
            out |= self.contains_ip4(ip4) & (ip_version == 4)
        if self.v6:
            v6 = ip_version == 6
            if v6.any():
                out[v6] = self.contains_ip6(ip6[v6])
        return out
