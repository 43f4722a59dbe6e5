"""Peer: a plain CPython ``struct`` loop over classic pcap records (no libraries).

Walks the memory-mapped file record by record, reads the Ethernet type, the
IPv4 header length and protocol, and for TCP the destination port, sequence
number and flags, counting packets per destination port and Mirai SYNs
(SYN without ACK, sequence number == destination address). Classic pcap
with Ethernet frames only (either byte order). Prints one JSON object::

    python bench/peer_struct.py bench/work/darknet-10M.pcap [--limit 1000000]
"""

from __future__ import annotations

import argparse
import json
import mmap
import struct
import time
from pathlib import Path
from typing import Any

IPV4 = 0x0800
TCP = 6


def run(path: Path, limit: int | None = None) -> dict[str, Any]:
    """Count one capture's TCP packets per destination port, and Mirai SYNs."""
    ports = [0] * 65536
    packets = tcp_packets = mirai = 0
    start = time.perf_counter()
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        magic = buf[:4]
        order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        record = struct.Struct(order + "8xI4x").unpack_from  # incl_len only
        ethertype = struct.Struct(">H").unpack_from
        ip_fields = struct.Struct(">B8xB6xI").unpack_from  # vihl, proto, dst
        tcp_fields = struct.Struct(">2xHI5xB").unpack_from  # dport, seq, flags
        end = len(buf)
        off = 24
        most = -1 if limit is None else limit
        while off + 16 <= end:
            if packets == most:
                break
            (incl,) = record(buf, off)
            frame = off + 16
            off = frame + incl
            packets += 1
            if incl < 34 or ethertype(buf, frame + 12)[0] != IPV4:
                continue
            vihl, proto, dst = ip_fields(buf, frame + 14)
            if proto != TCP:
                continue
            l4 = frame + 14 + (vihl & 0x0F) * 4
            if l4 + 14 > off:
                continue
            dport, seq, flags = tcp_fields(buf, l4)
            tcp_packets += 1
            ports[dport] += 1
            if flags & 0x12 == 0x02 and seq == dst:
                mirai += 1
    seconds = time.perf_counter() - start
    top = sorted(range(65536), key=ports.__getitem__, reverse=True)[:10]
    return {
        "packets": packets,
        "tcp_packets": tcp_packets,
        "mirai": mirai,
        "seconds": seconds,
        "packets_per_s": packets / seconds if seconds else 0.0,
        "top_ports": {p: ports[p] for p in top},
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: count a capture and print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--limit", type=int, default=None, help="stop after this many packets")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.capture, args.limit)))


if __name__ == "__main__":
    main()
