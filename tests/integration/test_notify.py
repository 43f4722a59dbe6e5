"""Notification feeds (teiten.app.notify, teiten notify) over stores with known sources:
per-network counts equal direct SQL, sensor addresses are never listed, AS grouping needs
AS data, files are named safely and every cell is neutralised."""

from __future__ import annotations

import csv
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from teiten.app.engine import open_engine
from teiten.app.ingest import ingest
from teiten.app.notify import file_name, notify_feed
from teiten.cli.notify import notify_command
from teiten.config import Settings, load_settings
from teiten.errors import ConfigError
from teiten.secrecy import Secrecy
from teiten.simulate import SimulationResult
from teiten.sql.expressions import port_rule

DATA = Path(__file__).resolve().parents[1] / "data"
ASN_MMDB = DATA / "enrich" / "asn.mmdb"
SENSOR = "203.0.113.9"
BOTS = {"1.0.16.5": 30, "1.0.16.6": 20, "3.4.1.1": 10}
"""Mirai-fingerprinted sources (AS64496, AS64496, AS64498 in the test mmdb) and their SYNs."""
QUIET = "9.9.9.9"
"""A source without malicious evidence (plain SYNs): never listed."""
ALSO_SENSOR = "1.0.16.7"
"""A Mirai-fingerprinted source that also *received* a packet: the sensor's own."""


def _syn(src: str, dst: str, *, mirai: bool, sport: int = 40000) -> Any:
    seq = int(ipaddress.IPv4Address(dst)) if mirai else 12345
    return Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=23, flags="S", seq=seq)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("notify")
    packets = [
        _syn(s, SENSOR, mirai=True, sport=40000 + i) for s, n in BOTS.items() for i in range(n)
    ]
    packets += [_syn(QUIET, SENSOR, mirai=False) for _ in range(5)]
    packets += [_syn(ALSO_SENSOR, SENSOR, mirai=True) for _ in range(8)]
    packets += [_syn(QUIET, ALSO_SENSOR, mirai=False)]
    for i, p in enumerate(packets):
        p.time = 1_509_494_400 + i  # 2017-11-01 00:00 UTC onwards
    wrpcap(str(root / "in.pcap"), packets)
    settings = load_settings(
        env={},
        overrides={
            "data": str(root / "store"),
            "sensor_networks": ["203.0.113.0/24"],
            "asn_source": f"mmdb:{ASN_MMDB}",
            "tz": "UTC",
        },
    )
    ingest([root / "in.pcap"], settings)
    return settings


def _listed(feed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["address"]: s for g in feed for s in g["sources"]}


def test_by_asn_groups_the_bots_and_counts_equal_sql(crafted: Settings) -> None:
    feed = notify_feed(crafted, "asn")
    assert [g["network"] for g in feed] == ["AS64496", "AS64498"]
    assert set(_listed(feed)) == set(BOTS)
    with open_engine(crafted) as engine:
        for g in feed:
            listed = ", ".join(f"'{s['address']}'" for s in g["sources"])
            direct = engine.query(
                "SELECT count(*) AS n, count(DISTINCT src) AS k FROM packets "
                f"WHERE direction = 'in' AND src IN ({listed})"
            ).to_pylist()[0]
            assert g["counts"]["packets"] == direct["n"] == sum(BOTS[a] for a in _listed([g]))
            assert g["counts"]["sources"] == direct["k"] == len(g["sources"])
    bot = _listed(feed)["1.0.16.5"]
    assert bot["classification"] == "malicious" and bot["asn"] == 64496
    assert bot["evidence"]["fingerprints"] == {"mirai": 30}
    assert bot["evidence"]["ports"] == ["23/tcp"]
    assert {t["name"] for t in bot["tags"]} >= {"mirai", "telnet-scanner"}
    assert bot["first_seen"].startswith("2017-11-01T00:00") and bot["last_seen"].endswith("Z")


def test_one_network(crafted: Settings) -> None:
    (only,) = notify_feed(crafted, "asn", network="AS64498")
    assert only["network"] == "AS64498" and set(_listed([only])) == {"3.4.1.1"}
    (prefix,) = notify_feed(crafted, "prefix", network="1.0.16.0/24")
    assert prefix["network"] == "1.0.16.0/24"
    assert set(_listed([prefix])) == {"1.0.16.5", "1.0.16.6"}
    assert notify_feed(crafted, "prefix", network="1.0.16.5")[0]["network"] == "1.0.16.0/24"
    assert notify_feed(crafted, "prefix", network="8.8.8.0/24") == []
    assert notify_feed(crafted, "prefix", first="2017-11-02") == []


def test_sensor_addresses_are_never_listed(crafted: Settings) -> None:
    feed = notify_feed(crafted, "prefix")
    assert ALSO_SENSOR not in _listed(feed) and QUIET not in _listed(feed)
    assert not Secrecy([], [ALSO_SENSOR, SENSOR]).leaks(json.dumps(feed))
    hidden = notify_feed(
        crafted.replace(sensor_networks=["203.0.113.0/24", "3.4.1.0/24"]), "prefix"
    )
    assert "3.4.1.1" not in _listed(hidden) and "3.4.1.1" not in json.dumps(hidden)


def test_asn_grouping_needs_as_data(crafted: Settings) -> None:
    with pytest.raises(ConfigError, match="asn_source") as e:
        notify_feed(crafted.replace(asn_source="none"), "asn")
    assert "\n" not in str(e.value)
    for by, network in (("asn", "ASx"), ("prefix", "1.2.3.4/99"), ("prefix", "AS1")):
        with pytest.raises(ConfigError):
            notify_feed(crafted, by, network=network)
    with pytest.raises(ConfigError, match="--by"):
        notify_feed(crafted, "country")


def test_file_names_are_safe() -> None:
    assert file_name("198.51.100.0/24", "csv") == "198.51.100.0_24.csv"
    assert file_name("2001:db8:1::/48", "json") == "2001_db8_1___48.json"
    for hostile in ("../../etc/passwd", "/abs", "..", "a\x00b", "<x>"):
        name = file_name(hostile, "csv")
        assert "/" not in name and not name.startswith(".") and Path(name).name == name


def _cli(settings: Settings, *args: str) -> Any:
    base: list[str] = ["--data", str(settings.data_dir)]
    env = {"TEITEN_CONFIG": "", "TEITEN_ASN_SOURCE": str(settings.asn_source)}
    return CliRunner().invoke(notify_command, [*args, *base], env=env)


def test_command_writes_one_file_per_network_and_an_index(
    crafted: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "feeds"
    r = _cli(crafted, "--by", "asn", "--format", "csv", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["AS64496.csv", "AS64498.csv", "index.csv"]
    assert r.output.split() == [str(out / n) for n in ("AS64496.csv", "AS64498.csv", "index.csv")]
    with (out / "index.csv").open() as f:
        index = list(csv.DictReader(f))
    assert [(row["network"], row["sources"]) for row in index] == [
        ("AS64496", "2"),
        ("AS64498", "1"),
    ]
    with (out / "AS64496.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {row["address"] for row in rows} == {"1.0.16.5", "1.0.16.6"}
    assert all(not v.startswith(("=", "+", "-", "@")) for row in rows for v in row.values())
    out2 = tmp_path / "json"
    r = _cli(crafted, "--by", "prefix", "--format", "json", "--out", str(out2))
    assert r.exit_code == 0, r.output
    doc = json.loads((out2 / "1.0.16.0_24.json").read_text())
    assert doc["network"] == "1.0.16.0/24" and doc["counts"]["packets"] == 50
    assert json.loads((out2 / "index.json").read_text())[0]["file"] == "1.0.16.0_24.json"


def test_command_errors(crafted: Settings, tmp_path: Path) -> None:
    r = _cli(crafted, "--by", "prefix", "--out", str(tmp_path / "missing" / "feeds"))
    assert r.exit_code != 0 and "does not exist" in r.output


def test_seed_scenario_feed_never_names_a_sensor_address(
    npa_small: SimulationResult, tmp_path: Path
) -> None:
    settings = load_settings(
        env={},
        overrides={
            "data": str(tmp_path / "s"),
            "sensor_networks": ["203.0.113.0/24"],
            "tz": "Asia/Tokyo",
        },
    )
    ingest(list(npa_small.pcaps), settings)
    feed = notify_feed(settings, "prefix")
    assert feed, "the seed scenario has Mirai bots and exploit sessions"
    with open_engine(settings) as engine:
        received = {
            r["dst"]
            for r in engine.query(
                "SELECT DISTINCT dst FROM packets WHERE direction = 'in'"
            ).to_pylist()
        }
        for g in feed[:20]:
            listed = ", ".join(str(int(ipaddress.ip_address(s["address"]))) for s in g["sources"])
            n = engine.query(
                f"SELECT count(*) AS n FROM packets_raw WHERE src_ip4 IN ({listed}) "
                f"AND ip_version = 4 AND NOT is_outbound AND {port_rule()}"
            ).to_pylist()[0]["n"]
            assert g["counts"]["packets"] == n
    assert not Secrecy(["203.0.113.0/24"], received).leaks(json.dumps(feed))
    assert all(s["classification"] == "malicious" for g in feed for s in g["sources"])
