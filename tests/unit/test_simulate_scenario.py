"""Tests for teiten.simulate.scenario: registry, outputs, determinism, tool-readable pcaps."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import dpkt
import pytest

import teiten.simulate as sim
from teiten.errors import ConfigError
from teiten.simulate import SCENARIOS, SimulationResult, get_scenario, simulate


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate("smoke", tmp_path_factory.mktemp("smoke"))


def test_registry_holds_the_builtin_scenarios() -> None:
    assert {"npa-2017", "smoke"} <= set(SCENARIOS)
    assert get_scenario("npa-2017").days == 79
    assert all(hasattr(sim, name) for name in sim.__all__)


def test_unknown_scenario_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"known scenarios: .*npa-2017.*smoke"):
        simulate("npa-2099", tmp_path)
    with pytest.raises(ConfigError, match="scale"):
        simulate("smoke", tmp_path, scale=0)


def test_result_describes_the_files(smoke: SimulationResult) -> None:
    assert smoke.pcap.name == "smoke.pcap" and smoke.pcap.exists()
    assert smoke.truth == smoke.pcap.parent / "truth.json"
    assert smoke.sensor_networks == ("203.0.113.0/24",)
    assert 2000 < smoke.packets < 20000
    truth = json.loads(smoke.truth.read_text())
    assert truth["scenario"] == "smoke" and truth["pcaps"] == ["smoke.pcap"]
    assert truth["period"] == {"start": "2017-10-31T00:00:00Z", "end": "2017-11-01T23:59:59Z",
                               "days": 2}  # fmt: skip


def test_out_may_name_the_pcap(tmp_path: Path) -> None:
    result = simulate("smoke", tmp_path / "sub" / "capture.pcap")
    assert result.pcap == tmp_path / "sub" / "capture.pcap"
    assert result.truth == tmp_path / "sub" / "truth.json"


def test_same_seed_same_bytes(smoke: SimulationResult, tmp_path: Path) -> None:
    again = simulate("smoke", tmp_path / "again")
    assert again.pcap.read_bytes() == smoke.pcap.read_bytes()
    assert again.truth.read_bytes() == smoke.truth.read_bytes()
    other = simulate("smoke", tmp_path / "other", seed=1)
    assert other.pcap.read_bytes() != smoke.pcap.read_bytes()


def test_packets_are_in_time_order(smoke: SimulationResult) -> None:
    with smoke.pcap.open("rb") as fh:
        ts = [t for t, _ in dpkt.pcap.Reader(fh)]
    assert len(ts) == smoke.packets and ts == sorted(ts)


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_finds_no_errors(smoke: SimulationResult) -> None:
    checks = [f"{p}.check_checksum:TRUE" for p in ("ip", "tcp", "udp")]
    args = ["tshark", "-r", str(smoke.pcap), "-q", "-z", "expert,error"]
    for check in checks:
        args += ["-o", check]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    assert "Errors" not in out.stdout, out.stdout
    assert "Malformed" not in out.stdout
