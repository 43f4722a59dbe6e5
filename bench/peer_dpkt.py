"""Peer: the usual Python loop with dpkt, counting TCP packets per destination port and Mirai SYNs.

``dpkt.pcap.Reader`` → ``Ethernet`` → ``IP`` → ``TCP``; a packet is a Mirai
probe when it is a SYN without ACK whose sequence number equals its
destination address. Prints one JSON object (packets, TCP packets, Mirai
SYNs, seconds, top ports). ``--limit N`` stops after N packets::

    python bench/peer_dpkt.py bench/work/darknet-10M.pcap [--limit 1000000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import dpkt


def run(path: Path, limit: int | None = None) -> dict[str, Any]:
    """Count one capture's TCP packets per destination port, and Mirai SYNs."""
    ports = [0] * 65536
    packets = tcp_packets = mirai = 0
    start = time.perf_counter()
    with path.open("rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            if limit is not None and packets >= limit:
                break
            packets += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            tcp_packets += 1
            ports[tcp.dport] += 1
            if tcp.flags & 0x12 == 0x02 and tcp.seq == int.from_bytes(ip.dst, "big"):
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
