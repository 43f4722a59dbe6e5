"""Run a named scenario: generate its packets, write the pcap and its ground truth.

A :class:`Scenario` declares a period, a sensor network, the expected
onsets, and a ``build`` function that turns a :class:`Context` (seeded random
streams, scale, address pools) into :class:`Traffic`. :data:`SCENARIOS` is
the registry; :func:`simulate` runs one and returns a :class:`SimulationResult`.
"""

from __future__ import annotations

import ipaddress
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import iptocc
import numpy as np
import numpy.typing as npt

from teiten.errors import ConfigError
from teiten.simulate.pcapwriter import PacketColumns, write_pcap
from teiten.simulate.truth import build_truth

U32 = npt.NDArray[np.uint32]
FOREIGN_MIX: dict[str, float] = {
    "CN": 0.22, "US": 0.16, "RU": 0.08, "BR": 0.08, "KR": 0.06, "TW": 0.05, "VN": 0.05,
    "IN": 0.05, "DE": 0.03, "NL": 0.03, "*": 0.19,
}  # fmt: skip
"""Share of foreign sources per allocated country (``*``: any other country)."""
_NOT_PUBLIC = [ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
)]  # fmt: skip


def dotted(addrs: npt.NDArray[Any]) -> list[str]:
    """IPv4 addresses (integers) as dotted quads."""
    return [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in addrs.tolist()]


def is_public(addrs: U32) -> npt.NDArray[np.bool_]:
    """True for addresses outside the special-purpose (bogon) ranges."""
    ok = np.ones(addrs.shape[0], bool)
    for net in _NOT_PUBLIC:
        mask = np.uint32(int(net.netmask))
        ok &= (addrs & mask) != np.uint32(int(net.network_address))
    return ok


@dataclass(frozen=True)
class Context:
    """What a scenario's ``build`` needs: seeded randomness, scale, period, sensor."""

    seed: int
    scale: float
    start_ns: int
    days: int
    first_day: date
    network: ipaddress.IPv4Network
    home_country: str = "JP"

    def rng(self, name: str) -> np.random.Generator:
        """An independent random stream per component, fixed by seed and name."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    def count(self, base: float, minimum: int = 0) -> int:
        """``base`` scaled, never below ``minimum``."""
        return max(minimum, round(base * self.scale))

    def hosts(self, rng: np.random.Generator, n: int) -> U32:
        """``n`` random addresses of the sensor network."""
        base = int(self.network.network_address)
        return (base + rng.integers(0, self.network.num_addresses, n)).astype(np.uint32)

    def day_of(self, day: date) -> int:
        """Index of ``day`` in the period."""
        return (day - self.first_day).days

    def addresses(self, rng: np.random.Generator, domestic: int, foreign: int) -> tuple[
            U32, U32]:  # fmt: skip
        """Random public addresses allocated to the home country, and to others.

        Foreign addresses follow :data:`FOREIGN_MIX`; both arrays are shuffled.
        """
        want = {self.home_country: domestic}
        counts = rng.multinomial(foreign, list(FOREIGN_MIX.values()))
        want.update(zip(FOREIGN_MIX, counts.tolist(), strict=True))
        got: dict[str, list[U32]] = {k: [] for k in want}
        have = dict.fromkeys(want, 0)
        for _ in range(400):
            if all(have[k] >= want[k] for k in want):
                break
            cand = rng.integers(1 << 24, 224 << 24, 1 << 17, dtype=np.uint32)
            cand = cand[is_public(cand)]
            cand = cand[np.sort(np.unique(cand, return_index=True)[1])]
            cc = np.array([c or "" for c in iptocc.country_code(dotted(cand))])
            other = ~np.isin(cc, [*want, ""])
            for k in want:
                pick = cand[other] if k == "*" else cand[cc == k]
                got[k].append(pick[: want[k] - have[k]])
                have[k] += got[k][-1].shape[0]
        home = np.concatenate(got.pop(self.home_country))[:domestic]
        rest = np.concatenate([np.concatenate(v) for v in got.values()])
        return rng.permutation(home), rng.permutation(rest)


@dataclass
class Traffic:
    """What a scenario generates: packets in any order, and responder session records."""

    packets: PacketColumns
    sessions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    """A reproducible capture: period, sensor, expected onsets, and how to build it."""

    name: str
    summary: str
    first_day: date
    days: int
    sensor_network: str
    build: Callable[[Context], Traffic]
    home_country: str = "JP"
    tracked: tuple[str, ...] = ()
    """``port/proto`` keys the truth series lists; other ports are ``other/tcp|udp``."""
    onsets: Mapping[str, str] = field(default_factory=dict)
    onset_segment: str = "domestic"
    no_surge: tuple[tuple[str, str], ...] = ()
    """(key, segment) series that must stay flat."""


@dataclass(frozen=True)
class SimulationResult:
    """Where a simulation wrote its files, and what they hold."""

    scenario: str
    pcaps: tuple[Path, ...]
    truth: Path
    packets: int
    sensor_networks: tuple[str, ...]

    @property
    def pcap(self) -> Path:
        """The (first) capture file."""
        return self.pcaps[0]


def _builtins() -> dict[str, Scenario]:
    from teiten.simulate import npa2017

    return {s.name: s for s in npa2017.SCENARIOS}


SCENARIOS: dict[str, Scenario] = _builtins()
"""Every known scenario by name."""


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; :class:`~teiten.errors.ConfigError` if unknown."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ConfigError(f"unknown scenario {name!r}; known scenarios: {known}") from None


def _paths(name: str, out: Path) -> tuple[Path, Path]:
    if out.suffix == ".pcap":
        out.parent.mkdir(parents=True, exist_ok=True)
        return out, out.parent / "truth.json"
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{name}.pcap", out / "truth.json"


def simulate(name: str, out: Path, *, scale: float = 1.0, seed: int = 0) -> SimulationResult:
    """Write scenario ``name`` as a pcap and a ``truth.json`` beside it.

    ``out`` is a directory (the capture is ``<out>/<name>.pcap``) or a path
    ending in ``.pcap``. ``scale`` multiplies packet and source volumes; the
    same ``seed`` gives byte-identical files.

    >>> simulate("smoke", Path("/tmp/sim")).packets  # doctest: +SKIP
    4321
    """
    scenario = get_scenario(name)
    if not scale > 0:
        raise ConfigError(f"scale must be positive, got {scale}")
    pcap, truth_path = _paths(name, Path(out))
    start = datetime.combine(scenario.first_day, datetime.min.time(), UTC)
    ctx = Context(
        seed=seed, scale=scale, start_ns=int(start.timestamp()) * 1_000_000_000,
        days=scenario.days, first_day=scenario.first_day,
        network=ipaddress.IPv4Network(scenario.sensor_network),
        home_country=scenario.home_country,
    )  # fmt: skip
    traffic = scenario.build(ctx)
    packets = traffic.packets.sorted_by_time()
    count = write_pcap(pcap, packets, [scenario.sensor_network])
    truth = build_truth(scenario, ctx, packets, traffic.sessions)
    truth["pcaps"] = [pcap.name]
    truth_path.write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")
    return SimulationResult(name, (pcap,), truth_path, count, (scenario.sensor_network,))


def period(scenario: Scenario) -> tuple[str, str]:
    """First and last second of the scenario, ISO 8601 UTC."""
    last = scenario.first_day + timedelta(days=scenario.days - 1)
    return f"{scenario.first_day.isoformat()}T00:00:00Z", f"{last.isoformat()}T23:59:59Z"
