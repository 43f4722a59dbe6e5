"""Payload classification throughput, and reassembly memory under a SYN flood.

    python bench/classify.py [--sessions 20000]

1. Classification (issue 3 target: ≥ 20,000 sessions/s per core). Sessions are
   the request samples of ``tests/data/requests/`` with a random token written
   into every request, so each one's bytes are distinct (the worst case: no
   cache hit), then the same set again through ``SessionStage`` as ingest
   sees it, where bots sending the same bytes to many addresses hit the cache.
   In the same run, YARA-X scans the same bytes with one rule per signature
   made of its literal strings: the floor for raw byte matching, with no
   parsing, decoding or indicator extraction.
2. Reassembly memory: one million concurrent half-open flows (SYNs from a
   million sources), then one million flows that each send 32 bytes, with a
   64 MiB cap; bytes held (payload plus the per-flow overhead the cap counts)
   and the peak memory tracemalloc sees (including the input batch) are
   reported, and the packet rate is timed in a separate run without tracing.

Run on one core (``taskset -c 0``) for per-core numbers.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from pathlib import Path

import numpy as np

from teiten.classify.classifier import classify
from teiten.classify.signatures import load_signatures
from teiten.decode.batch import PacketBatch, empty_columns
from teiten.enrich.country import CountryEnricher, IptoccSource
from teiten.flows.reassembly import Reassembler, Session
from teiten.pipeline.sessions import SessionStage

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "requests"


def sessions(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    base = [p.read_bytes() for p in sorted(SAMPLES.glob("*.http"))]
    out = []
    for i in range(n):
        body = base[i % len(base)]
        token = f"{rng.getrandbits(48):012x}".encode()
        out.append(
            body.replace(b"HTTP/1.1", b"HTTP/1.1", 1).replace(
                b"\r\n\r\n", b"\r\nX-Req: " + token + b"\r\n\r\n", 1
            )
        )
    return out


def yara_rules() -> str:
    rules = []
    for i, sig in enumerate(load_signatures().signatures):
        strings = [s for s in _literals(sig) if len(s) >= 4][:8]
        if not strings:
            continue
        body = "\n".join(f'    $s{j} = "{_yara_escape(s)}"' for j, s in enumerate(strings))
        rules.append(f"rule r{i} {{\n  strings:\n{body}\n  condition:\n    any of them\n}}")
    return "\n".join(rules)


def _literals(sig: object) -> list[str]:
    text = repr(sig)
    return sorted({m for m in __import__("re").findall(r"'([A-Za-z0-9_/.:#?=&-]{4,})'", text)})


def _yara_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def bench_classify(data: list[bytes]) -> dict[str, float]:
    sigs = load_signatures()
    classify(data[0], signatures=sigs)
    t = time.process_time()
    for b in data:
        classify(b, dst_port=80, signatures=sigs)
    distinct = len(data) / (time.process_time() - t)
    tables = SessionStage(CountryEnricher(IptoccSource()), 1, signatures=sigs)
    repeated = [data[i % 200] for i in range(len(data))]
    ss = [
        Session(
            6,
            4,
            bytes([1, 2, 3, i % 250]),
            bytes([203, 0, 113, 5]),
            40000,
            80,
            0,
            0,
            b,
            b"",
            len(b),
            3,
        )
        for i, b in enumerate(repeated)
    ]
    t = time.process_time()
    for k in range(0, len(ss), 5000):
        tables.tables(ss[k : k + 5000])
    cached = len(ss) / (time.process_time() - t)
    import yara_x

    scanner = yara_x.Scanner(yara_x.compile(yara_rules()))
    t = time.process_time()
    for b in data:
        scanner.scan(b)
    floor = len(data) / (time.process_time() - t)
    return {
        "classify distinct": distinct,
        "ingest rows, bot-like repeats": cached,
        "yara-x literal scan": floor,
    }


def _syn_batch(n: int, payload: int) -> tuple[PacketBatch, np.ndarray]:
    c = empty_columns(n)
    c["ip_version"][:], c["proto"][:] = 4, 6
    c["src_ip4"] = np.arange(n, dtype=np.uint32) + 0x01000000
    c["dst_ip4"][:] = 0xCB007105
    c["src_port"][:], c["dst_port"][:] = 40000, 23
    c["tcp_flags"][:] = 0x02 if payload == 0 else 0x18
    c["ts"] = np.arange(n, dtype=np.int64) * 1000
    c["is_outbound"] = np.zeros(n, bool)
    data = np.full(max(1, n * payload), ord("x"), np.uint8)
    offsets = np.arange(n, dtype=np.int64) * payload if payload else np.full(n, -1, np.int64)
    return PacketBatch(c, offsets, np.full(n, payload, np.uint32)), data


def bench_reassembly(n: int = 1_000_000) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, payload in (("half-open SYN flows", 0), ("flows with 32 bytes each", 32)):
        batch, data = _syn_batch(n, payload)
        r = Reassembler(memory_cap=64 << 20)
        start = time.perf_counter()
        sum(1 for _ in r.feed(batch, data))
        seconds = time.perf_counter() - start  # timed without tracemalloc's overhead
        r = Reassembler(memory_cap=64 << 20)
        tracemalloc.start()
        emitted = sum(1 for _ in r.feed(batch, data))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[f"{label}: held MiB"] = r.held / 2**20
        out[f"{label}: traced peak MiB"] = peak / 2**20
        out[f"{label}: flows open"] = float(len(r.flows))
        out[f"{label}: flows emitted early for memory"] = float(emitted)
        out[f"{label}: packets/s"] = n / seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20_000)
    args = ap.parse_args()
    for k, v in bench_classify(sessions(args.sessions)).items():
        print(f"{k}: {v:,.0f} sessions/s (CPU)")
    for k, v in bench_reassembly().items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
