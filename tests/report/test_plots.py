"""The report's figures from hand-made data: what a learning curve says about its seeds, and the
parallel-coordinates axes (which parameters, which scale, which ticks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlsweep.report.plots import axis, curve_data, learning_curves, parallel_axes, parallel_coordinates


def test_curve_data_counts_seeds_and_marks_where_seeds_stopped() -> None:
    full = [(1000.0, 10.0), (2000.0, 20.0), (3000.0, 30.0)]
    pruned = [(1000.0, 2.0)]
    stopped = [(1000.0, 4.0), (2000.0, 6.0)]
    data = curve_data([full, pruned, stopped, []])
    assert data.seeds == 3
    np.testing.assert_array_equal(data.steps, [1000, 2000, 3000])
    np.testing.assert_array_equal(data.n, [3, 2, 1])  # seeds each point averages
    np.testing.assert_allclose(data.mean, [16 / 3, 13.0, 30.0])
    assert data.stops == [(1000.0, 2.0), (2000.0, 6.0)]  # the longest seed is not a stop
    assert curve_data([full, full]).stops == []


def test_learning_curves_draw_with_stops(tmp_path: Path) -> None:
    groups = {"c1": [[(1000.0, 1.0), (2000.0, 2.0)], [(1000.0, 0.5)]], "c2": [[(1000.0, 3.0)]]}
    path = learning_curves(groups, "eval/mean_return", tmp_path / "c.png")
    assert path is not None and path.stat().st_size > 0
    assert learning_curves({"c": [[]]}, "m", tmp_path / "none.png") is None


def test_log_axis_for_a_log_parameter_with_round_ticks() -> None:
    lr = axis("learning_rate", [3e-4, 1e-3, 3e-3], log=True)
    assert lr.log and lr.labels == ["0.0003", "0.001", "0.003"]
    np.testing.assert_allclose(lr.scaled, [0.0, 0.5228787, 1.0], atol=1e-6)
    gamma = axis("gamma", [0.9, 0.95, 0.99, 0.91, 0.92, 0.93, 0.94], log=False)
    assert not gamma.log and gamma.labels == [
        "0.9",
        "0.922",
        "0.945",
        "0.968",
        "0.99",
    ]  # a range: round ticks
    steps = axis("n_steps", [32, 64, 128, 64], log=False)
    assert steps.labels == ["32", "64", "128"]  # a choice: a tick at each value
    np.testing.assert_allclose(steps.ticks, [0.0, 1 / 3, 1.0])
    wide = axis("lr", [1e-5, 2e-5, 1e-4, 3e-4, 1e-3, 5e-3, 1e-2], log=True)
    assert wide.labels == ["1e-05", "0.0001", "0.001", "0.01"]
    arch = axis("net_arch", ["[64, 64]", "[128, 128]"])
    assert arch.labels == ["[128, 128]", "[64, 64]"] and arch.ticks == [0.0, 1.0]


def test_parallel_axes_keep_the_most_important_varied_parameters() -> None:
    params = [{"a": i, "b": 1.0, "c": 10.0**-i, "d": str(i % 2), "e": i * 2} for i in range(1, 6)]
    values = [1.0, 2.0, float("nan"), 4.0, 5.0]
    axes, objective, varied = parallel_axes(
        params, values, log_params={"c"}, order=["c", "e", "a"], max_axes=2
    )
    assert [a.name for a in axes] == ["c", "e", "objective"]  # 'b' never varies; 2 of 4 varied
    assert varied == 4 and axes[0].log and not axes[1].log
    np.testing.assert_array_equal(objective, [1.0, 2.0, 4.0, 5.0])  # the unfinished run left out


def test_parallel_coordinates_is_1200_px_wide(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    params = [
        {
            "learning_rate": float(10 ** rng.uniform(-4, -2)),
            "gamma": float(rng.uniform(0.9, 0.99)),
            "n_steps": int(rng.choice([32, 64, 128])),
        }
        for _ in range(30)
    ]
    values = rng.uniform(0, 500, 30).tolist()
    path = parallel_coordinates(
        params,
        values,
        tmp_path / "p.png",
        objective="eval/mean_return",
        mode="max",
        log_params={"learning_rate"},
    )
    assert path is not None
    width, _ = Image.open(path).size
    assert width == pytest.approx(1200, rel=0.1)
