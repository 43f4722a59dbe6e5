"""One source's profile (teiten.app.sources) over a store made from the simulator's seed
scenario, an IPv6 capture and a Cowrie log: the numbers equal direct SQL over the views,
tags and classification follow from the evidence, and the filter is pushed into the scan."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from teiten.app.engine import open_engine
from teiten.app.ingest import ingest
from teiten.app.sources import (
    batch_evidence,
    scanner_list,
    session_source_tags,
    source_profile,
)
from teiten.config import Settings, load_settings
from teiten.errors import ConfigError
from teiten.fingerprint import registry
from teiten.simulate import SimulationResult
from teiten.sql import sources
from teiten.sql.sources import Source
from teiten.tags import classify, tags_for

DATA = Path(__file__).resolve().parents[1] / "data"
TEST_LIST = DATA / "tags" / "scanners.toml"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult) -> Settings:
    root = tmp_path_factory.mktemp("sources")
    settings = load_settings(
        env={},
        overrides={
            "data": str(root / "store"),
            "sensor_networks": ["203.0.113.0/24", "2001:db8:2::/64"],
            "tz": "Asia/Tokyo",
            "tag_files": [str(TEST_LIST)],
        },
    )
    ingest([*npa_small.pcaps, DATA / "eth_ipv6.pcap", DATA / "cowrie" / "cowrie.json"], settings)
    return settings


def _query(settings: Settings, sql: str) -> list[dict[str, Any]]:
    with open_engine(settings) as engine:
        rows: list[dict[str, Any]] = engine.query(sql).to_pylist()
    return rows


def _mirai_bot(settings: Settings) -> str:
    """The source with the most Mirai-fingerprinted packets, all of its packets so."""
    (row,) = _query(
        settings,
        "SELECT src, count(*) AS n FROM packets WHERE direction = 'in' GROUP BY src"
        " HAVING count(*) FILTER (WHERE list_contains(fingerprints, 'mirai')) = count(*)"
        " ORDER BY n DESC, src LIMIT 1",
    )
    return str(row["src"])


def test_a_mirai_bot_is_tagged_malicious_with_numbers_equal_to_sql(store: Settings) -> None:
    bot = _mirai_bot(store)
    profile = source_profile(store, bot)
    assert profile is not None and profile["address"] == bot
    (direct,) = _query(
        store,
        f"SELECT count(*) AS n, min(ts) AS a, max(ts) AS b, count(DISTINCT dst_port) AS ports"
        f" FROM packets WHERE src = '{bot}' AND direction = 'in'",
    )
    assert profile["packets"] == direct["n"] == profile["fingerprints"]["mirai"]
    assert sum(p["packets"] for p in profile["ports"]) == direct["n"]
    assert profile["port_count"] == len(profile["ports"]) == direct["ports"]
    assert (
        profile["first_seen"].endswith("+09:00") and profile["first_seen"] <= profile["last_seen"]
    )
    tags = {t["name"]: t for t in profile["tags"]}
    assert tags["mirai"]["class"] == "malicious" and tags["mirai"]["source"] == "derived"
    assert f"{direct['n']:,} of {direct['n']:,} packets" in tags["mirai"]["evidence"]
    assert profile["classification"] == "malicious"
    ports = [p["packets"] for p in profile["ports"]]
    assert ports == sorted(ports, reverse=True)


def test_an_exploiting_source_lists_its_sessions_and_cves(store: Settings) -> None:
    rows = _query(
        store,
        "SELECT src, count(*) AS n FROM sessions WHERE len(cves) > 0 GROUP BY src"
        " ORDER BY n DESC, src LIMIT 1",
    )
    src = str(rows[0]["src"])
    profile = source_profile(store, src)
    assert profile is not None
    direct = _query(store, f"SELECT id, cves FROM sessions WHERE src = '{src}'")
    assert profile["sessions"]["count"] == len(direct)
    latest = profile["sessions"]["latest"]
    assert {s["id"] for s in latest} <= {r["id"] for r in direct}
    assert [s["ts_first"] for s in latest] == sorted((s["ts_first"] for s in latest), reverse=True)
    cves = {c for r in direct for c in r["cves"]}
    assert set(profile["cves"]) == cves
    assert {f"exploit:{c}" for c in cves} <= {t["name"] for t in profile["tags"]}
    assert profile["classification"] == "malicious"


def test_a_source_in_an_operators_scanner_list_is_benign(store: Settings) -> None:
    profile = source_profile(store, "198.51.100.23")  # the Cowrie log's SSH client
    assert profile is not None
    direct = _query(store, "SELECT count(*) AS n FROM logins WHERE src = '198.51.100.23'")
    assert profile["logins"]["count"] == direct[0]["n"] > 0
    assert profile["logins"]["latest"] and profile["packets"] == 0
    (tag,) = [t for t in profile["tags"] if t["class"] == "benign"]
    assert tag["source"] == "file:scanners.toml" and "198.51.100.0/24" in tag["evidence"]
    assert profile["classification"] == "benign"


def test_ipv6_source(store: Settings) -> None:
    profile = source_profile(store, "2001:DB8:1::10")
    assert profile is not None and profile["address"] == "2001:db8:1::10"
    direct = _query(
        store, "SELECT count(*) AS n FROM packets WHERE src = '2001:db8:1::10' AND direction = 'in'"
    )
    assert profile["packets"] == direct[0]["n"] > 0
    assert profile["sessions"]["count"] > 0


def test_unseen_sensor_and_invalid_addresses(store: Settings) -> None:
    assert source_profile(store, "192.0.2.99") is None
    assert source_profile(store, "203.0.113.5") is None  # inside sensor_networks
    assert source_profile(store, "192.0.2.10") is None  # received the Cowrie sessions
    for bad in ("not-an-ip", "1.2.3.4/24", "", "1.2.3.4\n5"):
        with pytest.raises(ConfigError) as e:
            source_profile(store, bad)
        assert "\n" not in str(e.value)


def test_a_broken_tag_file_is_one_line(store: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "mine.toml"
    broken.write_text("[[scanner]]\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mine\.toml"):
        source_profile(store.replace(tag_files=[str(broken)]), _mirai_bot(store))


@pytest.mark.parametrize("address", ["139.197.232.182", "2001:db8:1::10"])
def test_the_address_filter_is_pushed_into_the_parquet_scan(store: Settings, address: str) -> None:
    src = Source.of(ipaddress.ip_address(address))
    with open_engine(store) as engine:
        plan = engine.query("EXPLAIN " + sources.source_ports(engine.dialect, src, limit=5))
    text = " ".join(" ".join(str(v).split()) for v in plan.column("explain_value").to_pylist())
    scan = text.split("READ_PARQUET", 1)[1]
    column = "src_ip4" if src.version == 4 else "src_ip6"
    assert "Filters:" in scan and column in scan.split("Filters:", 1)[1][:200]


def test_batch_evidence_classifies_like_the_profile(store: Settings) -> None:
    bot = _mirai_bot(store)
    exploiting = _query(
        store, "SELECT src, id FROM sessions WHERE len(cves) > 0 ORDER BY id LIMIT 1"
    )[0]
    addresses = [bot, str(exploiting["src"]), "198.51.100.23", "2001:db8:1::10"]
    keys = [Source.of(ipaddress.ip_address(a)) for a in addresses]
    fps = [(f.bit, f.name) for f in registry.registered()]
    scanners = scanner_list(store)
    with open_engine(store) as engine:
        evidence = batch_evidence(engine, keys, fps, 0, 1 << 62)
        tags = session_source_tags(store, engine, ["exploit", "bot"])
    for a, k in zip(addresses, keys, strict=True):
        profile = source_profile(store, a)
        assert profile is not None
        verdict = classify(tags_for(evidence[k], scanners))
        assert verdict.classification == profile["classification"], a
    assert evidence[keys[0]].fingerprints["mirai"] == evidence[keys[0]].packets > 0
    sid = str(exploiting["id"])
    (row,) = _query(store, f"SELECT cves FROM sessions WHERE id = '{sid}'")
    assert {f"exploit:{c}" for c in row["cves"]} <= set(tags[sid])
