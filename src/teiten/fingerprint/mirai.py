"""The Mirai SYN-scan fingerprint: the TCP sequence number equals the destination address.

Mirai's scanner writes the probe's IPv4 destination into the TCP sequence
number (``tcph->seq = iph->daddr``, both in network byte order), so the two
decoded 32-bit values are equal. A random SYN matches by chance with
probability 2⁻³². The telescope analysis of Antonakakis et al. identified
Mirai scanning by this signature.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import Columns, Fingerprint


def is_mirai(c: Columns) -> npt.NDArray[np.bool_]:
    """IPv4 TCP SYN without ACK whose ``tcp_seq`` equals ``dst_ip4``."""
    hit: npt.NDArray[np.bool_] = c["tcp_seq"] == c["dst_ip4"]
    hit &= (c["tcp_flags"] & 0x12) == 0x02
    hit &= c["proto"] == 6
    hit &= c["ip_version"] == 4
    return hit


FINGERPRINT = Fingerprint(
    name="mirai",
    bit=0,
    title="Mirai SYN scan: TCP sequence number = destination IPv4 address",
    source=(
        "jgamblin/Mirai-Source-Code mirai/bot/scanner.c (tcph->seq = iph->daddr); "
        "Antonakakis et al., Understanding the Mirai Botnet, USENIX Security 2017"
    ),
    predicate=is_mirai,
)
