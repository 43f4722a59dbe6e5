"""Write the fuzz harness's corpus of tricky inputs into a folder (nothing is kept in the repo).

    python tests/fuzz/make_corpus.py OUT_DIR

The fuzz tests call :func:`write_corpus` into a temporary folder at test time;
each file is built here with ``struct`` (no capture from a real network, only
documentation addresses). The kinds, by sub-folder:

* ``capture/``: pcap and pcapng files with truncated records, huge and zero
  lengths, IPv4 total length 0, nested VLAN and MPLS stacks, overlapping and
  tiny fragments, long IPv6 extension-header chains, bad TCP data offsets and
  option lengths, unknown link types, and broken pcapng blocks;
* ``compressed/``: the same inside gzip, zstd and xz, cut short, with trailing
  junk, concatenated members, skippable zstd frames, and a small zstd frame
  that expands to megabytes of zero records (bomb-like);
* ``cowrie/``: broken JSON lines, deeply nested JSON, invalid UTF-8, lone
  surrogates, absurd timestamps, ports and ids of the wrong type;
* ``payload/``: HTTP requests with giant and endless headers, absurd
  ``Content-Length`` and chunk sizes, deeply nested and entity-expanding
  SOAP/XML, Telnet streams of bare IAC bytes;
* ``csaf/``: CSAF documents nested deeply, with wrong types, cyclic and
  dangling product references, huge strings;
* ``mmdb/``: damaged copies of ``tests/data/enrich/country.mmdb`` (cut short,
  metadata and search tree overwritten).
"""

from __future__ import annotations

import gzip
import json
import lzma
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parents[2]
MMDB_SEED = ROOT / "tests" / "data" / "enrich" / "country.mmdb"

SRC, DST = bytes([203, 0, 113, 10]), bytes([192, 0, 2, 1])
ETH_HEAD = bytes(6) + b"\x02\x00\x00\x00\x00\x01"  # dst, src MAC; the type follows


# ---------------------------------------------------------------- packets


def ipv4(payload: bytes, proto: int = 6, *, total: int | None = None, frag: int = 0,
         ihl: int = 5, ident: int = 1) -> bytes:  # fmt: skip
    """An IPv4 header (checksum left 0) and ``payload``; ``total`` overrides the length."""
    length = 20 + len(payload) if total is None else total
    head = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident, frag, 64, proto, 0, SRC, DST)
    return head + bytes(max(0, ihl * 4 - 20)) + payload


def tcp(flags: int = 0x02, *, offset: int = 5, options: bytes = b"", payload: bytes = b"") -> bytes:
    head = struct.pack(">HHIIBBHHH", 40000, 23, 1000, 0, offset << 4, flags, 1024, 0, 0)
    return head + options + payload


def udp(payload: bytes = b"", *, length: int | None = None) -> bytes:
    size = 8 + len(payload) if length is None else length
    return struct.pack(">HHHH", 53000, 53, size, 0) + payload


def ether(ethertype: int, body: bytes) -> bytes:
    return ETH_HEAD + struct.pack(">H", ethertype) + body


def vlans(depth: int, body: bytes) -> bytes:
    """``depth`` stacked 802.1Q tags, then IPv4."""
    tags = b"".join(struct.pack(">HH", i & 0x0FFF, 0x8100) for i in range(depth - 1))
    return ETH_HEAD + b"\x81\x00" + tags + struct.pack(">HH", 7, 0x0800) + body


def mpls(depth: int, body: bytes, *, bottom: bool = True) -> bytes:
    """``depth`` MPLS labels (the last with bottom-of-stack unless told), then ``body``."""
    labels = [struct.pack(">I", (16 + i) << 12 | 64) for i in range(depth)]
    if bottom and labels:
        labels[-1] = struct.pack(">I", (16 + depth) << 12 | 0x100 | 64)
    return ether(0x8847, b"".join(labels) + body)


def ipv6_chain(headers: int, last: bytes) -> bytes:
    """IPv6 with ``headers`` hop-by-hop/destination-options headers, then UDP ``last``."""
    chain = b""
    for i in range(headers):
        nxt = 60 if i < headers - 1 else 17
        chain += bytes([nxt, 0]) + bytes(6)
    first = 0 if headers else 17
    head = struct.pack(">IHBB", 6 << 28, len(chain) + len(last), first, 64)
    return (
        head
        + b"\x20\x01\x0d\xb8"
        + bytes(12)
        + b"\x20\x01\x0d\xb8"
        + bytes(11)
        + b"\x01"
        + chain
        + last
    )


def packets() -> dict[str, list[bytes]]:
    """Name → Ethernet frames of each tricky packet family."""
    syn = tcp()
    return {
        "ipv4-total-length-0": [ether(0x0800, ipv4(syn, total=0))],
        "ipv4-total-length-huge": [ether(0x0800, ipv4(syn, total=65535))],
        "ipv4-ihl-short-and-long": [
            ether(0x0800, ipv4(syn, ihl=2)),
            ether(0x0800, ipv4(syn, ihl=15)),
        ],
        "vlan-nested-8": [vlans(8, ipv4(syn))],
        "vlan-nested-200": [vlans(200, ipv4(syn))],
        "mpls-stack-20": [mpls(20, ipv4(syn))],
        "mpls-no-bottom": [mpls(300, b"", bottom=False)],
        "fragments-overlapping": [
            ether(0x0800, ipv4(udp(b"A" * 64), 17, frag=0x2000, ident=7)),
            ether(0x0800, ipv4(b"B" * 64, 17, frag=0x2004, ident=7)),  # offset 32 overlaps
            ether(0x0800, ipv4(b"C" * 8, 17, frag=0x0001, ident=7)),  # offset 8, last
            ether(0x0800, ipv4(b"", 17, frag=0x1FFF, ident=7)),  # the last possible offset, empty
        ],
        "fragment-tiny-tcp": [ether(0x0800, ipv4(syn[:8], frag=0x2000))],
        "ipv6-extension-chain": [ether(0x86DD, ipv6_chain(n, udp(b"x"))) for n in (0, 1, 40, 400)],
        "ipv6-chain-cut": [ether(0x86DD, ipv6_chain(30, udp(b"x"))[:150])],
        "tcp-data-offset": [ether(0x0800, ipv4(tcp(offset=o))) for o in (0, 4, 15)],
        "tcp-options-bad": [
            ether(0x0800, ipv4(tcp(offset=6, options=b"\x02\x00\x00\x00"))),  # length 0
            ether(0x0800, ipv4(tcp(offset=6, options=b"\x02\xff\x05\xb4"))),  # past the header
            ether(0x0800, ipv4(tcp(offset=15, options=b"\x01" * 39 + b"\x03"))),  # cut option
        ],
        "udp-length-bad": [ether(0x0800, ipv4(udp(b"q", length=n), 17)) for n in (0, 7, 65535)],
        "icmp-quoting-garbage": [
            ether(0x0800, ipv4(b"\x03\x03\x00\x00" + bytes(4) + b"\x4f" * 30, 1))
        ],
        "ethertype-unknown-and-short": [ether(0x88B5, b"zz"), ETH_HEAD[:9], b""],
    }


# ---------------------------------------------------------------- containers


def pcap(records: Iterable[bytes], *, linktype: int = 1, snaplen: int = 262144,
         caplens: Iterable[int] | None = None) -> bytes:  # fmt: skip
    """A little-endian microsecond pcap; ``caplens`` overrides each record's stated length."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)
    stated = list(caplens) if caplens is not None else None
    for i, rec in enumerate(records):
        n = stated[i] if stated is not None else len(rec)
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, n & 0xFFFFFFFF, len(rec)) + rec
    return out


def pcapng_block(kind: int, body: bytes, *, total: int | None = None) -> bytes:
    pad = (-len(body)) % 4
    size = 12 + len(body) + pad if total is None else total
    return struct.pack("<II", kind, size) + body + bytes(pad) + struct.pack("<I", size)


def pcapng(blocks: Iterable[bytes]) -> bytes:
    shb = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    return shb + b"".join(blocks)


def idb(linktype: int = 1, options: bytes = b"") -> bytes:
    return pcapng_block(1, struct.pack("<HHI", linktype, 0, 0) + options)


def epb(data: bytes, interface: int = 0, caplen: int | None = None) -> bytes:
    n = len(data) if caplen is None else caplen
    return pcapng_block(6, struct.pack("<IIIII", interface, 0, 0, n, len(data)) + data)


def captures() -> dict[str, bytes]:
    """File name → bytes of each tricky capture."""
    syn = ether(0x0800, ipv4(tcp()))
    out = {f"{name}.pcap": pcap(frames) for name, frames in packets().items()}
    out |= {
        "truncated-record.pcap": pcap([syn])[:-10],
        "truncated-header.pcap": pcap([syn])[:30],
        "caplen-huge.pcap": pcap([syn], caplens=[0xFFFFFFFF]),
        "caplen-over-snaplen.pcap": pcap([syn, syn], snaplen=64, caplens=[70000, len(syn)]),
        "caplen-zero.pcap": pcap([b"", b"", syn]),
        "snaplen-zero.pcap": pcap([syn], snaplen=0),
        "linktypes-odd.pcap": pcap([syn], linktype=65535),
        "raw-garbage.pcap": pcap([b"\x45" + bytes(3), b"\x60", b"\xff" * 60], linktype=101),
        "null-loop.pcap": pcap([struct.pack("<I", 30) + b"\x60" * 20, b"\x02"], linktype=0),
        "sll-short.pcap": pcap([b"\x00\x00\x00\x01", bytes(16) + b"\x45"], linktype=113),
        "ipv4-228.pcap": pcap([ipv4(tcp(), total=0), b"\x4f"], linktype=228),
        "ppp-odd.pcap": pcap([b"\xff\x03\x00\x21" + ipv4(tcp()), b"\xff"], linktype=9),
        "pppoe.pcap": pcap([ether(0x8864, b"\x11\x00\x00\x01\x00\x10\x00\x21" + ipv4(tcp()))]),
        "pcapng-block-length-zero.pcapng": pcapng([idb(), struct.pack("<II", 6, 0) + bytes(40)]),
        "pcapng-block-length-huge.pcapng": pcapng(
            [idb(), pcapng_block(6, bytes(32), total=0xFFFFFFF0)]
        ),
        "pcapng-block-misaligned.pcapng": pcapng([idb(), pcapng_block(6, bytes(28), total=41)]),
        "pcapng-no-interface.pcapng": pcapng([epb(syn, interface=99)]),
        "pcapng-epb-caplen-huge.pcapng": pcapng([idb(), epb(syn, caplen=0x7FFFFFFF)]),
        "pcapng-idb-options-bad.pcapng": pcapng([idb(1, b"\x09\x00\xff\xff" + bytes(4)), epb(syn)]),
        "pcapng-cut.pcapng": pcapng([idb(), epb(syn), epb(syn)])[:-7],
        "pcapng-second-section-big-endian.pcapng": pcapng([idb(), epb(syn)])
        + b"\x0a\x0d\x0d\x0a\x00\x00\x00\x1c\x1a\x2b\x3c\x4d"
        + bytes(16),
        "pcapng-unknown-blocks.pcapng": pcapng([pcapng_block(0x0BAD, bytes(8)), idb(), epb(syn)]),
    }
    return out


def compressed() -> dict[str, bytes]:
    """File name → bytes of each tricky compressed capture."""
    plain = pcap([ether(0x0800, ipv4(tcp()))] * 50)
    zeros = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + bytes(8 << 20)
    z = zstandard.ZstdCompressor(level=3)
    skippable = struct.pack("<II", 0x184D2A50, 4) + b"skip"
    return {
        "cut.pcap.gz": gzip.compress(plain, mtime=0)[:-30],
        "trailing-junk.pcap.gz": gzip.compress(plain, mtime=0) + b"not gzip at all",
        "two-members.pcap.gz": gzip.compress(plain, mtime=0)
        + gzip.compress(b"\x00" * 100, mtime=0),
        "cut.pcap.xz": lzma.compress(plain)[:-20],
        "cut.pcap.zst": z.compress(plain)[:-9],
        "skippable.pcap.zst": skippable + z.compress(plain) + skippable,
        "bomb-like-zero-records.pcap.zst": z.compress(zeros),
        "not-a-capture-inside.zst": z.compress(b"hello " * 1000),
        "header-only-magic.gz": b"\x1f\x8b",
        "header-only-magic.zst": b"\x28\xb5\x2f\xfd",
    }


# ---------------------------------------------------------------- logs and documents


def _event(eventid: str, **extra: object) -> dict[str, object]:
    return {"eventid": eventid, "session": "c0ffee", "src_ip": "203.0.113.5",
            "timestamp": "2020-01-01T00:00:00Z", **extra}  # fmt: skip


def cowrie_logs() -> dict[str, bytes]:
    good = json.dumps(_event("cowrie.session.connect", dst_port=23)).encode()
    deep = b'{"eventid": "cowrie.session.connect", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    odd = [
        _event("cowrie.session.connect", src_port=-1, dst_port="99999", dst_ip=["x"]),
        _event("cowrie.command.input", input={"nested": True}),
        _event("cowrie.command.input", input="\ud800 lone surrogate"),
        _event("cowrie.login.success", username=None, password=1e309),
        _event("cowrie.session.file_download", url=None, shasum=["a"] * 3),
        _event("cowrie.session.closed", duration="NaN", timestamp="99999-01-01T00:00:00Z"),
        _event("cowrie.session.closed", session=12345, timestamp="2020-02-30T25:61:61Z"),
        _event("cowrie.session.connect", src_ip="::ffff:999.1.1.1", sensor="../../etc"),
        {"eventid": ["cowrie.session.connect"]},
    ]
    lines = [json.dumps(e).encode() for e in odd]
    return {
        "broken-lines.json": b"\n".join([good, b"{not json", b'{"eventid": "cowrie.x"', b"[]",
                                          b"\xff\xfe\x00garbage", good[:20], *lines]) + b"\n",
        "deep-nesting.json": good + b"\n" + deep + b"\n" + good + b"\n",
        "nul-and-crlf.json": good + b"\r\n\x00\x00\r\n" + good.replace(b"c0ffee", b"\x00") + b"\n",
        "one-huge-line.json": good + b"\n" + b'{"x": "' + b"A" * (3 << 20) + b'"}\n',
        "cut.json.gz": gzip.compress(b"\n".join([good] * 200), mtime=0)[:-25],
    }  # fmt: skip


POST = b"POST / HTTP/1.1\r\n"


def payloads() -> dict[str, bytes]:
    many_headers = b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 100_000 + b"\r\n"
    giant_header = b"GET / HTTP/1.1\r\nCookie: " + b"c" * (2 << 20) + b"\r\n\r\n"
    nested = b"<a>" * 50_000 + b"</a>" * 50_000
    laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
              b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
              b']><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
              b'<u:AddPortMapping><x>&c;</x></u:AddPortMapping></s:Body></s:Envelope>')  # fmt: skip
    external = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b"<s:Envelope><s:Body><u:A><x>&e;</x></u:A></s:Body></s:Envelope>")  # fmt: skip

    def soap(body: bytes) -> bytes:
        head = (b"POST /picdesc.xml HTTP/1.1\r\nSOAPAction: \"urn:x#AddPortMapping\"\r\n"
                b"Content-Type: text/xml\r\nContent-Length: %d\r\n\r\n")  # fmt: skip
        return head % len(body) + body

    return {
        "http-many-headers.http": many_headers,
        "http-giant-header.http": giant_header,
        "http-endless-header.http": b"GET / HTTP/1.1\r\nX: " + b"y" * (1 << 20),
        "http-content-length-huge.http": POST + b"Content-Length: 99999999999999999999\r\n\r\nab",
        "http-content-length-negative.http": b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nab",
        "http-chunk-huge.http": POST + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\nab",
        "http-chunks-endless.http": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"1\r\na\r\n" * 100_000,
        "http-pipelined-many.http": b"GET / HTTP/1.1\r\n\r\n" * 20_000,
        "soap-nested.http": soap(nested),
        "soap-entity-expansion.http": soap(laughs),
        "soap-external-entity.http": soap(external),
        "soap-not-xml.http": soap(b"<s:Envelope><<<>>>&&&;;" * 1000),
        "telnet-iac-only.bin": b"\xff" * 100_000,
        "telnet-subnegotiation-unended.bin": b"\xff\xfa\x18" + b"x" * 100_000,
        "telnet-lines.bin": b"root\r\n" * 50_000,
    }  # fmt: skip


def csaf_documents() -> dict[str, bytes]:
    seed = json.loads((ROOT / "tests" / "data" / "csaf" / "logitec-sample.json").read_text())
    leaf = (
        b'{"category": "product_name", "name": "x", "product": {"product_id": "P1", "name": "x"}}'
    )
    head = json.dumps(seed).encode()[:-1]  # the seed without its closing brace

    def deep_tree(depth: int) -> bytes:
        branch = b'{"category": "vendor", "name": "v", "branches": ['
        tree = branch * depth + leaf + b"]}" * depth
        return head + b', "product_tree": {"branches": [' + tree + b"]}}"

    cyclic = json.loads(json.dumps(seed))
    cyclic["product_tree"]["relationships"] = [
        {"category": "default_component_of", "product_reference": a,
         "relates_to_product_reference": b, "full_product_name": {"product_id": b, "name": b}}
        for a, b in (("A", "B"), ("B", "A"))
    ]  # fmt: skip
    wrong = json.loads(json.dumps(seed))
    wrong["document"]["tracking"] = ["not", "an", "object"]
    wrong["vulnerabilities"] = {"cve": 7}
    huge = json.loads(json.dumps(seed))
    huge["document"]["title"] = "t" * (4 << 20)
    return {
        "deep-json.json": b"[" * 200_000 + b"]" * 200_000,
        "deep-product-tree-400.json": deep_tree(400),
        "deep-product-tree-3000.json": deep_tree(3000),
        "cyclic-relationships.json": json.dumps(cyclic).encode(),
        "wrong-types.json": json.dumps(wrong).encode(),
        "huge-title.json": json.dumps(huge).encode(),
        "not-utf8.json": b'{"document": "\xff\xfe"}',
        "empty.json": b"",
        "null.json": b"null",
    }


def mmdb_files() -> dict[str, bytes]:
    seed = MMDB_SEED.read_bytes()
    marker = b"\xab\xcd\xefMaxMind.com"
    meta = seed.rfind(marker)
    out = {
        "cut-half.mmdb": seed[: len(seed) // 2],
        "cut-metadata.mmdb": seed[: meta + len(marker) + 10],
        "tree-zeroed.mmdb": bytes(min(len(seed), 1024)) + seed[1024:],
        "tree-ones.mmdb": b"\xff" * min(meta, 4096) + seed[min(meta, 4096) :],
        "only-marker.mmdb": marker,
        "empty.mmdb": b"",
    }
    for key in (b"node_count", b"record_size", b"ip_version"):
        at = seed.find(key, meta)
        if at > 0:
            start = at + len(key)
            # The value follows the key: make it the largest value of its encoding.
            out[f"meta-{key.decode()}-max.mmdb"] = (
                seed[:start] + b"\xc4\xff\xff\xff\xff" + seed[start + 5 :]
            )
    return out


KINDS = {
    "capture": captures,
    "compressed": compressed,
    "cowrie": cowrie_logs,
    "payload": payloads,
    "csaf": csaf_documents,
    "mmdb": mmdb_files,
}


def write_corpus(out: Path) -> dict[str, list[Path]]:
    """Write every kind into ``out/<kind>/``; the paths written, by kind."""
    written: dict[str, list[Path]] = {}
    for kind, make in KINDS.items():
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        written[kind] = []
        for name, data in make().items():
            (folder / name).write_bytes(data)
            written[kind].append(folder / name)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    for kind, paths in write_corpus(Path(argv[0])).items():
        print(f"{kind}: {len(paths)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
