"""Property-based fuzzing: mutated seeds and generated inputs for every reader and parser.

Each test feeds hypothesis-made inputs to a target of ``targets.py`` and
checks the contract: a clean result or a one-line
:class:`~teiten.errors.TeitenError`, never another exception. The budget is
``TEITEN_FUZZ_EXAMPLES`` examples per test (default 40); CI's hypothesis
profile (``tests/conftest.py``) fixes the seed, so a green run stays green.
Run a longer campaign with, e.g.::

    TEITEN_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/fuzz -q
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import struct
from pathlib import Path
from typing import Any

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from make_corpus import MMDB_SEED, captures, ether, ipv4, pcap, tcp, udp
from targets import TARGETS, capture, outcome, payload

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLES = int(os.environ.get("TEITEN_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXTREMES = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]

CAPTURE_SEEDS = [DATA / n for n in ("eth_ipv4.pcap", "eth_ipv6.pcap", "mixed.pcapng", "sll.pcap",
                                    "raw101.pcap", "null.pcap", "snaplen64.pcap")]  # fmt: skip
TRICKY = captures()


def _check(kind: str, path: Path) -> None:
    result = outcome(TARGETS[kind], path)
    assert result == "ok" or result.startswith(f"refused: {path}"), result


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few overwrites (random bytes or extreme 32-bit values), cuts and inserts."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["byte", "word", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "word":
            value = draw(st.sampled_from(EXTREMES))
            data[at : at + 4] = struct.pack(draw(st.sampled_from(["<I", ">I"])), value)
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@st.composite
def capture_bytes(draw: st.DrawFn) -> bytes:
    seeds = [p.read_bytes() for p in CAPTURE_SEEDS] + list(TRICKY.values())
    return draw(mutated(draw(st.sampled_from(seeds))))


@FUZZ
@given(data=capture_bytes())
def test_mutated_captures(scratch: Path, data: bytes) -> None:
    path = scratch / "mutated.cap"
    path.write_bytes(data)
    _check("capture", path)


@FUZZ
@given(data=capture_bytes(), how=st.sampled_from(["gz", "xz", "zst"]), cut=st.integers(0, 40))
def test_mutated_compressed_captures(scratch: Path, data: bytes, how: str, cut: int) -> None:
    packed = {"gz": lambda b: gzip.compress(b, mtime=0), "xz": lzma.compress,
              "zst": zstandard.ZstdCompressor().compress}[how](data)  # fmt: skip
    path = scratch / f"mutated.cap.{how}"
    path.write_bytes(packed[: len(packed) - cut] if cut else packed)
    _check("compressed", path)


LINKTYPES = [0, 1, 9, 12, 101, 108, 113, 228, 229, 276, 141, 147, 239, 65535]


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A frame: random bytes, or a plausible IP packet with random fields and a random cut."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    proto = draw(st.sampled_from([1, 6, 17, 41, 47, 58, 255]))
    body = tcp(draw(st.integers(0, 255)), offset=draw(st.integers(0, 15)),
               options=draw(st.binary(max_size=40))) if proto == 6 else (
        udp(draw(st.binary(max_size=30)), length=draw(st.integers(0, 0xFFFF)))
        if proto == 17 else draw(st.binary(max_size=60)))  # fmt: skip
    packet = ipv4(body, proto, total=draw(st.one_of(st.none(), st.integers(0, 0xFFFF))),
                  frag=draw(st.integers(0, 0xFFFF)), ihl=draw(st.integers(0, 15)))  # fmt: skip
    framed = ether(draw(st.sampled_from([0x0800, 0x86DD, 0x8100, 0x8847, 0x8864, 0x88A8])), packet)
    return framed[: draw(st.integers(0, len(framed)))]


@FUZZ
@given(records=st.lists(frames(), max_size=12), linktype=st.sampled_from(LINKTYPES))
def test_decoder_on_generated_packets(scratch: Path, records: list[bytes], linktype: int) -> None:
    path = scratch / "generated.pcap"
    path.write_bytes(pcap(records, linktype=linktype))
    assert capture(path) == len(records)  # every record is a row, however broken


HTTP_METHODS = ["GET", "POST", "PUT", "M-SEARCH", "", "G\x00T"]
TEXT = st.text(st.characters(codec="latin-1"), max_size=40)


@st.composite
def http_requests(draw: st.DrawFn) -> bytes:
    line = f"{draw(st.sampled_from(HTTP_METHODS))} {draw(TEXT)} HTTP/1.{draw(st.integers(0, 9))}"
    names = ["Host", "Content-Length", "Transfer-Encoding", "SOAPAction", "Content-Type", "X"]
    headers = [
        f"{draw(st.sampled_from(names))}:{draw(TEXT)}" for _ in range(draw(st.integers(0, 8)))
    ]
    body = draw(st.one_of(st.binary(max_size=200), soap_bodies()))
    text = "\r\n".join([line, *headers]) + draw(st.sampled_from(["\r\n\r\n", "\n\n", "\r\n"]))
    return text.encode("latin-1") + body


def _xml(tree: Any) -> str:
    if isinstance(tree, str):
        return tree.replace("<", "&lt;")
    name, children = tree
    return f"<{name}>" + "".join(_xml(c) for c in children) + f"</{name}>"


@st.composite
def soap_bodies(draw: st.DrawFn) -> bytes:
    names = st.sampled_from(["s:Envelope", "s:Body", "u:AddPortMapping", "NewInternalClient", "a"])
    tree = st.recursive(
        st.text(max_size=20),
        lambda inner: st.tuples(names, st.lists(inner, max_size=3)),
        max_leaves=30,
    )
    body = _xml(("s:Envelope", [("s:Body", [draw(tree)])])).encode("utf-8", "surrogatepass")
    return draw(mutated(body)) if draw(st.booleans()) else body


@FUZZ
@given(data=st.one_of(st.binary(max_size=600), http_requests(), soap_bodies()))
def test_payload_parsers(data: bytes) -> None:
    payload(data)  # never raises: there is no refusal for session bytes


@FUZZ
@given(data=st.binary(max_size=400), iac=st.lists(st.integers(0, 255), max_size=20))
def test_telnet_streams(data: bytes, iac: list[int]) -> None:
    payload(b"\xff" + bytes(iac) + data + b"\r\nroot\r\nxc3511\r\n/bin/busybox ECCHI\r\n")


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=30),
)  # fmt: skip
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENTS = ["cowrie.session.connect", "cowrie.session.closed", "cowrie.login.success",
          "cowrie.login.failed", "cowrie.command.input", "cowrie.session.file_download",
          "cowrie.session.file_download.failed", "cowrie.client.version",
          "cowrie.other"]  # fmt: skip
FIELDS = ["session", "timestamp", "src_ip", "dst_ip", "src_port", "dst_port", "username",
          "password", "input", "url", "shasum", "outfile", "duration", "sensor", "protocol",
          "version"]  # fmt: skip


ADDRESSES = ["203.0.113.5", "2001:db8::1", "::ffff:198.51.100.1", "z"]


@st.composite
def cowrie_lines(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=80)).replace(b"\n", b" ")
    event: dict[str, Any] = {"eventid": draw(st.sampled_from(EVENTS)),
                             "session": draw(st.sampled_from(["a", "b", "c"])),
                             "timestamp": draw(st.sampled_from(
                                 ["2020-01-01T00:00:00Z", "2020-01-01T09:00:00.5+09:00", "x"])),
                             "src_ip": draw(st.sampled_from(ADDRESSES))}  # fmt: skip
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=5)):
        event[name] = draw(JSON)
    return json.dumps(event).encode()


@FUZZ
@given(lines=st.lists(cowrie_lines(), max_size=25), gz=st.booleans())
def test_cowrie_logs(scratch: Path, lines: list[bytes], gz: bool) -> None:
    text = b"\n".join(lines) + b"\n"
    path = scratch / ("cowrie.json.gz" if gz else "cowrie.json")
    path.write_bytes(gzip.compress(text, mtime=0) if gz else text)
    _check("cowrie", path)


CSAF_SEEDS = sorted((DATA / "csaf").glob("*.json"))


@st.composite
def csaf_documents(draw: st.DrawFn) -> bytes:
    doc = json.loads(draw(st.sampled_from(CSAF_SEEDS)).read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        _replace_somewhere(doc, draw)
    return json.dumps(doc).encode()


def _replace_somewhere(node: Any, draw: st.DrawFn) -> None:
    """Walk down a random path and replace one value (or drop one key) with generated JSON."""
    while isinstance(node, dict | list) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or not child or draw(st.integers(0, 3)) == 0:
            if isinstance(node, dict) and draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(JSON)
            return
        node = child


@FUZZ
@given(doc=csaf_documents())
def test_csaf_import(scratch: Path, doc: bytes) -> None:
    path = scratch / "advisory.json"
    path.write_bytes(doc)
    _check("csaf", path)


@FUZZ
@given(data=mutated(MMDB_SEED.read_bytes()))
def test_mmdb_files(scratch: Path, data: bytes) -> None:
    path = scratch / "db.mmdb"
    path.write_bytes(data)
    _check("mmdb", path)
