"""Tests for the STIX 2.1 export (teiten.export.stix).

The golden bundle is ``tests/baselines/stix_bundle.json``; after a deliberate
change, rewrite it with ``TEITEN_UPDATE_GOLDEN=1 python -m pytest
tests/unit/test_export_stix.py`` and review the diff.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import stix2

from teiten.export.stix import SensorFilter, pattern_text, stix_bundle, stix_pattern

GOLDEN = Path(__file__).resolve().parents[1] / "baselines" / "stix_bundle.json"
SENSOR_ADDRESSES = {"192.0.2.1", "2001:db8:2::1"}
SENSOR_NETWORKS = ["203.0.113.0/24"]
SENSOR_TEXT = ["192.0.2.1", "192.0.2.2", "2001:db8:2::1", "203.0.113.9"]
"""Addresses that must never appear (192.0.2.2 is only a session's ``dst``)."""
# Legal (source type, relationship type, target type) triples used, from the STIX 2.1
# relationship tables (Indicator and Malware sections; related-to is common to all).
LEGAL = {("indicator", "indicates", "malware"), ("malware", "exploits", "vulnerability"),
         ("indicator", "related-to", "vulnerability")}  # fmt: skip


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def indicator(kind: str, value: str, first: str, last: str, sessions: int = 1,
              signatures: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    return {"type": kind, "value": value, "first_seen": t(first), "last_seen": t(last),
            "sessions": sessions, "sources": 1, "signatures": list(signatures)}  # fmt: skip


MIRAI = "sig.mirai-telnet-busybox-token"
REALTEK = "sig.realtek-miniigd-soap-cve-2014-8361"
INDICATORS = [
    indicator("url", "http://198.51.100.9/bins/mips", "2017-11-27 03:14:25",
              "2017-11-28 10:00:00.5", 3, (MIRAI,)),
    indicator("ip", "198.51.100.9", "2017-11-27 03:14:25", "2017-11-28 10:00:00.5", 3, (MIRAI,)),
    indicator("filename", "mips", "2017-11-27 03:14:25", "2017-11-28 10:00:00.5", 3, (MIRAI,)),
    indicator("url", "http://198.51.100.7/it's\\x.sh", "2017-11-29 00:00:00",
              "2017-11-29 00:00:00", 1, (REALTEK,)),
    indicator("domain", "loader.example.net", "2017-11-30 12:00:00", "2017-12-01 12:00:00", 2),
    indicator("ip_port", "198.51.100.7:8080", "2017-11-30 12:00:00", "2017-11-30 12:00:00"),
    indicator("ip", "2001:db8:1::10", "2017-11-30 12:00:00", "2017-11-30 12:00:00"),
    # Each of these names a sensor address and must be left out:
    indicator("ip", "192.0.2.1", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("url", "http://192.0.2.1/x", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("url", "http://3221225985/y", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("url", "http://0xc0000201/z", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("filename", "c0000201.sh", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("domain", "192.0.2.1.nip.example", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("ip_port", "[2001:db8:2::1]:8080", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("url", "http://[2001:0db8:0002::0001]/v6", "2017-11-27 00:00:00",
              "2017-11-27 00:00:00"),
    indicator("ip", "203.0.113.9", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("url", "http://192.0.2.2/q", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
    indicator("email", "nobody@example.net", "2017-11-27 00:00:00", "2017-11-27 00:00:00"),
]  # fmt: skip
SESSIONS = [
    {"ts_first": 1511752455926535000, "ts_last": 1511752469600000000, "dst": "192.0.2.1",
     "signatures": [MIRAI], "cves": [], "jvn": [],
     "indicators": ["http://198.51.100.9/bins/mips", "198.51.100.9", "mips"]},
    {"ts_first": t("2017-11-29 00:00:00"), "ts_last": t("2017-11-29 00:00:01"), "dst": "192.0.2.2",
     "signatures": [REALTEK], "cves": ["CVE-2014-8361"], "jvn": ["JVNDB-2014-008039"],
     "indicators": ["http://198.51.100.7/it's\\x.sh", "http://192.0.2.2/q"]},
    {"ts_first": t("2017-11-30 12:00:00"), "ts_last": t("2017-11-30 12:00:02"), "dst": "192.0.2.1",
     "signatures": ["sig.mirai-http-user-agent", "sig.huawei-hg532-upgrade-cve-2017-17215"],
     "cves": ["CVE-2017-17215"], "jvn": [], "indicators": ["198.51.100.7:8080"]},
]  # fmt: skip


def bundle() -> str:
    return stix_bundle(INDICATORS, SESSIONS, sensor_addresses=SENSOR_ADDRESSES,
                       sensor_networks=SENSOR_NETWORKS)  # fmt: skip


@pytest.fixture(scope="module")
def text() -> str:
    return bundle()


def objects(text: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in json.loads(text)["objects"] if o["type"] == kind]


def test_matches_the_golden_file(text: str) -> None:
    if os.environ.get("TEITEN_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == GOLDEN.read_text(encoding="utf-8")


def test_parses_back_as_strict_stix(text: str) -> None:
    parsed = stix2.parse(text, allow_custom=False)
    assert parsed.type == "bundle" and len(parsed.objects) == len(json.loads(text)["objects"])


def test_stable_whatever_the_input_order() -> None:
    again = stix_bundle(INDICATORS[::-1], SESSIONS[::-1], sensor_addresses=SENSOR_ADDRESSES,
                        sensor_networks=SENSOR_NETWORKS)  # fmt: skip
    assert again == bundle()


def forms(address: str) -> list[str]:
    """Regexes of the ways an address can be written: dotted, integer, hex; IPv6 short, long."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return [rf"(?<![0-9a-f:]){re.escape(f)}(?![0-9a-f:])" for f in (str(ip), ip.exploded)]
    return [rf"(?<![0-9]){re.escape(str(ip))}(?![0-9])", rf"(?<![0-9]){int(ip)}(?![0-9])",
            rf"(?<![0-9a-f]){int(ip):08x}(?![0-9a-f])"]  # fmt: skip


@pytest.mark.parametrize("address", SENSOR_TEXT)
def test_sensor_addresses_never_appear(text: str, address: str) -> None:
    for form in forms(address):
        assert not re.search(form, text.lower()), form
    unfiltered = stix_bundle(INDICATORS, []).lower()  # the check does find them when present
    assert any(re.search(form, unfiltered) for form in forms(address))


def test_one_indicator_and_sighting_per_kept_row(text: str) -> None:
    patterns = sorted(o["pattern"] for o in objects(text, "indicator"))
    assert patterns == sorted([
        "[url:value = 'http://198.51.100.9/bins/mips']",
        "[ipv4-addr:value = '198.51.100.9']",
        "[file:name = 'mips']",
        "[url:value = 'http://198.51.100.7/it\\'s\\\\x.sh']",
        "[domain-name:value = 'loader.example.net']",
        "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = "
        "'198.51.100.7' AND network-traffic:dst_port = 8080]",
        "[ipv6-addr:value = '2001:db8:1::10']",
    ])  # fmt: skip
    sightings = {o["sighting_of_ref"]: o for o in objects(text, "sighting")}
    mips = next(o for o in objects(text, "indicator") if "bins/mips" in o["pattern"])
    seen = sightings[mips["id"]]
    assert (seen["count"], seen["first_seen"], seen["last_seen"]) == (
        3, "2017-11-27T03:14:25Z", "2017-11-28T10:00:00.5Z")
    assert mips["valid_from"] == "2017-11-27T03:14:25Z"
    identity = objects(text, "identity")[0]
    assert seen["where_sighted_refs"] == [identity["id"]] == [mips["created_by_ref"]]


def test_malware_vulnerabilities_and_legal_relationships(text: str) -> None:
    types = {o["id"]: o["type"] for o in json.loads(text)["objects"]}
    assert [m["name"] for m in objects(text, "malware")] == ["Mirai"]
    vulns = {v["name"]: v["external_references"] for v in objects(text, "vulnerability")}
    assert set(vulns) == {"CVE-2014-8361", "CVE-2017-17215"}
    assert {"source_name": "jvn", "external_id": "JVNDB-2014-008039"} in vulns["CVE-2014-8361"]
    assert {"source_name": "cve", "external_id": "CVE-2017-17215"} in vulns["CVE-2017-17215"]
    triples = {(types[r["source_ref"]], r["relationship_type"], types[r["target_ref"]])
               for r in objects(text, "relationship")}  # fmt: skip
    assert triples == LEGAL


def test_empty_input_gives_an_identity_only_bundle() -> None:
    parsed = stix2.parse(stix_bundle([], []), allow_custom=False)
    assert [o.type for o in parsed.objects] == ["identity"]


def test_patterns_escape_quotes_and_backslashes() -> None:
    assert pattern_text("a\\b'c") == "'a\\\\b\\'c'"
    assert stix_pattern("sha256", "ab" * 32) == f"[file:hashes.'SHA-256' = '{'ab' * 32}']"
    assert stix_pattern("ip", "not-an-ip") is None and stix_pattern("email", "x@y") is None


@pytest.mark.parametrize(
    ("kind", "value", "named"),
    [
        ("ip", "192.0.2.1", True),
        ("ip", "192.0.2.10", False),
        ("url", "http://0300.0.2.1/x", True),
        ("url", "http://198.51.100.7/?t=192.0.2.1", True),
        ("ip_port", "203.0.113.200:23", True),
        ("domain", "loader.example.net", False),
        ("url", "http://[2001:db8:2:0::1]/", True),
    ],
)
def test_sensor_filter(kind: str, value: str, named: bool) -> None:
    f = SensorFilter(SENSOR_ADDRESSES, SENSOR_NETWORKS)
    assert f.names_sensor(kind, value) is named
