"""The Nmap SYN-scan fingerprint: window 1024–4096 and a single MSS 1460 option.

Nmap's raw SYN probes carry one option, MSS 1460 (``\\x02\\x04\\x05\\xb4``), so
the options are 4 bytes long, and a TCP window of 1024 when none is set; real
nmap scans (nDPI's ``synscan.pcap``: 1,994 probes of one scan) also use 2048,
3072 and 4096 with the same single option — 424, 520, 512 and 538 probes of
each. Operating-system stacks send several options (SACK, timestamps, window
scale), so a connect() scan or an ordinary client does not match. The IP ID
and source port vary, so they are not part of the test. Applies to IPv4 and
IPv6.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import Columns, Fingerprint

WINDOWS = (1024, 2048, 3072, 4096)
"""Windows of nmap's raw SYN probes."""


def is_nmap_syn(c: Columns) -> npt.NDArray[np.bool_]:
    """TCP SYN without ACK, window 1024/2048/3072/4096, 4 bytes of options holding MSS 1460."""
    window = c["tcp_window"]
    # The four windows are exactly the multiples of 1024 from 1024 to 4096.
    hit: npt.NDArray[np.bool_] = (window & 0x03FF) == 0
    hit &= (window >= 1024) & (window <= 4096)
    hit &= c["tcp_mss"] == 1460
    hit &= c["tcp_options_len"] == 4
    hit &= (c["tcp_flags"] & 0x12) == 0x02
    hit &= c["proto"] == 6
    return hit


FINGERPRINT = Fingerprint(
    name="nmap_syn",
    bit=3,
    title="Nmap SYN scan: window 1024, 2048, 3072 or 4096, only option MSS 1460",
    source=(
        "nmap/nmap tcpip.cc L604-607 (window 1024, MSS 1460 option), nmap.h L163; "
        "windows 2048-4096 seen in real nmap scans (ntop/nDPI tests synscan.pcap)"
    ),
    predicate=is_nmap_syn,
)
