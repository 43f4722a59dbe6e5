"""Sessions at ingest: every simulated exploit gets its CVE and indicators, the benign UPnP
request none, Telnet logins come back with the right Mirai-dictionary flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teiten.app.engine import run_query
from teiten.app.ingest import ingest
from teiten.config import Settings
from teiten.simulate import SimulationResult


@pytest.fixture
def stored(settings: Settings, smoke: SimulationResult) -> Settings:
    result = ingest(smoke.pcaps, settings)
    assert result.inputs[0].sessions > 0
    return settings


def _sessions(settings: Settings) -> dict[tuple[str, int], dict[str, object]]:
    rows = run_query(settings, "SELECT * FROM sessions WHERE proto = 'tcp'").to_pylist()
    return {(r["src"], r["src_port"]): r for r in rows}


def test_exploits_benign_and_logins(stored: Settings, smoke: SimulationResult) -> None:
    truth = json.loads(smoke.truth.read_text())
    sessions = _sessions(stored)
    logins = run_query(stored, "SELECT * FROM logins").to_pylist()
    kinds = set()
    for t in truth["sessions"]:
        s = sessions[(t["src"], t["sport"])]
        kinds.add(t["kind"])
        assert sorted(s["cves"]) == sorted(t["cves"]), t["kind"]
        if t["kind"] == "benign.upnp":
            assert s["kind"] == "benign" and not s["cves"] and not s["indicators"]
        if t["kind"].startswith("exploit"):
            assert s["kind"] == "exploit"
            for url in t["indicators"]["urls"]:
                assert url in s["indicators"], (url, s["indicators"])
        if t["kind"] == "telnet.login":
            mine = [
                (x["username"], x["password"], x["mirai_dict"])
                for x in logins
                if x["src"] == t["src"]
            ]
            want = [(x["username"], x["password"], x["mirai_dict"]) for x in t["logins"]]
            assert mine == want
    assert {"exploit.realtek-miniigd", "benign.upnp", "telnet.login"} <= kinds


def test_indicators_view_and_reingest(stored: Settings, smoke: SimulationResult) -> None:
    rows = run_query(stored, "SELECT * FROM indicators").to_pylist()
    okiru = [r for r in rows if r["type"] == "filename" and r["value"] == "okiru.sh"]
    assert okiru and "sig.realtek-miniigd-soap-cve-2014-8361" in okiru[0]["signatures"]
    before = run_query(stored, "SELECT count(*) AS n FROM sessions").column("n")[0].as_py()
    ingest(smoke.pcaps, stored)
    after = run_query(stored, "SELECT count(*) AS n FROM sessions").column("n")[0].as_py()
    assert before == after


def test_cowrie_log_ingests_into_the_same_tables(settings: Settings) -> None:
    log = Path(__file__).parent.parent / "data" / "cowrie" / "cowrie.json"
    s = settings.replace(sensor_networks=["192.0.2.0/24"])
    r = ingest([log], s).inputs[0]
    assert r.status == "ingested" and r.packets == 0 and r.sessions == 4
    assert r.skipped  # the malformed lines are counted, not fatal
    rows = {x["src"]: x for x in run_query(s, "SELECT * FROM sessions").to_pylist()}
    mirai = rows["203.0.113.45"]
    assert mirai["app"] == "telnet" and "sig.mirai-telnet-busybox-token" in mirai["signatures"]
    assert "http://198.51.100.9/bins/mips" in mirai["indicators"]
    logins = run_query(
        s, "SELECT username, password, success, mirai_dict FROM logins WHERE src = '203.0.113.45'"
    ).to_pylist()
    assert {"username": "root", "password": "xc3511", "success": True, "mirai_dict": True} in logins
    assert ingest([log], s).inputs[0].status == "duplicate"
