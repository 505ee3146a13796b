"""The batch contract: a trainer with batch size > 1 gets up to that many claimed runs in one
`train_batch` call, and each run keeps its own reports, Decision, ending and files. Driven through
the real worker on SQLite, PostgreSQL and MariaDB with rlsweep.examples.batch_synthetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from rlsweep.config import load_sweep
from rlsweep.examples import synthetic
from rlsweep.strategies import make_strategy
from rlsweep.study import StudyHandle
from rlsweep.trainers._base import Decision, RunContext
from rlsweep.worker import Worker
from tests.conftest import synthetic_sweep

BATCH = "rlsweep.examples.batch_synthetic:train_batch"


def batch_sweep(name: str, tmp_path: Path, lrs: list[float], *, target: str = BATCH, batch: int = 4, **overrides: Any) -> dict[str, Any]:
    return synthetic_sweep(
        name,
        tmp_path,
        trainer={"kind": "function", "target": target, "timesteps": 1000, "batch": batch},
        strategy={"name": "grid", "seeds": 1},
        params={"learning_rate": {"choice": lrs}},
        **overrides,
    )


def start(sweep: dict[str, Any], url: str) -> StudyHandle:
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    return handle


def curve(handle: StudyHandle, number: int) -> list[tuple[int, float]]:
    return [(m["step"], m["value"]) for m in handle.metrics([number], ["eval/mean_return"])]


def unbatched_curve(hyper: dict[str, Any], seed: int, tmp_path: Path) -> list[tuple[int, float]]:
    """The curve the one-run synthetic trainer draws for this configuration and seed."""
    seen: list[tuple[int, float]] = []

    def report(step: int, metrics: Any) -> Decision:
        seen.append((step, metrics["eval/mean_return"]))
        return Decision.CONTINUE

    ctx = RunContext("x", 0, {}, hyper, hyper, seed, 1000, 250, 5, "eval/mean_return", tmp_path, report)
    synthetic.train(ctx)
    return seen


def test_batch_runs_train_together_and_end_alone(storage_url: str, study_name: str, tmp_path: Path) -> None:
    # 1e-6 reaches ~10 and is pruned by the gate at step 500; 3.0 diverges (NaN) at its first
    # evaluation; the other four train their whole budget. Six runs with batch 4: batches of 4 and 2.
    lrs = [1e-3, 1e-6, 3.0, 1e-2, 1e-1, 1e-4]
    sweep = batch_sweep(study_name, tmp_path, lrs, stop=[{"metric": "eval/mean_return", "after": 500, "min": 100}])
    handle = start(sweep, storage_url)
    assert Worker(handle).loop() == 6

    trials = {handle.decode(t.params)["learning_rate"]: t for t in handle.study.get_trials(deepcopy=False)}
    assert set(trials) == set(lrs)
    batches: dict[str, list[float]] = {}
    for lr, t in trials.items():
        batch = t.user_attrs["batch"]
        assert batch["pid"] == os.getpid()
        batches.setdefault(batch["id"], []).append(lr)
        assert len(batches[batch["id"]]) <= batch["size"]
    assert sorted(len(v) for v in batches.values()) == [2, 4]  # claimed 4, then the 2 left

    pruned, diverged = trials[1e-6], trials[3.0]
    assert pruned.state == TrialState.PRUNED
    assert pruned.user_attrs["stop_reason"].startswith("gate: eval/mean_return = ")
    assert [s for s, _ in curve(handle, pruned.number)] == [250, 500]  # masked out after its prune
    assert diverged.state == TrialState.FAIL
    assert diverged.user_attrs["failure_reason"] == "diverged: eval/mean_return not finite at step 250"
    assert (handle.artifact_dir(diverged.number) / "error.log").read_text().startswith("diverged")
    for lr in (1e-3, 1e-2, 1e-1, 1e-4):
        t = trials[lr]
        assert t.state == TrialState.COMPLETE
        got, alone = curve(handle, t.number), unbatched_curve(handle.decode(t.params), t.user_attrs["seed"], tmp_path)
        assert [s for s, _ in got] == [s for s, _ in alone] == [250, 500, 750, 1000]
        assert [v for _, v in got] == pytest.approx([v for _, v in alone])  # batching never changes a run's curve
        assert t.value == pytest.approx(got[-1][1])
        assert json.loads(Path(t.user_attrs["model"]).read_text())["step"] == 1000
    assert handle.row_counts() == {"done": 4, "pruned": 1, "failed": 1}


def test_a_crashing_batch_fails_only_the_runs_still_training(sqlite_url: str, study_name: str, tmp_path: Path) -> None:
    # crash_batch reports each run's learning rate once, then raises: the gate prunes 0.01 first.
    sweep = batch_sweep(
        study_name, tmp_path, [0.01, 0.5], target="rlsweep.examples.batch_synthetic:crash_batch", stop=[{"metric": "eval/mean_return", "min": 0.05}]
    )
    handle = start(sweep, sqlite_url)
    Worker(handle).loop()
    trials = {handle.decode(t.params)["learning_rate"]: t for t in handle.study.get_trials(deepcopy=False)}
    assert trials[0.01].state == TrialState.PRUNED
    assert trials[0.5].state == TrialState.FAIL
    assert trials[0.5].user_attrs["failure_reason"] == "error: RuntimeError: this batch trainer crashes after its first evaluation"
    assert "RuntimeError" in (handle.artifact_dir(trials[0.5].number) / "error.log").read_text()
    assert handle.row_counts() == {"pruned": 1, "failed": 1}


def test_ctrl_c_in_a_batch_requeues_every_run_of_it(sqlite_url: str, study_name: str, tmp_path: Path) -> None:
    handle = start(batch_sweep(study_name, tmp_path, [1e-3, 1e-2, 1e-1], target="tests.trainers.batch_targets:interrupted"), sqlite_url)
    with pytest.raises(KeyboardInterrupt):
        Worker(handle).loop()
    rows = handle.rows()
    assert sorted(r.state for r in rows) == ["interrupted"] * 3 + ["waiting"] * 3
    assert all(r.key.endswith("/retry:1") for r in rows if r.state == "waiting")
    failed = handle.study.get_trials(deepcopy=False)
    assert [t.user_attrs["failure_reason"] for t in failed] == ["interrupted"] * 3


def test_runs_of_different_shapes_train_in_separate_groups(sqlite_url: str, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlsweep import trainers

    monkeypatch.setitem(trainers.TRAINERS, "grouped", "tests.trainers.batch_targets:GroupedTrainer")
    sweep = batch_sweep(study_name, tmp_path, [1e-3, 1e-2])
    sweep["trainer"]["kind"] = "grouped"
    sweep["params"]["width"] = {"choice": [64, 128]}
    handle = start(sweep, sqlite_url)
    assert Worker(handle).loop() == 4
    groups: dict[str, set[int]] = {}
    for t in handle.study.get_trials(deepcopy=False):
        assert t.state == TrialState.COMPLETE
        groups.setdefault(t.user_attrs["batch"]["id"], set()).add(handle.decode(t.params)["width"])
    assert sorted(map(sorted, groups.values())) == [[64], [128]]  # one claim of 4, two groups of 2


def test_bad_batch_setting_is_an_exit_2_error(tmp_path: Path) -> None:
    from rlsweep.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_sweep(batch_sweep("s", tmp_path, [1e-3], batch=0), file="sweep.yaml")
    assert str(err.value) == "sweep.yaml: trainer.batch: must be a whole number >= 1 (how many runs the function trains at once), got 0"


def test_batch_sweep_from_the_command_line(tmp_path: Path) -> None:
    sweep = batch_sweep("batched", tmp_path, [1e-4, 1e-3, 1e-2, 1e-1], trainer__sleep=0.05)
    sweep["strategy"]["seeds"] = 2
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    run = subprocess.run([sys.executable, "-m", "rlsweep", "run", "sweep.json", "--workers", "2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    study = optuna.load_study(study_name="batched", storage=f"sqlite:///{tmp_path}/runs/batched/study.db")
    trials = study.get_trials(states=[TrialState.COMPLETE])
    assert len(trials) == 8
    sizes: dict[str, int] = {}
    for t in trials:
        sizes[t.user_attrs["batch"]["id"]] = sizes.get(t.user_attrs["batch"]["id"], 0) + 1
    assert all(n <= 4 for n in sizes.values()) and sum(sizes.values()) == 8
    top = subprocess.run([sys.executable, "-m", "rlsweep", "top", "batched", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert top.returncode == 0, top.stderr
    assert json.loads(top.stdout)[0]["values"]["learning_rate"] == pytest.approx(1e-3)
