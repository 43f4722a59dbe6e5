"""Evaluate the surge detector on seeded random scenarios, and time it on every port for a year.

    python bench/detection.py [--scenarios 50] [--seed 1]

Each scenario is a matrix of daily unique-source counts: 300 series of 150
days, background levels log-uniform from 2 to 2,000 sources a day with
overdispersed (negative binomial) noise, a ±15 % weekly pattern, one-day
spikes, and on 20 % of the series a rise of 3–20× the level lasting 5–40 days
(a step or an infection-like ramp) at a random onset. Scored as the issue asks:

* recall over rises of ≥ 3× lasting ≥ 5 days (any alert on the series between
  onset − 2 and the end of the rise);
* onset accuracy: share of found rises whose onset is within ± 1 day;
* false sustained alerts per 100 port-months (30 days) of steady background.

Then the speed case: a year of daily series for all 65,536 TCP + 65,536 UDP
ports (131,072 rows × 365 days) through ``teiten.analysis.surge.detect``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from teiten.analysis.surge import detect

DAYS, SERIES, RISE_SHARE = 150, 300, 0.2


@dataclass
class Rise:
    row: int
    onset: int
    end: int
    factor: float


def scenario(rng: np.random.Generator) -> tuple[np.ndarray, list[Rise]]:
    level = np.exp(rng.uniform(np.log(2), np.log(2000), SERIES))
    weekly = 1 + 0.15 * np.sin(
        2 * np.pi * (np.arange(DAYS) % 7) / 7 + rng.uniform(0, 6, (SERIES, 1))
    )
    mean = level[:, None] * weekly
    rises: list[Rise] = []
    for row in np.flatnonzero(rng.random(SERIES) < RISE_SHARE):
        onset = int(rng.integers(40, DAYS - 10))
        length = int(rng.integers(5, 41))
        end = min(DAYS - 1, onset + length - 1)
        factor = float(rng.uniform(3, 20))
        t = np.arange(end - onset + 1)
        shape = np.ones_like(t, float) if rng.random() < 0.5 else 1 - np.exp(-(t + 1) / 2.0)
        mean[row, onset : end + 1] *= 1 + (factor - 1) * shape
        rises.append(Rise(int(row), onset, end, factor))
    # negative binomial noise: variance = mean + mean² / 50
    r = 50.0
    x = rng.negative_binomial(r, r / (r + mean)).astype(float)
    spikes = rng.random(x.shape) < 0.003
    x[spikes] *= rng.uniform(3, 10, spikes.sum())
    return x, rises


def evaluate(n: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    found = hits = onset_ok = false = 0
    steady_days = 0
    total = 0
    for _ in range(n):
        x, rises = scenario(rng)
        alerts = detect(x)
        by_row: dict[int, list[int]] = {}
        for a in alerts:
            by_row.setdefault(a.row, []).append(a.onset)
        rise_rows = {r.row for r in rises}
        for r in rises:
            if r.end - r.onset + 1 < 5:
                continue
            total += 1
            onsets = [o for o in by_row.get(r.row, []) if r.onset - 2 <= o <= r.end]
            if onsets:
                hits += 1
                found += 1
                if min(abs(o - r.onset) for o in onsets) <= 1:
                    onset_ok += 1
        for row, onsets in by_row.items():
            if row not in rise_rows:
                false += len(onsets)
        steady_days += (SERIES - len(rise_rows)) * DAYS
    return {
        "rises": total,
        "recall": hits / total,
        "onset_within_1_day": onset_ok / max(found, 1),
        "false_per_100_port_months": false / (steady_days / 30) * 100,
    }


def speed() -> float:
    x = np.random.default_rng(0).poisson(8, (131_072, 365)).astype(float)
    detect(x[:10])  # compile
    start = time.perf_counter()
    detect(x)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    result = evaluate(args.scenarios, args.seed)
    for k, v in result.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    if not args.no_speed:
        print(f"detect over 131,072 series x 365 days: {speed():.1f} s")


if __name__ == "__main__":
    main()
