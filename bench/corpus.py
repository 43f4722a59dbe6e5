"""Compare teiten's decoder with tshark on every capture in a folder: seven counts per file.

For each pcap/pcapng file (plain, ``.gz``, ``.zst`` or ``.xz``; found by its
magic bytes, recursively) both sides count, at the *outer* IP layer and
without fragment reassembly:

1. ``ipv4``: packets whose outer IP header is IPv4;
2. ``ipv6``: packets whose outer IP header is IPv6;
3. ``tcp``: packets whose outer IP carries TCP (after IPv6 extension headers);
4. ``udp``: the same for UDP;
5. ``icmp``: the same for ICMP or ICMPv6 (one count for both);
6. ``syn``: outer TCP packets with SYN set and ACK clear;
7. ``ports``: per destination port (``23/tcp``, ``53/udp``) of outer TCP/UDP
   packets, compared as a whole (one mismatching port makes the count differ).

teiten: :func:`teiten.capture.open_source` and :func:`teiten.decode.decode`
in-process (no store). A non-first fragment has no transport (tshark shows
``data``); the per-port count uses the port rule every query uses
(:data:`teiten.schema.PORT_CAPTURED`).

tshark: ``-n -o ip.defragment:FALSE -o ipv6.defragment:FALSE -T fields`` with
``frame.protocols``: the outer IP layer is the first ``ip``/``ipv6`` entry,
its transport the next entry that is not an IPv6 extension header
(``ipv6.hopopts``…); ``-E occurrence=f`` gives the first (outer) ``tcp.flags``
and destination ports. Tunnelled and ICMP-quoted headers are not counted.
Compressed files are expanded into a temporary file for tshark by teiten's own
reader (what a cut stream still holds). A file that tshark cannot read (other
than one cut short in a record), or that takes longer than ``--timeout``, is
skipped and counted; teiten refusing a file tshark reads is a difference.

Run by hand::

    python bench/corpus.py ../shared/corpus/pcap --jobs 2 --out /tmp/corpus.tsv

Prints the share of files identical on all seven counts and each difference.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from teiten.capture import open_source
from teiten.capture.compressed import ByteStream, compression_of
from teiten.capture.files import expand_paths
from teiten.capture.pcap import MAGICS as PCAP_MAGICS
from teiten.capture.pcapng import MAGIC as PCAPNG_MAGIC
from teiten.decode import decode
from teiten.errors import TeitenError
from teiten.escape import terminal
from teiten.schema import PORT_CAPTURED, decode_error_code

COUNTS = ("ipv4", "ipv6", "tcp", "udp", "icmp", "syn", "ports")
NO_TRANSPORT = tuple(
    decode_error_code(n)
    for n in (
        "unsupported_link",
        "truncated_link",
        "not_ip",
        "truncated_ip",
        "bad_ip_header",
        "truncated_ext",
        "fragment",
    )
)
PORT_CODES = tuple(decode_error_code(n) for n in PORT_CAPTURED)
TSHARK_FIELDS = ("frame.protocols", "tcp.flags", "tcp.dstport", "udp.dstport")
MAX_EXPANDED = 1 << 30
"""Largest decompressed content written out for tshark (bigger files are skipped)."""


@dataclass
class Counts:
    """The seven counts of one side for one file (``frames`` is informative)."""

    frames: int = 0
    ipv4: int = 0
    ipv6: int = 0
    tcp: int = 0
    udp: int = 0
    icmp: int = 0
    syn: int = 0
    ports: Counter[str] = field(default_factory=Counter)

    def value(self, name: str) -> object:
        return getattr(self, name)


@dataclass
class Outcome:
    """What happened to one file."""

    path: str
    status: str
    """``same``, ``different``, ``tshark_failed``, ``timeout`` or ``too_big``."""
    frames: tuple[int, int] = (0, 0)
    differences: list[str] = field(default_factory=list)
    note: str = ""


def capture_kind(path: Path) -> str | None:
    """``pcap``, ``pcapng`` or the compression of ``path`` by its magic; None if neither."""
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError:
        return None
    if magic[:4] in PCAP_MAGICS:
        return "pcap"
    if magic[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return compression_of(magic)


def teiten_counts(path: Path) -> Counts:
    """The seven counts from teiten's reader and decoder (columns, no per-packet Python)."""
    out = Counts()
    tcp_ports = np.zeros(1 << 16, np.int64)
    udp_ports = np.zeros(1 << 16, np.int64)
    for chunk in open_source(path).chunks():
        c = decode(chunk).columns
        err, proto, version = c["decode_error"], c["proto"], c["ip_version"]
        transport = ~np.isin(err, NO_TRANSPORT)
        counted = np.isin(err, PORT_CODES)
        tcp = transport & (proto == 6)
        out.frames += len(err)
        out.ipv4 += int(np.count_nonzero(version == 4))
        out.ipv6 += int(np.count_nonzero(version == 6))
        out.tcp += int(np.count_nonzero(tcp))
        out.udp += int(np.count_nonzero(transport & (proto == 17)))
        out.icmp += int(np.count_nonzero(transport & ((proto == 1) | (proto == 58))))
        out.syn += int(np.count_nonzero(tcp & ((c["tcp_flags"] & 0x12) == 0x02)))
        tcp_ports += np.bincount(c["dst_port"][counted & (proto == 6)], minlength=1 << 16)
        udp_ports += np.bincount(c["dst_port"][counted & (proto == 17)], minlength=1 << 16)
    for name, table in (("tcp", tcp_ports), ("udp", udp_ports)):
        for port in np.flatnonzero(table):
            out.ports[f"{port}/{name}"] = int(table[port])
    return out


def outer_transport(protocols: str) -> tuple[str, str]:
    """``(outer IP layer, what it carries)`` from tshark's ``frame.protocols``; '' if none."""
    layers = protocols.split(":")
    for i, layer in enumerate(layers):
        if layer in ("ip", "ipv6"):
            rest = [x for x in layers[i + 1 :] if not x.startswith("ipv6.")]
            return layer, rest[0] if rest else ""
    return "", ""


def tshark_counts(path: Path, timeout: float) -> tuple[Counts | None, str]:
    """The seven counts from tshark, or None and why it could not read the file."""
    cmd = ["tshark", "-n", "-r", str(path), "-o", "ip.defragment:FALSE"]
    cmd += ["-o", "ipv6.defragment:FALSE", "-T", "fields", "-E", "occurrence=f"]
    cmd += ["-E", "separator=/t"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    if done.returncode != 0 and "cut short in the middle of a packet" not in done.stderr:
        lines = [x for x in done.stderr.splitlines() if x and "Running as user" not in x]
        return None, str(terminal(lines[0] if lines else f"exit {done.returncode}", 200))
    out = Counts()
    for line in done.stdout.splitlines():
        protocols, flags, tport, uport = [*line.split("\t"), "", "", ""][:4]
        out.frames += 1
        ip, carried = outer_transport(protocols)
        out.ipv4 += ip == "ip"
        out.ipv6 += ip == "ipv6"
        if carried == "tcp":
            out.tcp += 1
            if flags and int(flags, 0) & 0x12 == 0x02:
                out.syn += 1
            if tport:
                out.ports[f"{tport}/tcp"] += 1
        elif carried == "udp":
            out.udp += 1
            if uport:
                out.ports[f"{uport}/udp"] += 1
        elif carried in ("icmp", "icmpv6"):
            out.icmp += 1
    return out, ""


def expanded(path: Path, directory: str) -> Path | None:
    """The content of a compressed capture as a plain file (None if over the size bound)."""
    target = Path(directory, "content")
    total = 0
    with ByteStream(path, str(path)) as stream, open(target, "wb") as out:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while True:
            got = stream.readinto(view)
            if not got:
                break
            total += got
            if total > MAX_EXPANDED:
                return None
            out.write(view[:got])
    return target


def describe(a: object, b: object) -> str:
    """A short text for one differing count (for ports: the ports that differ)."""
    if isinstance(a, Counter) and isinstance(b, Counter):
        keys = sorted(set(a) | set(b), key=lambda k: (a[k] - b[k], k))
        diff = [f"{k} {a[k]}≠{b[k]}" for k in keys if a[k] != b[k]]
        more = f" (+{len(diff) - 5} more)" if len(diff) > 5 else ""
        return ", ".join(diff[:5]) + more
    return f"{a}≠{b}"


def compare_file(path: Path, timeout: float) -> Outcome:
    """Count one capture both ways and compare (teiten first in each difference)."""
    name = str(path)
    with tempfile.TemporaryDirectory(prefix="teiten-corpus-") as tmp:
        plain = path
        if capture_kind(path) not in ("pcap", "pcapng"):
            try:
                content = expanded(path, tmp)
            except TeitenError as exc:
                return Outcome(name, "tshark_failed", note=f"not expanded: {terminal(exc)}")
            if content is None:
                return Outcome(name, "too_big")
            plain = content
        theirs, why = tshark_counts(plain, timeout)
    if theirs is None:
        return Outcome(name, "timeout" if why == "timeout" else "tshark_failed", note=why)
    try:
        ours = teiten_counts(path)
    except TeitenError as exc:
        return Outcome(name, "different", (0, theirs.frames), [f"teiten: {terminal(exc)}"])
    diffs = [
        f"{c}: {describe(ours.value(c), theirs.value(c))}"
        for c in COUNTS
        if ours.value(c) != theirs.value(c)
    ]
    frames = (ours.frames, theirs.frames)
    return Outcome(name, "different" if diffs else "same", frames, diffs)


def captures(directory: Path) -> Iterator[Path]:
    """Every pcap/pcapng file (plain or compressed) under ``directory``."""
    for path in expand_paths([directory]):
        if capture_kind(path) is not None:
            yield path


def run(directory: Path, jobs: int, timeout: float) -> list[Outcome]:
    """Compare every capture under ``directory``, ``jobs`` files at a time."""
    paths = list(captures(directory))
    if jobs <= 1:
        return [compare_file(p, timeout) for p in paths]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(compare_file, paths, [timeout] * len(paths), chunksize=4))


def summary(outcomes: list[Outcome], seconds: float) -> list[str]:
    """The lines printed at the end: share of identical files, then every difference."""
    by = Counter(o.status for o in outcomes)
    compared = by["same"] + by["different"]
    share = 100.0 * by["same"] / compared if compared else 0.0
    lines = [
        f"{by['same']} of {compared} compared files identical on all seven counts ({share:.2f} %);"
        f" skipped: {by['tshark_failed']} tshark could not read, {by['timeout']} timed out,"
        f" {by['too_big']} too big; {seconds:.0f} s"
    ]
    for o in outcomes:
        if o.status == "different":
            detail = "; ".join(o.differences)
            lines.append(f"DIFF {terminal(o.path)} ({o.frames[0]}/{o.frames[1]} frames): {detail}")
    return lines


def write_tsv(outcomes: list[Outcome], path: Path) -> None:
    """One row per file: path, status, frames (teiten, tshark), differences or note."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("path\tstatus\tteiten_frames\ttshark_frames\tdetail\n")
        for o in outcomes:
            detail = "; ".join(o.differences) or o.note
            detail = detail.replace("\t", " ").replace("\n", " ")
            out.write(f"{o.path}\t{o.status}\t{o.frames[0]}\t{o.frames[1]}\t{detail}\n")


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 0 when every compared file is identical, 1 otherwise."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    ap.add_argument("--out", type=Path, help="write one TSV row per file here")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per tshark run")
    args = ap.parse_args(argv)
    if not args.directory.is_dir():
        print(f"{args.directory}: not a directory", file=sys.stderr)
        return 1
    start = time.perf_counter()
    outcomes = run(args.directory, args.jobs, args.timeout)
    for line in summary(outcomes, time.perf_counter() - start):
        print(line)
    if args.out:
        write_tsv(outcomes, args.out)
    return 0 if all(o.status != "different" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
