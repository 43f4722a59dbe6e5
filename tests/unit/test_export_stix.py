"""Tests for the STIX 2.1 export (teiten.export.stix).

The golden bundle is ``tests/baselines/stix_bundle.json``; after a deliberate
change, rewrite it with ``TEITEN_UPDATE_GOLDEN=1 python -m pytest
tests/unit/test_export_stix.py`` and review the diff.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import stix2

from teiten.config import load_settings
from teiten.errors import ConfigError
from teiten.export.stix import pattern_text, stix_bundle, stix_pattern
from teiten.export.tlp import IDS

GOLDEN = Path(__file__).resolve().parents[1] / "baselines" / "stix_bundle.json"
SENSOR_ADDRESSES = {"192.0.2.1", "2001:db8:2::1"}
SENSOR_NETWORKS = ["203.0.113.0/24"]
SENSOR_TEXT = ["192.0.2.1", "192.0.2.2", "2001:db8:2::1", "203.0.113.9", "203.0.113.5"]
"""Addresses that must never appear (192.0.2.2 is only a session's ``dst``)."""
# STIX 2.1 relationship tables (section 4 of the spec, "Relationships" of each object),
# for the source types this export makes: (source, type) -> allowed target types.
SPEC = {
    ("indicator", "indicates"): {"attack-pattern", "campaign", "infrastructure",
                                 "intrusion-set", "malware", "threat-actor", "tool"},
    ("indicator", "based-on"): {"observed-data"},
    ("attack-pattern", "delivers"): {"malware"},
    ("attack-pattern", "targets"): {"identity", "location", "vulnerability"},
    ("attack-pattern", "uses"): {"malware", "tool"},
    ("infrastructure", "delivers"): {"malware"},
    ("infrastructure", "has"): {"vulnerability"},
    ("infrastructure", "hosts"): {"tool", "malware"},
    ("malware", "exploits"): {"vulnerability"},
    ("malware", "uses"): {"attack-pattern", "infrastructure", "malware", "tool"},
    ("malware", "targets"): {"identity", "infrastructure", "location", "vulnerability"},
}  # fmt: skip


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def indicator(kind: str, value: str, first: str = "2017-11-27 00:00:00",
              last: str = "2017-11-27 00:00:00", sessions: int = 1,
              signatures: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    return {"type": kind, "value": value, "first_seen": t(first), "last_seen": t(last),
            "sessions": sessions, "sources": 1, "signatures": list(signatures)}  # fmt: skip


MIRAI = "sig.mirai-telnet-busybox-token"
REALTEK = "sig.realtek-miniigd-soap-cve-2014-8361"
HUAWEI = "sig.huawei-hg532-upgrade-cve-2017-17215"
SENSOR_NAMING = [
    ("ip", "192.0.2.1"), ("url", "http://192.0.2.1/x"), ("url", "http://3221225985/y"),
    ("url", "http://0xc0000201/z"), ("filename", "c0000201.sh"),
    ("domain", "192.0.2.1.nip.example"), ("ip_port", "[2001:db8:2::1]:8080"),
    ("url", "http://[2001:0db8:0002::0001]/v6"), ("ip", "203.0.113.9"),
    ("url", "http://192.0.2.2/q"), ("ip", "::ffff:cb00:7105"), ("ip", "64:ff9b::cb00:7105"),
    ("url", "http://[::ffff:cb00:7105]/p0.sh"), ("url", "http://[64:ff9b::cb00:7105]:81/a"),
    ("url", "http://0313.0.0161.05/b"), ("url", "http://203.28933/c"),
    ("url", "http://0xcb.0x0.0x71.0x5/d"), ("url", "http://cb007105/e"),
]  # fmt: skip
"""Indicators naming a sensor address in some notation: each must be left out."""
BENIGN = [("url", "http://www.google.com/bot.html"), ("url", "http://ads.tracker.example/px")]
"""Indicators only benign or unclassified sessions name: never ``malicious-activity``."""
INDICATORS = [
    indicator("url", "http://198.51.100.9/bins/mips", sessions=3, signatures=(MIRAI,)),
    indicator("ip", "198.51.100.9", sessions=3, signatures=(MIRAI,)),
    indicator("filename", "mips", sessions=3, signatures=(MIRAI,)),
    indicator("url", "http://198.51.100.7/it's\\x.sh", signatures=(REALTEK,)),
    indicator("domain", "loader.example.net", sessions=2),
    indicator("ip_port", "198.51.100.7:8080"),
    indicator("ip", "2001:db8:1::10"),
    indicator("email", "nobody@example.net"),
    *(indicator(k, v) for k, v in SENSOR_NAMING + BENIGN),
]  # fmt: skip
SESSIONS = [
    {"ts_first": 1511752455926535000, "ts_last": 1511752469600000000, "dst": "192.0.2.1",
     "kind": "bot", "signatures": [MIRAI], "cves": [], "jvn": [],
     "indicators": ["http://198.51.100.9/bins/mips", "198.51.100.9", "mips"]},
    {"ts_first": t("2017-11-29 00:00:00"), "ts_last": t("2017-11-29 00:00:01"), "dst": "192.0.2.2",
     "kind": "exploit", "signatures": [REALTEK], "cves": ["CVE-2014-8361"],
     "jvn": ["JVNDB-2014-008039"],
     "indicators": ["http://198.51.100.7/it's\\x.sh", *(v for _, v in SENSOR_NAMING)]},
    {"ts_first": t("2017-11-30 12:00:00"), "ts_last": t("2017-11-30 12:00:02"), "dst": "192.0.2.1",
     "signatures": ["sig.mirai-http-user-agent", HUAWEI], "cves": ["CVE-2017-17215"], "jvn": [],
     "indicators": ["198.51.100.7:8080", "loader.example.net", "2001:db8:1::10"]},
    {"ts_first": t("2017-12-01 09:00:00"), "ts_last": t("2017-12-01 09:00:01"), "dst": "192.0.2.1",
     "kind": None, "signatures": [], "cves": [], "jvn": [], "indicators": [v for _, v in BENIGN]},
    {"ts_first": t("2017-12-01 10:00:00"), "ts_last": t("2017-12-01 10:00:01"), "dst": "192.0.2.1",
     "kind": "scanner", "signatures": ["sig.scanner-zgrab-http"], "cves": [], "jvn": [],
     "indicators": [v for _, v in BENIGN]},
]  # fmt: skip
"""The third session has no stored kind: its signatures (exploit, bot) give it."""


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
    """Regexes of some ways an address can be written: dotted, integer, hex; IPv6 forms."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return [rf"(?<![0-9a-f:]){re.escape(f)}(?![0-9a-f:])" for f in (str(ip), ip.exploded)]
    v4 = int(ip)
    return [rf"(?<![0-9]){re.escape(str(ip))}(?![0-9])", rf"(?<![0-9]){v4}(?![0-9])",
            rf"(?<![0-9a-f]){v4:08x}(?![0-9a-f])", rf"::ffff:{v4 >> 16:x}:{v4 & 0xFFFF:x}",
            rf"64:ff9b::{v4 >> 16:x}:{v4 & 0xFFFF:x}"]  # fmt: skip


@functools.cache
def unfiltered() -> str:
    """The bundle with no sensor address declared (no network, no session ``dst``)."""
    return stix_bundle(INDICATORS, [{**s, "dst": None} for s in SESSIONS])


@pytest.mark.parametrize("address", SENSOR_TEXT)
def test_sensor_addresses_never_appear(text: str, address: str) -> None:
    for form in forms(address):
        assert not re.search(form, text.lower()), form
    found = unfiltered().lower()  # the check does find them when they are not declared secret
    assert any(re.search(form, found) for form in forms(address))


@pytest.mark.parametrize(("kind", "value"), SENSOR_NAMING)
def test_no_indicator_naming_the_sensor_in_any_notation(text: str, kind: str, value: str) -> None:
    patterns = {o["pattern"] for o in objects(text, "indicator")}
    assert stix_pattern(kind, value) not in patterns
    assert stix_pattern(kind, value) in {o["pattern"] for o in objects(unfiltered(), "indicator")}


def test_only_exploitation_and_delivery_become_indicators(text: str) -> None:
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
    for _, value in BENIGN:  # named only by an unclassified and a scanner session
        assert value not in text
    assert all(o["indicator_types"] == ["malicious-activity"] for o in objects(text, "indicator"))


def test_sightings_count_the_malicious_sessions(text: str) -> None:
    sightings = {o["sighting_of_ref"]: o for o in objects(text, "sighting")}
    mips = next(o for o in objects(text, "indicator") if "bins/mips" in o["pattern"])
    seen = sightings[mips["id"]]
    assert (seen["count"], seen["first_seen"], seen["last_seen"]) == (
        1,
        "2017-11-27T03:14:15.926535Z",
        "2017-11-27T03:14:29.6Z",
    )
    assert mips["valid_from"] == "2017-11-27T03:14:15.926535Z"
    identity = objects(text, "identity")[0]
    assert seen["where_sighted_refs"] == [identity["id"]] == [mips["created_by_ref"]]


def test_every_object_carries_the_tlp_marking(text: str) -> None:
    marking, *rest = json.loads(text)["objects"]
    assert (
        marking["id"] == IDS["amber"] == "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    )
    assert marking["name"] == "TLP:AMBER"
    ext = marking["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]
    assert ext == {"extension_type": "property-extension", "tlp_2_0": "amber"}
    assert rest and all(o["object_marking_refs"] == [IDS["amber"]] for o in rest)


def test_tlp_follows_the_setting() -> None:
    settings = load_settings(env={}, overrides={"stix_tlp": "TLP:RED"})
    assert settings.stix_tlp == "red"
    red = json.loads(stix_bundle(INDICATORS, SESSIONS, tlp=settings.stix_tlp))["objects"]
    assert red[0]["id"] == IDS["red"] and red[0]["name"] == "TLP:RED"
    assert all(o["object_marking_refs"] == [IDS["red"]] for o in red[1:])
    with pytest.raises(ConfigError, match="stix_tlp"):
        load_settings(env={}, overrides={"stix_tlp": "white"})


def test_malware_infrastructure_and_spec_relationships(text: str) -> None:
    types = {o["id"]: o["type"] for o in json.loads(text)["objects"]}
    names = {o["id"]: o.get("name") for o in json.loads(text)["objects"]}
    assert [m["name"] for m in objects(text, "malware")] == ["Mirai"]
    assert {i["name"] for i in objects(text, "infrastructure")} == {
        "download server 198.51.100[.]9", "download server 198.51.100[.]7",
        "download server loader.example[.]net", "download server 2001:db8:1::10"}  # fmt: skip
    assert all(i["infrastructure_types"] == ["hosting-malware"]
               for i in objects(text, "infrastructure"))  # fmt: skip
    vulns = {v["name"]: v["external_references"] for v in objects(text, "vulnerability")}
    assert set(vulns) == {"CVE-2014-8361", "CVE-2017-17215"}
    assert {"source_name": "jvn", "external_id": "JVNDB-2014-008039"} in vulns["CVE-2014-8361"]
    rels = objects(text, "relationship")
    assert rels and all(r["relationship_type"] != "related-to" for r in rels)
    for r in rels:
        source, target = types[r["source_ref"]], types[r["target_ref"]]
        assert target in SPEC[source, r["relationship_type"]], r
    said = {(names[r["source_ref"]], r["relationship_type"], names[r["target_ref"]])
            for r in rels}  # fmt: skip
    realtek = "Realtek SDK miniigd UPnP AddPortMapping command injection"
    huawei = "Huawei HG532 DeviceUpgrade_1 command injection"
    assert {(realtek, "targets", "CVE-2014-8361"), (huawei, "targets", "CVE-2017-17215"),
            (huawei, "delivers", "Mirai"), ("Mirai", "exploits", "CVE-2017-17215"),
            ("download server 198.51.100[.]9", "delivers", "Mirai")} <= said  # fmt: skip
    assert ("Mirai", "exploits", "CVE-2014-8361") not in said  # never seen together


def test_empty_input_gives_marking_and_identity_only() -> None:
    parsed = stix2.parse(stix_bundle([], []), allow_custom=False)
    assert [o.type for o in parsed.objects] == ["marking-definition", "identity"]


def test_patterns_escape_quotes_and_backslashes() -> None:
    assert pattern_text("a\\b'c") == "'a\\\\b\\'c'"
    assert stix_pattern("sha256", "ab" * 32) == f"[file:hashes.'SHA-256' = '{'ab' * 32}']"
    assert stix_pattern("ip", "not-an-ip") is None and stix_pattern("email", "x@y") is None


def test_source_tags_become_indicator_labels() -> None:
    sessions = [{**s, "id": f"s1-{i}"} for i, s in enumerate(SESSIONS)]
    tags = {"s1-0": ["mirai", "telnet-scanner", "scanner:lab 192.0.2.1"],
            "s1-1": ["exploit:CVE-2014-8361", "mirai"]}  # fmt: skip
    text = stix_bundle(INDICATORS, sessions, sensor_addresses=SENSOR_ADDRESSES,
                       sensor_networks=SENSOR_NETWORKS, source_tags=tags)  # fmt: skip
    stix2.parse(text, allow_custom=False)
    labels = {o["pattern"]: o.get("labels", []) for o in objects(text, "indicator")}
    mips = labels["[url:value = 'http://198.51.100.9/bins/mips']"]
    assert mips == [MIRAI, "source-tag:mirai", "source-tag:telnet-scanner"]
    realtek = labels["[url:value = 'http://198.51.100.7/it\\'s\\\\x.sh']"]
    assert realtek == [REALTEK, "source-tag:exploit:CVE-2014-8361", "source-tag:mirai"]
    v6 = labels["[ipv6-addr:value = '2001:db8:1::10']"]  # its session's source has no tags
    assert v6 and not any(x.startswith("source-tag:") for x in v6)
    assert "192.0.2.1" not in text and "scanner:lab" not in text
    assert text.replace("source-tag:", "") != text
    untagged = stix_bundle(INDICATORS, sessions, sensor_addresses=SENSOR_ADDRESSES,
                           sensor_networks=SENSOR_NETWORKS)  # fmt: skip
    assert "source-tag:" not in untagged
