"""Shared fixtures: settings over a temporary data directory, and simulated captures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from teiten.config import Settings, load_settings
from teiten.simulate import SimulationResult, simulate

# CI runs the property tests with a fixed seed, so a green run stays green; a
# developer's run explores new examples each time (and keeps failures in
# .hypothesis/ to replay).
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

DATA = Path(__file__).parent / "data"
SENSOR_NET = "203.0.113.0/24"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        env={},
        overrides={
            "data": str(tmp_path / "store"),
            "sensor_networks": [SENSOR_NET],
            "sensor": "test-sensor",
        },
    )


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """The simulator's small scenario (two days around the onset), written once per run."""
    return simulate("smoke", tmp_path_factory.mktemp("smoke"), seed=3)


@pytest.fixture(scope="session")
def npa_small(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """The seed scenario at a small scale (the whole 79 days)."""
    return simulate("npa-2017", tmp_path_factory.mktemp("npa"), scale=0.05, seed=5)


@pytest.fixture(scope="session")
def seed_store(npa_small: SimulationResult, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The small seed scenario ingested (Asia/Tokyo days) with its alerts detected and stored:
    the store the dashboard and API tests read (never written by them)."""
    from teiten.app.detect import run_detection
    from teiten.app.ingest import ingest

    settings = load_settings(
        env={},
        overrides={
            "data": str(tmp_path_factory.mktemp("seed") / "store"),
            "sensor_networks": [SENSOR_NET],
            "sensor": "test-sensor",
            "tz": "Asia/Tokyo",
            "home_country": "JP",
        },
    )
    ingest(npa_small.pcaps, settings)
    run_detection(settings)
    return settings
