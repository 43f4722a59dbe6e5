"""Precision and recall of every fingerprint on labelled real captures.

    python bench/fingerprints.py ../shared/corpus/pcap [--markdown] [--hits]

Decodes every capture under the given paths (files, directories, globs) with
teiten's own reader and decoder, applies the registered fingerprints, and
counts per fingerprint and file the packets that matched.

Ground truth is :data:`TRUTH`: for the listed files, how many packets of each
fingerprint's tool (or kind) the file holds, established by reading the
packets with tshark (the notes say how). Every other file is taken to hold
none, so any match there is a false positive. Per fingerprint, over all
files: true positives = min(matches, truth), false positives = matches above
the truth, false negatives = truth above the matches; precision = TP/(TP+FP),
recall = TP/(TP+FN) ("—" where the denominator is 0). Files teiten cannot read
are counted and skipped.

``backscatter`` and ``spoofed_suspect`` flag kinds of packets, not tools: at a
darknet nothing is solicited, so every SYN-ACK, RST or ICMP error there is
backscatter, but in the lab and client captures that make up most of the
corpus they are ordinary replies; and private sources are normal on a LAN.
Their "false positives" outside the labelled files measure that, not a flaw
of the test.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from teiten.capture import open_source
from teiten.capture.files import expand_paths
from teiten.decode.decoder import decode
from teiten.errors import TeitenError
from teiten.fingerprint import registry

TRUTH: dict[str, dict[str, int]] = {
    # nmap -sS against one host: every one of the 1,994 pure SYNs from 172.16.0.8
    # is a raw nmap probe (windows 1024/2048/3072/4096, option MSS 1460 only).
    "ndpi/default/pcap/synscan.pcap": {"nmap_syn": 1994},
    # An unprivileged-looking nmap run: host discovery and port 445 by connect()
    # (the OS's SYNs: window 65535, five options), then one raw SYN to 3389
    # (frame 17: window 1024, MSS 1460 only). Only the raw probe is nmap_syn.
    "ndpi/default/pcap/tcp_scan.pcapng": {"nmap_syn": 1},
    # Two real Internet Mirai SYNs (seq = destination address), per the corpus README.
    "suricata-verify/mac-eve-packet/test.pcap": {"mirai": 2},
    # A reflection attack seen at its victim, incoming only: 6,651 SYN-ACKs, 813 RSTs,
    # 205 RST-ACKs and 16 ICMP errors (tshark -T fields -e tcp.flags.str -e icmp.type).
    "stopddos/amp.TCP.reflection.SYNACK.pcap": {"backscatter": 7685},
}
"""Path suffix (under the corpus's ``pcap/`` folder) → fingerprint → packets of it."""

NEGATIVE = ("slips/test7-malicious.pcap",)
"""Files that must give no tool fingerprint at all: connect() Telnet scans (OS SYNs)."""

TOOLS = ("mirai", "zmap", "masscan", "nmap_syn")


def truth_for(path: Path) -> dict[str, int]:
    """The labelled counts of the file whose path ends with a :data:`TRUTH` key."""
    text = path.as_posix()
    for suffix, counts in TRUTH.items():
        if text.endswith("/" + suffix) or text == suffix:
            return counts
    return {}


def count(path: Path) -> Counter[str]:
    """Packets per fingerprint name in one capture (raises TeitenError if unreadable)."""
    fps = registry.registered()
    out: Counter[str] = Counter()
    for chunk in open_source(path).chunks():
        fp = registry.apply(decode(chunk).columns)
        for f in fps:
            n = int(np.count_nonzero(fp & np.uint32(f.mask)))
            if n:
                out[f.name] += n
    return out


def evaluate(paths: list[str]) -> tuple[dict[str, dict[str, int]], dict[str, Counter[str]], int]:
    """Per fingerprint TP/FP/FN, the matches per file, and the number of unreadable files."""
    names = [f.name for f in registry.registered()]
    score = {n: {"tp": 0, "fp": 0, "fn": 0, "files": 0} for n in names}
    per_file: dict[str, Counter[str]] = {}
    unreadable = 0
    for path in expand_paths(paths):
        try:
            got = count(path)
        except TeitenError:
            unreadable += 1
            continue
        truth = truth_for(path)
        per_file[path.as_posix()] = got
        for n in names:
            hit, want = got.get(n, 0), truth.get(n, 0)
            s = score[n]
            s["tp"] += min(hit, want)
            s["fp"] += max(0, hit - want)
            s["fn"] += max(0, want - hit)
            s["files"] += hit > 0
    return score, per_file, unreadable


def _ratio(a: int, b: int) -> str:
    return f"{100 * a / b:.1f} %" if b else "—"


def table(score: dict[str, dict[str, int]]) -> str:
    """The Markdown table of the scores."""
    lines = [
        "| fingerprint | labelled packets | matches | files matched | TP | FP | FN "
        "| precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, s in score.items():
        labelled, matches = s["tp"] + s["fn"], s["tp"] + s["fp"]
        lines.append(
            f"| `{n}` | {labelled:,} | {matches:,} | {s['files']:,} | {s['tp']:,} | {s['fp']:,} "
            f"| {s['fn']:,} | {_ratio(s['tp'], matches)} | {_ratio(s['tp'], labelled)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: evaluate, print the table; exit 1 if a NEGATIVE file has a tool match."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--hits", action="store_true", help="also list every file with tool matches")
    args = ap.parse_args(argv)
    score, per_file, unreadable = evaluate(args.paths)
    print(table(score))
    print(f"\n{len(per_file)} files read, {unreadable} unreadable (skipped)")
    bad = 0
    for name, got in sorted(per_file.items()):
        tools = {t: got[t] for t in TOOLS if got.get(t)}
        negative = any(name.endswith("/" + n) for n in NEGATIVE)
        if negative and tools:
            bad += 1
            print(f"NEGATIVE FILE MATCHED: {name}: {tools}")
        if args.hits and tools:
            print(f"{name}: {tools}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
