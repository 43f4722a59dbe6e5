"""One-packet sessions built as columns give the rows the reassembler alone gave.

The reference path is the one ingest used before (issue 14): every TCP and UDP
payload through :class:`Reassembler` and :meth:`SessionStage.tables` on
``Session`` objects. Ingest now builds UDP datagrams as columns
(:mod:`teiten.flows.datagram`) and reassembles TCP only
(:meth:`SessionStage.batch_tables`); both run here batch by batch on the same
decoded batches, and every ``sessions`` and ``logins`` row (ids, columns,
classification) must be equal. Captures: issue 14's two mixes (small), the
simulator's npa-2017 scenario and real captures of the shared corpus.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from teiten.capture import open_source
from teiten.decode.decoder import decode
from teiten.enrich.country import CountryEnricher
from teiten.enrich.network import NetworkSet
from teiten.enrich.sources import open_country_source
from teiten.flows import datagram
from teiten.flows.datagram import datagrams
from teiten.flows.reassembly import Reassembler
from teiten.pipeline.sessions import SessionStage
from teiten.simulate import SimulationResult

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "pcap"
MIX_NETS = ("198.18.0.0/15",)  # bench/gen_darknet.py's SENSOR_NETWORK
Tables = tuple[pa.Table, pa.Table]


@pytest.fixture(scope="module")
def gen_mix() -> Iterator[ModuleType]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        yield importlib.import_module("gen_mix")
    finally:
        sys.path.remove(str(ROOT / "bench"))


@pytest.fixture(scope="module")
def enricher() -> CountryEnricher:
    return CountryEnricher(open_country_source("iptocc"))


def _paths(
    path: Path,
    nets: tuple[str, ...],
    enricher: CountryEnricher,
    memory_cap: int,
    chunk_bytes: int,
    seen: dict[str, int],
) -> Iterator[tuple[Tables, Tables]]:
    """(reference, columnar) tables of each batch of ``path``, then of the final flush."""
    networks = NetworkSet(nets)
    ref_stage, new_stage = (SessionStage(enricher, 7, networks) for _ in range(2))
    ref = Reassembler(memory_cap=memory_cap)
    new = Reassembler(memory_cap=memory_cap, datagrams=False)
    for chunk in open_source(path, chunk_bytes=chunk_bytes).chunks():
        if not len(chunk):
            continue
        batch = decode(chunk)
        c = batch.columns
        c["is_outbound"] = networks.contains(c["ip_version"], c["src_ip4"], c["src_ip6"])
        yield (
            ref_stage.tables(ref.feed(batch, chunk.data)),
            new_stage.batch_tables(new, batch, chunk.data),
        )
    yield ref_stage.tables(ref.flush()), new_stage.finished_tables(new.flush_columns())
    seen["promoted"] = new.promoted
    seen["evicted"] = new.evicted_for_memory
    assert new.evicted_for_memory == ref.evicted_for_memory
    assert ref_stage.left_out == new_stage.left_out
    assert ref_stage.count == new_stage.count


def _same(
    path: Path,
    nets: tuple[str, ...],
    enricher: CountryEnricher,
    memory_cap: int = 256 << 20,
    chunk_bytes: int = 1 << 20,
) -> dict[str, int]:
    """Assert both paths give equal rows; counts of what was compared."""
    seen = {"sessions": 0, "udp": 0, "tcp": 0, "logins": 0, "udp_server_bytes": 0}
    batches = _paths(path, nets, enricher, memory_cap, chunk_bytes, seen)
    for (ref_rows, ref_logins), (new_rows, new_logins) in batches:
        assert new_rows.schema.equals(ref_rows.schema)
        assert new_logins.schema.equals(ref_logins.schema)
        for name in ref_rows.column_names:
            assert new_rows[name].equals(ref_rows[name]), name
        assert new_logins.equals(ref_logins)
        proto = ref_rows["proto"].to_numpy()
        seen["sessions"] += ref_rows.num_rows
        seen["udp"] += int((proto == 17).sum())
        seen["tcp"] += int((proto == 6).sum())
        seen["logins"] += ref_logins.num_rows
        answered = pc.binary_length(ref_rows["server_bytes"]).to_numpy() > 0
        seen["udp_server_bytes"] += int((answered & (proto == 17)).sum())
    return seen


@pytest.mark.parametrize("mix", ["realistic", "payload-heavy"])
def test_issue_14_mixes_give_the_same_rows(
    mix: str, gen_mix: ModuleType, enricher: CountryEnricher, tmp_path: Path
) -> None:
    path = tmp_path / f"{mix}.pcap"
    gen_mix.generate(path, 60_000, mix=mix, seed=2)
    seen = _same(path, MIX_NETS, enricher)
    assert seen["udp"] > 1000 and seen["tcp"] > 100 and seen["logins"] > 0, seen


def test_memory_eviction_interleaves_flows_and_datagrams_in_order(
    gen_mix: ModuleType, enricher: CountryEnricher, tmp_path: Path
) -> None:
    """With a tiny memory cap the reassembler finishes flows between a batch's
    datagrams; the merged rows keep that order."""
    path = tmp_path / "heavy.pcap"
    gen_mix.generate(path, 30_000, mix="payload-heavy", seed=4)
    seen = _same(path, MIX_NETS, enricher, memory_cap=64 << 10)
    assert seen["udp"] > 1000 and seen["tcp"] > 1000 and seen["evicted"] > 1000, seen


def test_npa_scenario_gives_the_same_rows(
    npa_small: SimulationResult, enricher: CountryEnricher
) -> None:
    seen = {"sessions": 0, "udp": 0}
    for pcap in npa_small.pcaps:
        got = _same(pcap, ("203.0.113.0/24",), enricher)
        seen["sessions"] += got["sessions"]
        seen["udp"] += got["udp"]
    assert seen["sessions"] > 0, seen


CORPUS_FILES = [
    ("stopddos/amp.UDP.isakmp.pcap", ("10.10.10.10/32",)),
    ("stopddos/amp.UDP.snmp.src161.pcapng", ("10.10.10.10/32",)),
    ("stopddos/amp.dns.RRSIG.fragmented.pcap", ("10.10.10.10/32",)),
    ("suricata-verify/dns/bug-1158/input.pcap", ("10.30.28.90/32",)),
    ("zeek-traces/ipv6-hbh-routing0.pcap", ("2001:db8::/32", "fe80::/10")),
    ("zeek-traces/echo-connections.pcap.gz", ("10.0.0.0/8", "192.168.0.0/16")),
    ("slips/test7-malicious.pcap", ("192.168.0.0/16",)),
    ("zeek-traces/ftp/ipv6-multiline-reply.pcap", ("2001:db8::/32",)),
    ("zeek-traces/http/1000-requests-one-dropped-response.pcap.gz", ("2001:db8::/32",)),
]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not present")
@pytest.mark.parametrize(("name", "nets"), CORPUS_FILES)
def test_real_captures_give_the_same_rows(
    name: str, nets: tuple[str, ...], enricher: CountryEnricher
) -> None:
    seen = _same(CORPUS / name, nets, enricher, chunk_bytes=16 << 10)  # flows span batches
    if "echo-connections" in name:
        assert seen["promoted"] > 0, seen  # lone segments a later batch continued
    if "bug-1158" in name:  # datagrams from the sensor's address: UDP server bytes
        assert seen["udp_server_bytes"] > 0, seen


def test_hash_collisions_never_merge_different_payloads(
    gen_mix: ModuleType,
    enricher: CountryEnricher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every datagram hashed alike (the worst an attacker can craft): the byte comparison
    splits them again, and the rows are still those of the reference path."""

    def one_hash(*args: Any) -> None:
        args[-1].fill(0x5EED)

    monkeypatch.setattr(datagram, "_hashes", one_hash)
    path = tmp_path / "realistic.pcap"
    gen_mix.generate(path, 20_000, mix="realistic", seed=5)
    assert _same(path, MIX_NETS, enricher)["udp"] > 100


def test_each_distinct_payload_is_one_group(gen_mix: ModuleType, tmp_path: Path) -> None:
    """Groups are exactly the distinct (client bytes, server port, server bytes) keys."""
    path = tmp_path / "heavy.pcap"
    gen_mix.generate(path, 20_000, mix="payload-heavy", seed=6)
    nets = NetworkSet(MIX_NETS)
    for chunk in open_source(path).chunks():
        if not len(chunk):
            continue
        batch = decode(chunk)
        c = batch.columns
        c["is_outbound"] = nets.contains(c["ip_version"], c["src_ip4"], c["src_ip6"])
        d = datagrams(batch, chunk.data, per_flow_cap=100, server_cap=50)
        client, server = d.client_bytes.to_pylist(), d.server_bytes.to_pylist()
        keys = list(zip(client, d.server_port.tolist(), server, strict=True))
        assert len(set(keys)) == len(d.distinct) < len(d) // 2
        assert [d.distinct[g] for g in d.group.tolist()] == keys
        assert d.truncated.any() and (d.length > 100).sum() == d.truncated.sum()
        assert max(len(b) for b in client) == 100 and max(len(b) for b in server) <= 50
        assert np.array_equal(
            d.rows, np.flatnonzero((c["proto"] == 17) & (batch.payload_caplen > 0))
        )
