"""Ingest with the other enrichment sources: RIR files for country, an mmdb for ASN."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from teiten.cli.main import cli

DATA = Path(__file__).parent.parent / "data" / "enrich"


def test_rir_country_and_mmdb_asn(tmp_path: Path) -> None:
    pcap = tmp_path / "in.pcap"
    sources = ["1.0.16.5", "1.0.16.6", "3.4.1.1", "9.9.9.9"]
    wrpcap(
        str(pcap),
        [Ether() / IP(src=s, dst="203.0.113.9") / TCP(dport=23, flags="S") for s in sources],
    )
    env = {
        "TEITEN_CONFIG": "",
        "TEITEN_COUNTRY_SOURCE": f"rir:{DATA / 'delegated-apnic-extended-latest'}",
        "TEITEN_ASN_SOURCE": f"mmdb:{DATA / 'asn.mmdb'}",
    }
    runner = CliRunner()
    r = runner.invoke(
        cli, ["ingest", str(pcap), "--data", str(tmp_path / "s")], env=env, catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    assert (
        "rir delegated-apnic-extended-latest 2024-05-20" in r.output and "GeoLite2-ASN" in r.output
    )
    r = runner.invoke(
        cli,
        [
            "query",
            "SELECT src, src_cc, src_asn, src_as_org FROM packets",
            "--data",
            str(tmp_path / "s"),
            "--format",
            "json",
        ],
        env=env,
    )
    rows = {x["src"]: x for x in json.loads(r.output)}
    assert rows["1.0.16.5"]["src_cc"] == "JP" and rows["1.0.16.5"]["src_asn"] == 64496
    assert rows["1.0.16.5"]["src_as_org"] == "Example Net Japan"
    assert rows["3.4.1.1"]["src_asn"] == 64498 and rows["9.9.9.9"]["src_asn"] is None
    r = runner.invoke(
        cli,
        ["trend", "23/tcp", "--split", "asn", "--data", str(tmp_path / "s"), "--format", "json"],
        env=env,
    )
    segs = {x["segment"]: x["sources"] for x in json.loads(r.output)}
    assert segs == {"AS64496": 2, "AS64498": 1, "unknown": 1}


def test_enrich_recomputes_stored_columns(tmp_path: Path) -> None:
    pcap = tmp_path / "in.pcap"
    wrpcap(
        str(pcap),
        [
            Ether() / IP(src=s, dst="203.0.113.9") / TCP(dport=23, flags="S")
            for s in ("1.0.16.5", "3.4.1.1")
        ],
    )
    runner = CliRunner()
    store = str(tmp_path / "s")
    env = {"TEITEN_CONFIG": ""}
    assert runner.invoke(cli, ["ingest", str(pcap), "--data", store], env=env).exit_code == 0

    def rows() -> dict[str, dict[str, object]]:
        r = runner.invoke(
            cli,
            [
                "query",
                "SELECT src, src_cc, src_asn, src_as_org, tcp_seq, ip_len FROM packets",
                "--data",
                store,
                "--format",
                "json",
            ],
            env=env,
        )
        return {x["src"]: x for x in json.loads(r.output)}

    before = rows()
    assert before["3.4.1.1"]["src_cc"] == "US" and before["1.0.16.5"]["src_asn"] is None
    r = runner.invoke(
        cli,
        [
            "enrich",
            "--data",
            store,
            "--source",
            f"rir:{DATA / 'delegated-apnic-extended-latest'}",
            "--asn-source",
            f"mmdb:{DATA / 'asn.mmdb'}",
            "--force",  # the APNIC file alone drops the US source's country
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert "re-enriched 2 packets" in r.output
    after = rows()
    assert after["3.4.1.1"]["src_cc"] is None  # not in the APNIC file
    assert after["1.0.16.5"]["src_cc"] == "JP" and after["1.0.16.5"]["src_asn"] == 64496
    for src in before:  # every other column untouched
        assert (after[src]["tcp_seq"], after[src]["ip_len"]) == (
            before[src]["tcp_seq"],
            before[src]["ip_len"],
        )
