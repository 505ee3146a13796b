"""Statistics checked on small arrays whose answers are worked out by hand (as rliable's tests do)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.stats import trim_mean

from rlsweep.analysis.stats import Summary, bootstrap_ci, iqm, mean, std, summarize


def test_mean_and_std_by_hand() -> None:
    values = [2, 4, 4, 4, 5, 5, 7, 9]
    assert mean(values) == 5.0
    # squared deviations 9+1+1+1+0+0+4+16 = 32, sample variance 32/7
    assert std(values) == pytest.approx(math.sqrt(32 / 7))


def test_std_of_one_value_is_zero_and_of_none_is_nan() -> None:
    assert std([3.5]) == 0.0
    assert math.isnan(std([]))
    assert math.isnan(mean([]))
    assert math.isnan(iqm([]))


def test_iqm_by_hand() -> None:
    # n=8: drop int(8/4)=2 from each end -> [3, 4, 5, 6] -> 4.5
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5
    # n=5: drop int(5/4)=1 from each end -> [2, 3, 4] -> 3 (the outlier 100 is gone)
    assert iqm([100, 1, 3, 2, 4]) == 3.0
    # n=4, unsorted input: sorted [0, 1, 5, 10] -> [1, 5] -> 3
    assert iqm([10, 0, 5, 1]) == 3.0
    # n=3: int(3/4)=0, nothing trimmed -> plain mean
    assert iqm([1, 2, 6]) == 3.0
    assert iqm([7.0]) == 7.0


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 10, 13, 40])
def test_iqm_matches_scipy_trim_mean(n: int) -> None:
    x = np.random.default_rng(n).normal(size=n)
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25))


def test_nan_values_are_excluded_and_counted() -> None:
    assert mean([1.0, float("nan"), 3.0]) == 2.0
    assert std([1.0, float("nan"), 3.0]) == pytest.approx(math.sqrt(2.0))
    s = summarize([1.0, float("nan"), 3.0, float("nan")])
    assert (s.n, s.n_nan, s.mean) == (2, 2, 2.0)


def test_bootstrap_of_two_values_by_hand() -> None:
    # Resample means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the 2.5th
    # percentile is 0 and the 97.5th is 1.
    assert bootstrap_ci([0.0, 1.0], "mean") == (0.0, 1.0)
    # A 40% interval sits inside the middle mass at 0.5.
    assert bootstrap_ci([0.0, 1.0], "mean", confidence=0.4) == (0.5, 0.5)


def test_bootstrap_degenerate_inputs() -> None:
    assert bootstrap_ci([4.0]) == (4.0, 4.0)
    assert bootstrap_ci([2.0, 2.0, 2.0], "iqm") == (2.0, 2.0)
    low, high = bootstrap_ci([])
    assert math.isnan(low) and math.isnan(high)
    assert bootstrap_ci([5.0, float("nan")]) == (5.0, 5.0)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    x = np.random.default_rng(1).normal(10.0, 2.0, size=10)
    a = bootstrap_ci(x, "iqm", seed=3)
    assert a == bootstrap_ci(x, "iqm", seed=3)
    assert a != bootstrap_ci(x, "iqm", seed=4)
    assert x.min() <= a[0] <= iqm(x) <= a[1] <= x.max()
    wide = bootstrap_ci(x, "mean", confidence=0.99)
    narrow = bootstrap_ci(x, "mean", confidence=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_bootstrap_with_callables() -> None:
    x = np.random.default_rng(2).normal(size=9)
    # np.median takes axis= (vectorised path) and must agree with the named statistic.
    assert bootstrap_ci(x, np.median) == bootstrap_ci(x, "median")
    # A plain callable without axis= is applied per resample: max of a resample of [0, 1] is 0 with
    # probability 1/4, else 1.
    assert bootstrap_ci([0.0, 1.0], lambda v: float(max(v))) == (0.0, 1.0)


def test_bootstrap_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="confidence must be in"):
        bootstrap_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="statistic must be"):
        bootstrap_ci([1.0, 2.0], "average")  # type: ignore[arg-type]


def test_bootstrap_is_fast() -> None:
    x = np.arange(10.0)
    bootstrap_ci(x, "iqm")
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        bootstrap_ci(x, "iqm", n_resamples=2000)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.005


def test_summarize() -> None:
    s = summarize([1, 2, 3, 4, 5, 6, 7, 8], seed=0)
    assert isinstance(s, Summary)
    assert (s.n, s.mean, s.iqm, s.n_nan) == (8, 4.5, 4.5, 0)
    assert s.std == pytest.approx(math.sqrt(42 / 7))  # deviations² sum to 42
    assert s.ci_low < 4.5 < s.ci_high
    assert s.as_dict()["n"] == 8
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.ci_low)
