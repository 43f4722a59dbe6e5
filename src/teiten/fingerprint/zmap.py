"""The ZMap SYN-scan fingerprint: the IPv4 identification is the constant 54321.

ZMap up to v4.0 sends every probe with ``ip_id = htons(54321)``. Since v4.1.0
(commit b0190cc, 2024-03-04, "Prevent fingerprinting ZMap by randomizing the
IP ID") the IP ID is taken from the per-target validation bits, so newer ZMap
scans do not match. A random SYN matches by chance with probability 2⁻¹⁶.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import Columns, Fingerprint

ZMAP_IP_ID = 54321


def is_zmap(c: Columns) -> npt.NDArray[np.bool_]:
    """IPv4 TCP SYN without ACK with ``ip_id == 54321``."""
    hit: npt.NDArray[np.bool_] = c["ip_id"] == ZMAP_IP_ID
    hit &= (c["tcp_flags"] & 0x12) == 0x02
    hit &= c["proto"] == 6
    hit &= c["ip_version"] == 4
    return hit


FINGERPRINT = Fingerprint(
    name="zmap",
    bit=1,
    title="ZMap ≤ v4.0 SYN scan: IPv4 ID = 54321 (v4.1+ randomises it)",
    source=(
        "zmap/zmap src/probe_modules/packet.c @ v2.1.1 (ip_id = htons(54321)); "
        "randomised from v4.1.0 by commit b0190cc (#798), src/send.c"
    ),
    predicate=is_zmap,
)
