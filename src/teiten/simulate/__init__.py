"""Simulate darknet scenarios: write real pcaps and their ground truth, for demos and tests.

>>> from teiten.simulate import simulate
>>> result = simulate("smoke", Path("out"))  # doctest: +SKIP
>>> result.pcap, result.truth, result.packets  # doctest: +SKIP
(PosixPath('out/smoke.pcap'), PosixPath('out/truth.json'), 8123)
"""

from __future__ import annotations

from teiten.simulate.scenario import (
    SCENARIOS,
    Context,
    Scenario,
    SimulationResult,
    Traffic,
    get_scenario,
    simulate,
)

__all__ = [
    "SCENARIOS",
    "Context",
    "Scenario",
    "SimulationResult",
    "Traffic",
    "get_scenario",
    "simulate",
]
