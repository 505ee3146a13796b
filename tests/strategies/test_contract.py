"""Every strategy and every pruner through one contract, on the synthetic trainer with real SQLite files."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from rlsweep.strategies import make_strategy
from rlsweep.study import StudyHandle
from rlsweep.worker import Worker
from tests.conftest import synthetic_sweep

STRATEGIES = ["grid", "random", "tpe", "cmaes", "gp", "qmc"]
PRUNERS = ["none", "median", "percentile", "asha", "hyperband"]


def _run(tmp_path: Path, name: str, **overrides) -> StudyHandle:  # type: ignore[no-untyped-def]
    sweep = synthetic_sweep(name, tmp_path, **overrides)
    if sweep["strategy"]["name"] == "grid":
        # 2 x 1 x 2 = 4 configurations; `runs` would cap the grid, so leave it to configurations x seeds
        sweep["params"]["gamma"] = {"uniform": [0.9, 0.99], "step": 0.09}
        sweep["params"]["learning_rate"] = {"choice": [1e-4]}
        sweep["strategy"].pop("runs", None)
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, f"sqlite:///{tmp_path}/{name}.db")
    handle.enqueue(make_strategy(loaded).initial_runs())
    Worker(handle).loop()
    return handle


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_contract(strategy: str, tmp_path: Path) -> None:
    handle = _run(tmp_path, "s", strategy={"name": strategy, "runs": 8, "seeds": 2})
    trials = handle.study.get_trials()
    assert len(trials) == 8
    assert all(t.state == TrialState.COMPLETE for t in trials)
    by_config: dict[str, list[int]] = {}
    for t in trials:
        by_config.setdefault(handle.config_id(t), []).append(t.user_attrs["seed"])
        values = handle.decode(t.params)
        assert 1e-5 <= values["learning_rate"] <= 1e-1
        assert 0.9 <= values["gamma"] <= 0.9999
        if strategy == "grid":
            assert values["gamma"] in (0.9, 0.99)
        assert values["policy_kwargs.net_arch"] in ([64, 64], [128])
    # each proposed configuration ran with seeds 0 and 1 (seed = sweep seed + seed number)
    assert sorted(sorted(s) for s in by_config.values()) == [[0, 1]] * 4
    assert handle.row_counts() == {"done": 8}


@pytest.mark.parametrize("strategy", ["random", "tpe", "qmc", "grid"])
def test_strategy_is_reproducible(strategy: str, tmp_path: Path) -> None:
    first = _run(tmp_path / "a", "r", strategy={"name": strategy, "runs": 6})
    second = _run(tmp_path / "b", "r", strategy={"name": strategy, "runs": 6})

    def params(h):
        trials = sorted(h.study.get_trials(), key=lambda t: t.user_attrs["key"])
        return [h.decode(t.params) for t in trials]

    assert params(first) == params(second)


@pytest.mark.parametrize("pruner", PRUNERS)
def test_pruner_contract(pruner: str, tmp_path: Path) -> None:
    handle = _run(
        tmp_path,
        "p",
        strategy={
            "name": "random",
            "runs": 16,
            "pruner": pruner,
            "pruner_kwargs": {"n_startup_trials": 2} if pruner in ("median", "percentile") else {},
        },
    )
    trials = handle.study.get_trials()
    assert len(trials) == 16
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    if pruner == "none":
        assert not pruned
    else:
        assert pruned, f"{pruner} pruned nothing in 16 runs of very different quality"
    for t in pruned:
        assert t.user_attrs["stop_reason"].startswith(f"pruned by {pruner}")
        assert max(t.intermediate_values) < 1000  # stopped before its budget
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert all(max(t.intermediate_values) == 1000 for t in complete)


def test_gates_prune_and_succeed_inside_a_study(tmp_path: Path) -> None:
    handle = _run(
        tmp_path,
        "g",
        strategy={"name": "random", "runs": 10},
        stop=[
            {"metric": "eval/mean_return", "after": 500, "min": 300},
            {"metric": "eval/mean_return", "success": {"min": 380, "for": 2}},
        ],
    )
    for t in handle.study.get_trials():
        curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        reason = t.user_attrs.get("stop_reason", "")
        if t.state == TrialState.PRUNED:
            assert reason.startswith("gate: eval/mean_return")
            assert curve[-1] < 300
        elif reason.startswith("success"):
            assert curve[-1] >= 380 and curve[-2] >= 380
            assert len(curve) < 4 or curve[-3] < 380  # it stopped at the first streak of two
    states = {t.state for t in handle.study.get_trials()}
    assert TrialState.PRUNED in states


def test_objective_reduce(tmp_path: Path) -> None:
    for how in ("last", "best", "mean_last"):
        handle = _run(
            tmp_path / how,
            "o",
            strategy={"name": "random", "runs": 2},
            objective={"metric": "eval/mean_return", "mode": "max", "reduce": how, "k": 2},
        )
        for t in handle.study.get_trials():
            curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
            expected = {"last": curve[-1], "best": max(curve), "mean_last": sum(curve[-2:]) / 2}[how]
            assert t.value == pytest.approx(expected)


def test_nan_objective_fails_as_diverged_and_never_ranks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = _run(
        tmp_path,
        "n",
        trainer={"kind": "function", "target": "tests.strategies.nan_target:train", "timesteps": 1000},
    )
    trials = handle.study.get_trials()
    assert {t.state for t in trials} == {TrialState.FAIL}
    assert all(
        t.user_attrs["failure_reason"].startswith("diverged: eval/mean_return not finite") for t in trials
    )
    with pytest.raises(ValueError):
        optuna.load_study(study_name="n", storage=handle.url).best_value  # noqa: B018


@pytest.mark.parametrize("strategy", ["tpe", "cmaes", "gp"])
def test_model_based_samplers_past_their_startup_trials(strategy: str, tmp_path: Path) -> None:
    # TPE samples relatively (and writes to its trial) once it has 5 finished trials: 9 runs get there.
    handle = _run(tmp_path, "m", strategy={"name": strategy, "runs": 9})
    trials = handle.study.get_trials()
    assert len(trials) == 9 and all(t.state == TrialState.COMPLETE for t in trials)


def test_tpe_proposal_after_startup_trials(tmp_path: Path) -> None:
    # With 5+ finished trials TPE samples relatively and writes to the trial it samples for
    # (constant liar): it must go through a real trial, never the pre-trial fast path.
    loaded = load_sweep(
        synthetic_sweep(
            "tpe",
            tmp_path,
            strategy={"name": "tpe", "runs": 2},
            params={"learning_rate": {"loguniform": [1e-5, 1e-1]}, "gamma": {"uniform": [0.9, 0.999]}},
        )
    )
    handle = StudyHandle.create_or_load(loaded, f"sqlite:///{tmp_path}/tpe.db")
    for i in range(6):
        trial = handle.create_trial({"learning_rate": 1e-3 * (i + 1), "gamma": 0.95}, {"seed": 0})
        handle.finish(trial, TrialState.COMPLETE, float(i))
    handle.enqueue(make_strategy(loaded).initial_runs())
    Worker(handle).loop()
    assert handle.row_counts() == {"done": 2}
    assert len(handle.study.get_trials(states=[TrialState.COMPLETE])) == 8
