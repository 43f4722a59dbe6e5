"""Distinct payloads classified per second, one core (issue 14 target: ≥ 50,000/s).

    taskset -c 0 python bench/distinct_payloads.py CAPTURE [--sensor-net 198.18.0.0/15]

Reads a capture (e.g. one of ``bench/gen_mix.py``'s mixes), reassembles it as
ingest does and collects the distinct (client bytes, server port, server bytes)
keys of its sessions — what a verdict depends on — then times one fresh
:class:`~teiten.classify.session.SessionClassifier` over them, each key once, so
no cache can help: the rate at which ingest classifies payloads it has not seen
(per wall second and per CPU second of this process; the two differ on a busy machine).
A cProfile of the same loop (``--profile``) says where the time goes.

``--save-verdicts FILE`` writes every verdict (the classification's ``repr``, which
holds every field — kind, signatures, CVEs, indicators in order, requests, Telnet
lines, logins, notes — and the ``sessions`` columns, typed evidence and cut count);
``--check-verdicts FILE`` compares this code's verdicts with such a file, key by key,
and exits non-zero on the first difference. Run the first with an older tree on
``PYTHONPATH`` to show a speed-up changed no result.
"""

from __future__ import annotations

import argparse
import cProfile
import pickle
import pstats
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teiten.capture import open_source
from teiten.classify.session import SessionClassifier, Verdict
from teiten.decode.decoder import decode
from teiten.enrich.network import NetworkSet
from teiten.flows.reassembly import Reassembler

Key = tuple[bytes, int, bytes]


def distinct_keys(capture: Path, nets: NetworkSet) -> tuple[list[Key], int]:
    """The distinct payload keys of a capture's sessions, in first-seen order, and the
    number of sessions."""
    keys: dict[Key, None] = {}
    sessions = 0
    r = Reassembler()
    for chunk in open_source(capture).chunks():
        if not len(chunk):
            continue
        batch = decode(chunk)
        c = batch.columns
        c["is_outbound"] = nets.contains(c["ip_version"], c["src_ip4"], c["src_ip6"])
        for s in r.feed(batch, chunk.data):
            keys.setdefault((s.client_bytes, s.server_port, s.server_bytes))
            sessions += 1
    for s in r.flush():
        keys.setdefault((s.client_bytes, s.server_port, s.server_bytes))
        sessions += 1
    return list(keys), sessions


def verdict_record(v: Verdict) -> tuple[str, dict[str, Any], dict[str, Any], int]:
    """Everything a verdict says, as plain data that compares by value."""
    return repr(v.classification), v.columns, v.evidence, v.cut


def save_verdicts(path: Path, keys: Sequence[Key], verdicts: Sequence[Verdict]) -> None:
    """Write ``keys`` and their verdicts' records to ``path``."""
    with open(path, "wb") as f:
        pickle.dump((list(keys), [verdict_record(v) for v in verdicts]), f)


def check_verdicts(path: Path, keys: Sequence[Key], verdicts: Sequence[Verdict]) -> int:
    """How many verdicts equal those saved in ``path`` for the same keys; raises
    SystemExit naming the first key whose verdict differs."""
    with open(path, "rb") as f:
        saved_keys, saved = pickle.load(f)  # a file this bench wrote
    if list(saved_keys) != list(keys):
        raise SystemExit(f"{path}: saved for other keys ({len(saved_keys)} vs {len(keys)})")
    for i, (key, want, v) in enumerate(zip(keys, saved, verdicts, strict=True)):
        got = verdict_record(v)
        if got != want:
            field = next(n for n, a, b in zip(("classification", "columns", "evidence", "cut"),
                                              got, want, strict=True) if a != b)  # fmt: skip
            raise SystemExit(f"verdict {i} differs in {field}: key {key[0][:80]!r}, port {key[1]}")
    return len(saved)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--sensor-net", action="append", default=[])
    ap.add_argument("--profile", action="store_true", help="print the top functions too")
    ap.add_argument("--save-verdicts", type=Path, help="write every verdict to this file")
    ap.add_argument("--check-verdicts", type=Path, help="compare every verdict with this file")
    args = ap.parse_args()
    nets = NetworkSet(args.sensor_net or ["198.18.0.0/15"])
    keys, sessions = distinct_keys(args.capture, nets)
    classifier = SessionClassifier()
    classifier.verdict(b"GET / HTTP/1.1\r\n\r\n", 80, b"")  # signatures loaded, parsers warm
    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        profile.enable()
    start, cpu = time.perf_counter(), time.process_time()
    verdicts = [classifier.verdict(*key) for key in keys]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if profile is not None:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    sizes = np.array([len(k[0]) + len(k[2]) for k in keys])
    print(
        f"{args.capture.name}: {sessions:,} sessions, {len(keys):,} distinct payloads "
        f"(median {int(np.median(sizes)) if len(sizes) else 0} bytes) classified in "
        f"{seconds:.2f} s wall, {cpu:.2f} s CPU: {len(keys) / seconds:,.0f} distinct payloads/s "
        f"(wall), {len(keys) / max(cpu, 1e-9):,.0f} per CPU-second"
    )
    if args.save_verdicts:
        save_verdicts(args.save_verdicts, keys, verdicts)
    if args.check_verdicts:
        n = check_verdicts(args.check_verdicts, keys, verdicts)
        print(f"{n:,} verdicts equal those in {args.check_verdicts}", file=sys.stderr)


if __name__ == "__main__":
    main()
