"""Seeds and pruning agree: with several seeds per configuration, pruners and gates judge the
configuration (its mean over the seeds that reached a step), a pruned configuration starts no more
seeds and says so, and the ranking waits for a configuration's seeds by default. Real studies on
SQLite with the synthetic trainer; the aggregation on hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from optuna.trial import TrialState

from rlsweep.analysis.ranking import rank, unranked_line
from rlsweep.config import load_sweep
from rlsweep.examples.synthetic import peak
from rlsweep.strategies import make_strategy
from rlsweep.strategies.seeds import ConfigSeeds, at_checks
from rlsweep.study import StudyHandle
from rlsweep.worker import Worker
from tests.conftest import synthetic_sweep

M = "eval/mean_return"


def final_value(seed: int, learning_rate: float = 1e-3) -> float:
    """The synthetic trainer's last report (4 evaluations of a 1000-step run) on this seed."""
    return peak({"learning_rate": learning_rate}) * (1 - math.exp(-3.0)) + float(
        np.random.default_rng(seed).normal(0, 10, 4)[-1]
    )


def study(tmp_path: Path, **overrides: Any) -> StudyHandle:
    loaded = load_sweep(synthetic_sweep("s", tmp_path, **overrides))
    handle = StudyHandle.create_or_load(loaded, f"sqlite:///{tmp_path}/s.db")
    handle.enqueue(make_strategy(loaded).initial_runs())
    return handle


def by_key(handle: StudyHandle) -> dict[str, Any]:
    return {row.key: row for row in handle.rows()}


def trial_of(handle: StudyHandle, key: str) -> Any:
    return next(t for t in handle.study.get_trials() if t.user_attrs["key"] == key)


def fake_trial(number: int, state: str, curve: dict[int, float]) -> Any:
    return SimpleNamespace(number=number, state=SimpleNamespace(name=state), intermediate_values=curve)


def test_a_configurations_curve_is_the_mean_over_the_seeds_that_reached_each_step() -> None:
    cfg = ConfigSeeds(
        "c",
        trials=[
            fake_trial(0, "COMPLETE", {250: 10.0, 500: 20.0, 750: 30.0}),
            fake_trial(1, "RUNNING", {250: 14.0, 500: 40.0}),
            fake_trial(2, "PRUNED", {250: 6.0}),
            fake_trial(3, "FAIL", {250: 1000.0}),  # a failed seed has no value: not judged
        ],
    )
    assert cfg.curve() == {250: 10.0, 500: 30.0, 750: 30.0}
    assert cfg.pruned_by() is cfg.trials[2]
    assert [t.number for t in cfg.judged()] == [0, 1, 2]


def test_a_gate_judges_the_mean_not_the_lone_seed(tmp_path: Path) -> None:
    # Seed 1 alone ends below the line; the mean of seeds 0 and 1 at that step is above it.
    v0, v1 = final_value(0), final_value(1)
    assert v0 > v1
    line = (v1 + (v0 + v1) / 2) / 2
    handle = study(
        tmp_path, strategy={"name": "grid", "seeds": 2, "workers": 1},
        params={"learning_rate": {"choice": [1e-3]}}, stop=[{"metric": M, "after": 1000, "min": line}],
    )  # fmt: skip
    Worker(handle).loop()
    trials = sorted(handle.study.get_trials(), key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.value for t in trials] == pytest.approx([v0, v1])


def test_a_configuration_cut_by_its_mean_starts_no_more_seeds_and_says_so(tmp_path: Path) -> None:
    # Seed 0 passes the line alone; with seed 1 the configuration's mean falls below it: seed 1 is
    # pruned for the configuration, and seed 2 is never started.
    v0, v1 = final_value(0), final_value(1)
    line = ((v0 + v1) / 2 + v0) / 2
    handle = study(
        tmp_path, strategy={"name": "grid", "seeds": 3, "workers": 1},
        params={"learning_rate": {"choice": [1e-3]}}, stop=[{"metric": M, "after": 1000, "min": line}],
    )  # fmt: skip
    assert Worker(handle).loop() == 2  # the third seed is never trained
    rows = by_key(handle)
    assert [rows[k].state for k in ("grid:0", "grid:1", "grid:2")] == ["done", "pruned", "pruned"]
    cut = trial_of(handle, "grid:1")
    assert cut.state == TrialState.PRUNED
    mean = (v0 + v1) / 2
    assert cut.user_attrs["stop_reason"] == (
        f"gate: {M} = {mean:g} < {line:g} at step 1000 (after 1000; configuration mean over 2 seeds)"
    )
    assert cut.user_attrs["config_pruned"] == "configuration pruned (seed 1 at step 1000)"
    skipped = rows["grid:2"]
    assert skipped.trial_number is None and len(handle.study.get_trials()) == 2
    assert skipped.attrs["pruned_reason"] == "configuration pruned (seed 1 at step 1000)"
    entry = rank(handle.view()).entries[0]
    assert (entry.summary.n, entry.pruned, entry.skipped, entry.pending) == (2, 1, 1, 0)


def three_configs(tmp_path: Path) -> StudyHandle:
    # Learning rate 1.0 is hopeless (the synthetic trainer's floor, 10); the median pruner, once two
    # configurations have finished a seed, cuts it at its first judged evaluation.
    return study(
        tmp_path,
        strategy={
            "name": "grid",
            "seeds": 3,
            "workers": 1,
            "pruner": "median",
            "pruner_kwargs": {"n_startup_trials": 2},
        },
        params={"learning_rate": {"choice": [1e-3, 1e-2, 1.0]}},
    )


def test_the_pruner_judges_configurations_and_skips_a_pruned_ones_seeds(tmp_path: Path) -> None:
    handle = three_configs(tmp_path)
    Worker(handle).loop()
    rows = by_key(handle)
    # Grid order: seed 0 of configurations 0, 1, 2, then seed 1 of each, then seed 2.
    assert [rows[f"grid:{i}"].state for i in range(9)] == ["done", "done", "pruned"] * 3
    bad = trial_of(handle, "grid:2")
    step = max(bad.intermediate_values)
    assert bad.state == TrialState.PRUNED
    mean = bad.intermediate_values[step]
    assert (
        bad.user_attrs["stop_reason"]
        == f"pruned by median at step {step} (configuration mean {mean:.4g} over 1 seed)"
    )
    for key in ("grid:5", "grid:8"):
        assert rows[key].trial_number is None
        assert rows[key].attrs["pruned_reason"] == f"configuration pruned (seed 0 at step {step})"
    # The second and third seeds of the good configurations were judged with their configuration,
    # never pruned for being below the best configuration's lone seeds.
    assert sum(t.state == TrialState.COMPLETE for t in handle.study.get_trials()) == 6
    ranking = rank(handle.view())
    assert [e.values["learning_rate"] for e in ranking] == [1e-3, 1e-2, 1.0]
    assert [(e.summary.n, e.pruned, e.skipped) for e in ranking] == [(3, 0, 0), (3, 0, 0), (1, 1, 2)]


def test_the_ranking_waits_for_a_configurations_seeds_by_default(tmp_path: Path) -> None:
    handle = three_configs(tmp_path)
    Worker(handle).loop(max_runs=4)  # seed 0 of each, then seed 1 of the first configuration
    ranking = rank(handle.view())
    # The first two configurations have seeds still to run; the third was pruned as a whole.
    assert [e.values["learning_rate"] for e in ranking] == [1.0]
    assert [(e.values["learning_rate"], e.pending) for e in ranking.unranked] == [(1e-3, 1), (1e-2, 2)]
    line = unranked_line(ranking)
    assert line.startswith("not ranked (seeds still to run): ")
    assert "(2 seeds, 1 pending)" in line and "(1 seed, 2 pending)" in line
    partial = rank(handle.view(), include_pending=True)
    assert [e.values["learning_rate"] for e in partial] == [1e-3, 1e-2, 1.0]
    Worker(handle).loop()
    assert len(rank(handle.view())) == 3


def test_a_curve_at_checks_is_keyed_by_the_check_each_evaluation_stands_for() -> None:
    # Rollouts of 1024 steps evaluate at 5120 and 10240 for the checks at 5000 and 10000; of 3072
    # steps at 6144 (check 5000) and 12288 (10000); two evaluations under one check: the later.
    assert at_checks({5120: 1.0, 10240: 2.0}, 5000) == {5000: 1.0, 10000: 2.0}
    assert at_checks({6144: 1.0, 12288: 2.0, 15000: 3.0}, 5000) == {5000: 1.0, 10000: 2.0, 15000: 3.0}
    assert at_checks({1000: 1.0, 1500: 2.0}, 1000) == {1000: 2.0}
    assert at_checks({7: 1.0}, 0) == {7: 1.0}


KINDS = {"good": (100.0, 25), "fair": (90.0, 25), "bad": (10.0, 30)}  # (value, rollout)


def rollout_trainer(run: Any) -> None:
    """Reports a constant value at the first multiple of its rollout at or after each check, as
    an on-policy algorithm's evaluations fall (SB3 PPO evaluates between two rollouts)."""
    value, rollout = KINDS[run.hyperparams["kind"]]
    for k in range(1, run.budget // run.eval_every + 1):
        step = -(-k * run.eval_every // rollout) * rollout
        if run.report(step, {M: value}).should_stop:
            return


@pytest.mark.parametrize("seeds", [1, 2])
def test_runs_of_other_rollout_lengths_are_judged_at_the_same_checks(tmp_path: Path, seeds: int) -> None:
    # Rollouts of 25 steps evaluate at 100, 200, 300, 400; of 30 steps at 120, 210, 300, 420. The
    # bad configuration is below both finished ones from its first evaluation: the median pruner
    # cuts it there (at step 120, the check at 100), not at 300, the first step all three share.
    handle = study(
        tmp_path,
        trainer={"kind": "function", "target": f"{__name__}:rollout_trainer", "timesteps": 400},
        eval={"every": 100},
        strategy={"name": "grid", "seeds": seeds, "workers": 1, "pruner": "median", "pruner_kwargs": {"n_startup_trials": 2}},
        params={"kind": {"choice": list(KINDS)}},
    )
    Worker(handle).loop()
    trials = {t.params["kind"]: t for t in handle.study.get_trials() if t.user_attrs["seed"] == handle.sweep.seed}
    assert [trials[k].state for k in KINDS] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert trials["bad"].intermediate_values == {120: 10.0}
    assert trials["bad"].user_attrs["stop_reason"].startswith("pruned by median at step 120")
