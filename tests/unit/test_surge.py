"""The surge detector on synthetic series with known onsets."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from teiten.analysis.surge import SurgeParams, _rolling_median, detect


def _series(n: int = 79, level: float = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(level, n).astype(float)


def test_rolling_median_and_sigma_match_numpy() -> None:
    x = np.random.default_rng(2).poisson(8, (5, 70)).astype(float)
    med, sigma = _rolling_median(x, 28)
    win = sliding_window_view(x, 28, axis=1)[:, :-1]
    assert np.isnan(med[:, :28]).all()
    assert np.allclose(med[:, 28:], np.median(win, axis=2))
    iqr = np.quantile(win, 0.75, axis=2) - np.quantile(win, 0.25, axis=2)
    assert np.allclose(sigma[:, 28:] * 1.349, iqr)


@pytest.mark.parametrize("onset", [31, 40, 60])
def test_ramp_onset_found_exactly(onset: int) -> None:
    x = _series(seed=onset)
    x[onset:] += 200 * (1 - np.exp(-(np.arange(len(x) - onset) + 1) / 3.5))
    (s,) = detect(x[None, :])
    assert s.onset == onset and s.ongoing and s.ratio > 5
    assert onset <= s.detected <= onset + 4


def test_one_noisy_day_is_not_an_alert() -> None:
    x = _series()
    x[50] += 500
    assert detect(x[None, :]) == []


def test_flat_background_gives_nothing() -> None:
    x = np.random.default_rng(7).poisson([[5], [50], [500]], (3, 365)).astype(float)
    assert detect(x) == []


def test_surge_that_ends() -> None:
    x = _series()
    x[35:45] += 100
    (s,) = detect(x[None, :])
    assert (s.onset, s.last, s.ongoing) == (35, 44, False)


def test_quiet_series_need_min_excess() -> None:
    x = np.zeros((1, 79))
    x[0, 40:] = 3  # 0 → 3 sources: a large ratio, but too few to matter
    assert detect(x) == []
    x[0, 40:] = 12
    assert [s.onset for s in detect(x)] == [40]


def test_short_history_has_no_baseline() -> None:
    assert detect(np.ones((2, 10))) == []
    with pytest.raises(ValueError):
        detect(np.ones(10))


def test_params_are_honoured() -> None:
    x = _series()
    x[40:] += 30  # about 2.5x
    assert detect(x[None, :], SurgeParams(ratio_min=3.0)) == []
    assert len(detect(x[None, :], SurgeParams(ratio_min=2.0))) == 1
