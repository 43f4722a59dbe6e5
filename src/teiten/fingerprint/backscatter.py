"""The backscatter fingerprint: replies that answer traffic the sensor never sent.

A darknet sends nothing, so a SYN-ACK, a RST or an ICMP error or echo reply
arriving there answers a packet someone else sent with a spoofed source in
the darknet: the victim of a spoofed-source flood replying to the forged
addresses (Moore, Voelker and Savage, "Inferring Internet Denial-of-Service
Activity", USENIX Security 2001).

Counted as replies: TCP with SYN and ACK set; TCP with RST set (with or
without ACK); ICMP echo reply 0, destination unreachable 3, source quench 4,
redirect 5, time exceeded 11, parameter problem 12 (RFC 792); ICMPv6
destination unreachable 1, packet too big 2, time exceeded 3, parameter
problem 4 and echo reply 129 (RFC 4443). The decoder stores the ICMP type in
``src_port``. A non-first fragment carries no ICMP header (its ``src_port``
0 is not an echo reply), so it never counts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import Columns, Fingerprint

ICMP_REPLY_TYPES = (0, 3, 4, 5, 11, 12)
ICMPV6_REPLY_TYPES = (1, 2, 3, 4, 129)
_ICMP_TYPE_BITS = np.uint16(sum(1 << t for t in ICMP_REPLY_TYPES))  # all types < 16


def _icmp_reply(types: npt.NDArray[np.uint16]) -> npt.NDArray[np.bool_]:
    """ICMP type in :data:`ICMP_REPLY_TYPES` (numpy shifts by ≥ 16 give 0)."""
    hit: npt.NDArray[np.bool_] = (np.right_shift(_ICMP_TYPE_BITS, types) & 1) != 0
    return hit


def _icmpv6_reply(types: npt.NDArray[np.uint16]) -> npt.NDArray[np.bool_]:
    """ICMPv6 type in :data:`ICMPV6_REPLY_TYPES`: errors 1–4 or echo reply 129."""
    hit: npt.NDArray[np.bool_] = (types - np.uint16(1)) < 4  # wraps for type 0
    hit |= types == 129
    return hit


def is_backscatter(c: Columns) -> npt.NDArray[np.bool_]:
    """TCP SYN-ACK or RST, or an ICMP / ICMPv6 error or echo reply."""
    proto, flags, types = c["proto"], c["tcp_flags"], c["src_port"]
    hit: npt.NDArray[np.bool_] = (flags & 0x12) == 0x12
    hit |= (flags & 0x04) != 0
    hit &= proto == 6
    icmp = _icmp_reply(types) & (proto == 1)
    icmp |= _icmpv6_reply(types) & (proto == 58)
    hit |= icmp & ((c["ip_frag"] & 0x1FFF) == 0)  # a later fragment has no ICMP header
    return hit


FINGERPRINT = Fingerprint(
    name="backscatter",
    bit=4,
    title="Backscatter: TCP SYN-ACK/RST, ICMP errors and echo replies",
    source=(
        "Moore, Voelker, Savage, Inferring Internet Denial-of-Service Activity, "
        "USENIX Security 2001; ICMP types RFC 792, ICMPv6 types RFC 4443"
    ),
    predicate=is_backscatter,
)
