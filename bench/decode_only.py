"""teiten's decode + fingerprint + per-port aggregate path, without Parquet: the analysis ceiling.

Reads a capture with :func:`teiten.capture.open_source`, decodes each chunk
with :func:`teiten.decode.decoder.decode`, marks direction with the sensor
network, sets the fingerprint bits with :func:`teiten.fingerprint.registry.apply`
and keeps two numpy aggregates:

* inbound TCP SYNs (SYN set, ACK clear) per destination port (``np.bincount``);
* inbound packets per (fingerprint bit, destination port).

Prints one JSON object: packets, seconds from the first read to the last
aggregate (imports and numba's cache load excluded: every stage runs once on the
first chunk before the clock starts), the time spent in each
stage, the top ports and the packets per fingerprint. Run it with
``NUMBA_NUM_THREADS=1`` (and ``taskset -c 0``) for a one-core figure::

    python bench/decode_only.py bench/work/darknet-10M.pcap --sensor-net 198.18.0.0/15
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from teiten.capture import open_source
from teiten.decode.decoder import decode
from teiten.enrich.network import NetworkSet
from teiten.fingerprint import registry

PORTS = 1 << 16


def _warm_up(path: Path, nets: NetworkSet) -> None:
    """Run every stage once on the capture's first chunk, untimed: numba loads each
    kernel from its cache at the first call, a per-process cost like the imports."""
    for chunk in open_source(path).chunks():
        c = decode(chunk).columns
        nets.contains(c["ip_version"], c["src_ip4"], c["src_ip6"])
        registry.apply(c)
        break


def run(path: Path, sensor_nets: list[str]) -> dict[str, Any]:
    """Aggregate one capture; return the counts and the timings."""
    nets = NetworkSet(sensor_nets)
    fingerprints = registry.registered()
    _warm_up(path, nets)
    syn_ports = np.zeros(PORTS, np.int64)
    fp_ports = np.zeros((len(fingerprints), PORTS), np.int64)
    stage = dict.fromkeys(("read", "decode", "direction", "fingerprint", "aggregate"), 0.0)
    packets = 0
    start = last = time.perf_counter()
    for chunk in open_source(path).chunks():
        t0 = time.perf_counter()
        stage["read"] += t0 - last
        c = decode(chunk).columns
        t1 = time.perf_counter()
        inbound = ~nets.contains(c["ip_version"], c["src_ip4"], c["src_ip6"])
        t2 = time.perf_counter()
        fp = registry.apply(c)
        t3 = time.perf_counter()
        port = c["dst_port"]
        syn = inbound & (c["proto"] == 6) & ((c["tcp_flags"] & 0x12) == 0x02)
        syn_ports += np.bincount(port[syn], minlength=PORTS)
        for row, f in enumerate(fingerprints):
            hit = inbound & ((fp & np.uint32(f.mask)) != 0)
            fp_ports[row] += np.bincount(port[hit], minlength=PORTS)
        packets += len(port)
        last = time.perf_counter()
        stage["decode"] += t1 - t0
        stage["direction"] += t2 - t1
        stage["fingerprint"] += t3 - t2
        stage["aggregate"] += last - t3
    seconds = time.perf_counter() - start
    top = np.argsort(syn_ports)[::-1][:10]
    return {
        "packets": packets,
        "seconds": seconds,
        "packets_per_s": packets / seconds if seconds else 0.0,
        "stages": stage,
        "syn_top_ports": {int(p): int(syn_ports[p]) for p in top},
        "fingerprints": {f.name: int(fp_ports[row].sum()) for row, f in enumerate(fingerprints)},
        "mirai_23_2323": int(fp_ports[0][23] + fp_ports[0][2323]),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: aggregate a capture and print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--sensor-net", action="append", default=[], metavar="CIDR")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.capture, args.sensor_net)))


if __name__ == "__main__":
    main()
