"""bench/corpus.py on a fixed subset of the shared corpus: teiten and tshark agree on all seven.

The subset covers what issue 10 found: snaplen-cut Mirai SYNs, non-first
fragments, MPLS, PPPoE, PPP, Cisco HDLC, NFLOG, FDDI/LLC, segmentation-offload
lengths, and a compressed capture. Skipped when ``../shared/corpus`` is absent.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "pcap"
SUBSET = (
    "suricata-verify/mac-eve-packet/test.pcap",
    "stopddos/amp.dns.RRSIG.fragmented.pcap",
    "zeek-traces/mpls-in-vlan.pcap",
    "zeek-traces/pppoe.pcap",
    "zeek-traces/pppoe-over-qinq.pcap",
    "zeek-traces/ppp/quic-interop-retry.pcap",
    "zeek-traces/llc.pcap",
    "zeek-traces/ipv6-reassembly-state-leak.pcap",
    "zeek-traces/krb/kerberos_tso.pcapng",
    "zeek-traces/echo-connections.pcap.gz",
    "tcpdump-tests/nflog.pcap",
    "tcpdump-tests/HDLC.pcap",
    "tcpdump-tests/ipv4_tcp_http_xml_tso.pcap",
    "tcpdump-tests/macsec-integonly.pcap",
    "dpkt/nb6-http.pcap",
)

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not present"),
]


def bench_corpus() -> ModuleType:
    """bench/corpus.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_corpus", ROOT / "bench" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SUBSET)
def test_corpus_file_agrees_with_tshark(name: str) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{name} is not in this corpus")
    outcome = bench_corpus().compare_file(path, 120.0)
    assert outcome.status == "same", outcome.differences or outcome.note
    assert outcome.frames[0] == outcome.frames[1] > 0


def test_a_difference_is_reported(tmp_path: Path) -> None:
    corpus = bench_corpus()
    ours = corpus.Counts(frames=2, ipv4=2, tcp=2, syn=2)
    theirs = corpus.Counts(frames=2, ipv4=2, tcp=1, syn=2)
    ours.ports["23/tcp"], theirs.ports["23/tcp"] = 2, 1
    assert corpus.describe(ours.ports, theirs.ports) == "23/tcp 2≠1"
    assert corpus.outer_transport("eth:ethertype:ip:icmp:ip:tcp") == ("ip", "icmp")
    assert corpus.outer_transport("eth:ethertype:ipv6:ipv6.hopopts:ipv6.fraghdr:udp") == (
        "ipv6",
        "udp",
    )
    assert corpus.outer_transport("eth:ethertype:arp") == ("", "")
