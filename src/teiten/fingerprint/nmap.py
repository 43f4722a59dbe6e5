"""The Nmap SYN-scan fingerprint: window 1024 and a single MSS 1460 option.

Nmap's raw SYN probes use a TCP window of 1024 when none is set and carry one
option, MSS 1460 (``\\x02\\x04\\x05\\xb4``), so the options are 4 bytes long.
The IP ID and source port vary, so they are not part of the test. Applies to
IPv4 and IPv6.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import Columns, Fingerprint


def is_nmap_syn(c: Columns) -> npt.NDArray[np.bool_]:
    """TCP SYN without ACK, window 1024, 4 bytes of options holding MSS 1460."""
    hit: npt.NDArray[np.bool_] = c["tcp_window"] == 1024
    hit &= c["tcp_mss"] == 1460
    hit &= c["tcp_options_len"] == 4
    hit &= (c["tcp_flags"] & 0x12) == 0x02
    hit &= c["proto"] == 6
    return hit


FINGERPRINT = Fingerprint(
    name="nmap_syn",
    bit=3,
    title="Nmap SYN scan: window 1024, only option MSS 1460",
    source="nmap/nmap tcpip.cc L604-607 (window 1024, MSS 1460 option), nmap.h L163",
    predicate=is_nmap_syn,
)
