"""The spoofed-source fingerprint: a source address that cannot be a real sender.

Flags packets whose source equals their destination, or lies in space that
is never routed on the public Internet as a source (RFC 6890 special-purpose
registries): IPv4 0/8 and 127/8 (RFC 1122), 10/8, 172.16/12, 192.168/16
(RFC 1918), 100.64/10 (RFC 6598), 169.254/16 (RFC 3927), 224/4 multicast
(RFC 5771), 240/4 reserved and 255.255.255.255 (RFC 1112, RFC 919); IPv6
``::`` and ``::1`` (RFC 4291), fc00::/7 (RFC 4193), fe80::/10 and ff00::/8
(RFC 4291). Such packets are suspects, not proof: a sensor inside a private
network legitimately sees RFC 1918 sources.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import Columns, Fingerprint

BOGONS4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "127.0.0.0/8",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
)  # 255.255.255.255 lies in 240/4
BOGONS6 = ("::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8")  # as coded in _spoofed6


def _top16_table(networks: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    """Lookup table over an IPv4 address's top 16 bits: true inside ``networks`` (/16 or wider)."""
    table = np.zeros(1 << 16, np.bool_)
    for text in networks:
        net = ipaddress.IPv4Network(text)
        first = int(net.network_address) >> 16
        table[first : first + (net.num_addresses >> 16)] = True
    return table


_TABLE4 = _top16_table(BOGONS4)
_LOOPBACK6 = np.frombuffer(ipaddress.IPv6Address("::1").packed, np.uint64)  # native words


def _spoofed4(c: Columns) -> npt.NDArray[np.bool_]:
    src = c["src_ip4"]
    hit: npt.NDArray[np.bool_] = _TABLE4.take((src >> 16).astype(np.intp))
    hit |= src == c["dst_ip4"]
    hit &= c["ip_version"] == 4
    return hit


def _spoofed6(src: npt.NDArray[np.uint8], dst: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Rows of two ``(m, 16)`` address arrays that are equal or have a bogon source."""
    a, b = src[:, 0], src[:, 1]
    hit: npt.NDArray[np.bool_] = (a & 0xFE) == 0xFC  # fc00::/7
    hit |= (a == 0xFE) & ((b & 0xC0) == 0x80)  # fe80::/10
    hit |= a == 0xFF  # ff00::/8
    words, other = src.view(np.uint64), dst.view(np.uint64)
    high_zero = words[:, 0] == 0
    hit |= high_zero & ((words[:, 1] == 0) | (words[:, 1] == _LOOPBACK6[1]))  # :: and ::1
    hit |= (words[:, 0] == other[:, 0]) & (words[:, 1] == other[:, 1])
    return hit


def is_spoofed_suspect(c: Columns) -> npt.NDArray[np.bool_]:
    """Source equals destination, or the source is in bogon / special-purpose space."""
    hit = _spoofed4(c)
    rows6 = np.flatnonzero(c["ip_version"] == 6)
    if rows6.size == hit.size:  # an IPv6-only block: no gathering
        return _spoofed6(*(np.ascontiguousarray(c[k]) for k in ("src_ip6", "dst_ip6")))
    if rows6.size:  # test only those rows (np.take gathers rows far faster than [])
        hit[rows6] = _spoofed6(*(np.take(c[k], rows6, axis=0) for k in ("src_ip6", "dst_ip6")))
    return hit


FINGERPRINT = Fingerprint(
    name="spoofed_suspect",
    bit=5,
    title="Spoofed source suspect: src = dst, or a bogon / special-purpose source",
    source=(
        "RFC 6890 special-purpose registries (RFC 1122, 1918, 6598, 3927, 5771, 1112, 919; "
        "IPv6 RFC 4291, 4193); cf. CAIDA corsaro3 libcorsaro/libcorsaro_filtering.c"
    ),
    predicate=is_spoofed_suspect,
)
