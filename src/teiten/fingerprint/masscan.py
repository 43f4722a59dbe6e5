"""The Masscan SYN-scan fingerprint: the IPv4 ID is destination ^ port ^ sequence.

Masscan fills the IP identification of each probe with
``dst_ip ^ dst_port ^ seq`` truncated to 16 bits (``src/templ-pkt.c``). The
sequence number is its SipHash SYN cookie, so the relation holds for every
probe whatever the scan's entropy. A random SYN matches by chance with
probability 2⁻¹⁶.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import Columns, Fingerprint


def is_masscan(c: Columns) -> npt.NDArray[np.bool_]:
    """IPv4 TCP SYN without ACK with ``ip_id == (dst_ip4 ^ dst_port ^ tcp_seq) & 0xFFFF``."""
    low = c["dst_ip4"] ^ c["tcp_seq"]
    low ^= c["dst_port"]
    hit: npt.NDArray[np.bool_] = low.astype(np.uint16) == c["ip_id"]  # astype keeps the low 16 bits
    hit &= (c["tcp_flags"] & 0x12) == 0x02
    hit &= c["proto"] == 6
    hit &= c["ip_version"] == 4
    return hit


FINGERPRINT = Fingerprint(
    name="masscan",
    bit=2,
    title="Masscan SYN scan: IPv4 ID = (dst ^ dst_port ^ seq) & 0xFFFF",
    source="robertdavidgraham/masscan src/templ-pkt.c (ip_id = ip_them ^ port_them ^ seqno)",
    predicate=is_masscan,
)
