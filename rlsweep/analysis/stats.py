"""Aggregate statistics across seeds as rliable defines them: mean, IQM and percentile-bootstrap
confidence intervals. Everything here is plain NumPy so `top` and the report stay fast; NaN values
(diverged or unfinished runs) are left out and counted, never averaged in."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Statistic = Literal["mean", "iqm", "median"] | Callable[..., Any]

#: rliable's IQM drops this fraction from each end (scipy.stats.trim_mean(x, 0.25)).
IQM_CUT = 0.25


@dataclass(frozen=True)
class Summary:
    """Seed-aggregated statistics of one set of values. NaN fields when no finite value was given."""

    n: int
    mean: float
    std: float
    iqm: float
    ci_low: float
    ci_high: float
    n_nan: int = 0
    confidence: float = 0.95

    def as_dict(self) -> dict[str, float | int]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def _clean(values: Iterable[float] | np.ndarray) -> tuple[np.ndarray, int]:
    """Values as a flat float array without NaN, and how many NaN were dropped."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float).ravel()
    nan = np.isnan(arr)
    return arr[~nan], int(nan.sum())


def mean(values: Iterable[float] | np.ndarray) -> float:
    """Arithmetic mean of the non-NaN values; NaN when there are none."""
    arr, _ = _clean(values)
    return float(arr.mean()) if arr.size else math.nan


def std(values: Iterable[float] | np.ndarray) -> float:
    """Sample standard deviation (ddof=1) of the non-NaN values; 0 for one value, NaN for none."""
    arr, _ = _clean(values)
    if arr.size == 0:
        return math.nan
    if arr.size == 1:
        return 0.0
    return float(arr.std(ddof=1))


def _iqm_rows(sorted_rows: np.ndarray) -> np.ndarray:
    # Same cut as scipy.stats.trim_mean: int(0.25 * n) values off each end of the sorted sample.
    n = sorted_rows.shape[-1]
    cut = int(IQM_CUT * n)
    return sorted_rows[..., cut : n - cut].mean(axis=-1)


def iqm(values: Iterable[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% after sorting, trimming int(n/4) values from
    each end (rliable's convention, equal to scipy.stats.trim_mean(x, 0.25)); NaN for no values."""
    arr, _ = _clean(values)
    if arr.size == 0:
        return math.nan
    return float(_iqm_rows(np.sort(arr)))


def _apply(statistic: Statistic, samples: np.ndarray) -> np.ndarray:
    """The statistic of every row of a (resamples, n) array, vectorised where possible."""
    if statistic == "mean":
        return samples.mean(axis=1)
    if statistic == "iqm":
        return _iqm_rows(np.sort(samples, axis=1))
    if statistic == "median":
        return np.median(samples, axis=1)
    if not callable(statistic):
        raise ValueError(f"statistic must be 'mean', 'iqm', 'median' or a callable, got {statistic!r}")
    # A NumPy-style reducer (np.median, np.max, ...) takes axis= and does all rows at once; any other
    # callable gets one 1-D resample at a time.
    try:
        out = np.asarray(statistic(samples, axis=1), dtype=float)
        if out.shape == (samples.shape[0],):
            return out
    except TypeError:
        pass
    return np.fromiter((float(statistic(row)) for row in samples), dtype=float, count=samples.shape[0])


def bootstrap_ci(
    values: Iterable[float] | np.ndarray,
    statistic: Statistic = "mean",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of `statistic` over the non-NaN values.

    Resamples with replacement `n_resamples` times from a generator seeded with `seed`, so the same
    input always gives the same interval. One value gives (v, v); no values give (nan, nan).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    arr, _ = _clean(values)
    if arr.size == 0:
        return (math.nan, math.nan)
    if arr.size == 1:
        v = float(arr[0])
        return (v, v)
    rng = np.random.default_rng(seed)
    samples = arr[rng.integers(0, arr.size, size=(n_resamples, arr.size))]
    stats = _apply(statistic, samples)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return (float(low), float(high))


def summarize(
    values: Iterable[float] | np.ndarray,
    seed: int = 0,
    *,
    ci_statistic: Statistic = "mean",
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> Summary:
    """n, mean, sample std, IQM and a bootstrap CI (of the mean by default) of the non-NaN values."""
    arr, n_nan = _clean(values)
    low, high = bootstrap_ci(arr, ci_statistic, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return Summary(
        n=int(arr.size),
        mean=mean(arr),
        std=std(arr),
        iqm=iqm(arr),
        ci_low=low,
        ci_high=high,
        n_nan=n_nan,
        confidence=confidence,
    )
