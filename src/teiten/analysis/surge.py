"""Surge detection over daily series: robust baseline, sustained rise, onset by CUSUM.

Works on a matrix — one row per series (port × segment), one column per day —
so a year of every port is a few numpy passes, not a Python loop per series.

Method (``docs/detection.md`` explains it at length):

1. **Baseline** for day *t*: the median of the ``baseline_days`` days before
   *t*, times a weekday factor when the series is large enough to estimate one.
   While a surge lasts it is judged against the level before it (the baseline
   of the detection day), since the rolling median soon catches up with it.
2. **Scale**: the window's interquartile range / 1.349 (a robust standard
   deviation), floored by the Poisson deviation √baseline and by 1, so quiet
   series do not alarm on one source.
3. **Surge day**: ``z = (x − baseline) / scale ≥ z_min`` and
   ``(x + 1) / (baseline + 1) ≥ ratio_min`` and ``x − baseline ≥ min_excess``.
4. **Sustained**: at least ``sustain`` surge days in the last ``sustain_window``
   days — one noisy day is never an alert.
5. **Onset**: a one-sided CUSUM of the daily excess over the detection day's
   baseline (in scale units, minus a slack ``k``) runs over the ``baseline_days``
   before the detection; the onset is the day after the CUSUM last stood at
   zero (Page's change-point estimate; one day's contribution is capped so a
   lone spike cannot carry it), moved forward to the start of the run of days
   ``onset_z`` scales above the old level that leads up to the detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from teiten.jit import kernel

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SurgeParams:
    """Tuning of the detector (defaults chosen on bench/detection.py)."""

    baseline_days: int = 28
    z_min: float = 4.0
    ratio_min: float = 2.0
    min_excess: float = 5.0
    sustain: int = 3
    sustain_window: int = 4
    cusum_k: float = 1.0
    onset_z: float = 3.0
    weekday_min_level: float = 100.0


DEFAULT_PARAMS = SurgeParams()


@dataclass(frozen=True)
class Surge:
    """One sustained rise found in one series."""

    row: int
    """Row of the input matrix."""
    onset: int
    """Day index of the estimated start."""
    detected: int
    """Day index when the rise became sustained (the alert day)."""
    last: int
    """Last day index still surging (== detected for a rise that has just begun)."""
    ongoing: bool
    """Still surging on the last day of the matrix."""
    baseline: float
    """Baseline level before the onset."""
    peak: float
    ratio: float
    """Mean level from onset to last over the baseline (+1 smoothing)."""
    score: float
    """Largest z-score seen during the surge."""


@kernel(cache=True, nogil=True)
def _rolling_quartiles(x: F64, days: int, med: F64, iqr: F64) -> None:  # pragma: no cover - jit
    """Median and interquartile range of the ``days`` values before each day.

    Keeps each row's window sorted (binary-search insert and delete), so a
    step costs O(days) moves instead of a sort.
    """
    rows, n = x.shape
    win = np.empty(days)
    q1, q2, q3 = (days - 1) * 0.25, (days - 1) * 0.5, (days - 1) * 0.75
    for r in range(rows):
        win[:] = np.sort(x[r, :days])
        for t in range(days, n):
            med[r, t] = _quantile(win, q2)
            iqr[r, t] = _quantile(win, q3) - _quantile(win, q1)
            # replace the oldest value by the newest, keeping the window sorted
            old, new = x[r, t - days], x[r, t]
            i = np.searchsorted(win, old)
            while i + 1 < days and win[i + 1] < new:
                win[i] = win[i + 1]
                i += 1
            while i > 0 and win[i - 1] > new:
                win[i] = win[i - 1]
                i -= 1
            win[i] = new


@kernel(cache=True, inline="always")
def _quantile(sorted_win: F64, pos: float) -> float:  # pragma: no cover - jit
    lo = int(pos)
    frac = pos - lo
    if frac == 0.0:
        return float(sorted_win[lo])
    return float(sorted_win[lo] * (1.0 - frac) + sorted_win[lo + 1] * frac)


def _rolling_median(x: F64, days: int) -> tuple[F64, F64]:
    """Median and robust sigma (IQR / 1.349) of the ``days`` days before each day.

    NaN before there are ``days`` days of history.
    """
    rows, n = x.shape
    med = np.full((rows, n), np.nan)
    iqr = np.full((rows, n), np.nan)
    if n > days:
        _rolling_quartiles(np.ascontiguousarray(x), days, med, iqr)
    return med, iqr / 1.349


def _weekday_factor(x: F64, baseline: F64, params: SurgeParams) -> F64:
    """Per-day multiplier for a weekly pattern (1 where the series is too small)."""
    rows, n = x.shape
    factor = np.ones((rows, n))
    level = np.median(x, axis=1)
    big = level >= params.weekday_min_level
    if not big.any() or n < 14:
        return factor
    for wd in range(7):
        days = np.arange(wd, n, 7)
        ratio = np.median(x[big][:, days], axis=1) / np.maximum(level[big], 1.0)
        factor[np.ix_(np.flatnonzero(big), days)] = np.clip(ratio, 0.5, 2.0)[:, None]
    return factor


def daily_scores(x: F64, params: SurgeParams = DEFAULT_PARAMS) -> tuple[F64, F64, F64]:
    """Baseline, scale and z-score of every day of every series."""
    med, sigma = _rolling_median(x, params.baseline_days)
    baseline = med * _weekday_factor(x, med, params)
    scale = np.maximum(np.maximum(sigma, np.sqrt(np.maximum(baseline, 0))), 1.0)
    with np.errstate(invalid="ignore"):
        z = (x - baseline) / scale
    return baseline, scale, z


def _surge_days(x: F64, baseline: F64, z: F64, p: SurgeParams) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return (
            (z >= p.z_min)
            & ((x + 1) / (baseline + 1) >= p.ratio_min)
            & (x - baseline >= p.min_excess)
        )


def detect(x: npt.ArrayLike, params: SurgeParams = DEFAULT_PARAMS) -> list[Surge]:
    """Sustained surges in each row of a (series × days) matrix of daily counts."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("expected a matrix of series × days")
    baseline, scale, z = daily_scores(x, params)
    hot = _surge_days(x, baseline, z, params)
    out: list[Surge] = []
    for row in np.flatnonzero(hot.sum(axis=1) >= params.sustain):
        out.extend(
            _row_surges(int(row), x[row], baseline[row], scale[row], z[row], hot[row], params)
        )
    return out


def _row_surges(
    row: int, x: F64, baseline: F64, scale: F64, z: F64, hot: npt.NDArray[np.bool_], p: SurgeParams
) -> list[Surge]:
    n = len(x)
    counts = np.convolve(hot.astype(np.int64), np.ones(p.sustain_window, np.int64))[:n]
    sustained = np.flatnonzero(counts >= p.sustain)
    out: list[Surge] = []
    t = 0
    while True:
        later = sustained[sustained >= t]
        if not len(later):
            return out
        detected = int(later[0])
        onset = _cusum_onset(x, baseline, scale, detected, p)
        ref = float(baseline[onset]) if np.isfinite(baseline[onset]) else float(np.nanmin(baseline))
        last = detected
        while last + 1 < n and _still_high(x, last + 1, ref, scale[onset], p):
            last += 1
        seg = x[onset : last + 1]
        out.append(
            Surge(
                row,
                onset,
                detected,
                last,
                last == n - 1,
                ref,
                float(seg.max()),
                float((seg.mean() + 1) / (ref + 1)),
                float(np.nanmax(z[onset : last + 1])),
            )
        )
        t = last + p.baseline_days  # a new surge needs a new baseline first


def _still_high(x: F64, t: int, ref: float, scale: float, p: SurgeParams) -> bool:
    """Whether day ``t`` is still above the pre-surge level (half the alarm bars)."""
    return bool(
        x[t] - ref >= max(p.min_excess / 2, p.z_min / 2 * scale)
        and (x[t] + 1) / (ref + 1) >= 1 + (p.ratio_min - 1) / 2
    )


def _cusum_onset(x: F64, baseline: F64, scale: F64, detected: int, p: SurgeParams) -> int:
    """Day after the CUSUM of excess last stood at zero, looking back from ``detected``."""
    ref_day = detected
    while ref_day > 0 and not np.isfinite(baseline[ref_day]):
        ref_day -= 1
    lookback = max(0, detected - p.baseline_days)
    # Freeze the reference at the detection day's baseline: a rise drags later
    # baselines up, and the onset is judged against the level before it.
    ref, sc = baseline[detected], scale[detected]
    if not np.isfinite(ref):
        return detected
    s = 0.0
    onset = lookback
    for t in range(lookback, detected + 1):
        s = max(0.0, s + min((x[t] - ref) / sc, 3 * p.onset_z) - p.cusum_k)
        if s == 0.0:
            onset = t + 1
    # The CUSUM can start on a noisy day or a lone spike before the rise: the
    # onset is the start of the run of clearly raised days (one quiet day
    # allowed) that leads up to the detection.
    run, gap = detected, 0
    for t in range(detected - 1, onset - 1, -1):
        if (x[t] - ref) / sc >= p.onset_z:
            run, gap = t, 0
        else:
            gap += 1
            if gap > 1:
                break
    onset = max(onset, run)
    return min(onset, detected)
