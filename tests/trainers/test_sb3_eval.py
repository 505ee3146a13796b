"""Evaluations are recorded at the step of the policy they measured, read back from the metrics table
of real tiny SB3 runs: PPO at rollout boundaries (its policy changes only in the update after a
rollout), DQN at eval.every, and a policy with no update since its last evaluation is not measured
again. Gates still get their evaluations; the final one still happens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from tests.conftest import run_in_process

pytest.importorskip("stable_baselines3")

TINY_PPO = {"n_steps": 96, "batch_size": 48, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}}
TINY_DQN = {"learning_starts": 50, "train_freq": 4, "batch_size": 16, "target_update_interval": 100,
            "policy_kwargs": {"net_arch": [16]}}


def run_one(tmp_path: Path, trainer: dict[str, Any], params: dict[str, Any], **sections: Any) -> tuple[Any, list[int]]:
    """One run through a real worker on SQLite; its trial and the steps of its eval/mean_return rows."""
    sweep = {
        "study": "eval-steps",
        "trainer": {"kind": "sb3", "env": "CartPole-v1", **trainer},
        "eval": {"every": 100, "episodes": 2},
        "strategy": {"name": "grid"},
        "params": params,
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
        **sections,
    }
    handle = run_in_process(sweep)
    (trial,) = handle.study.get_trials(deepcopy=False)
    rows = handle.metrics([trial.number], ["eval/mean_return"])
    return trial, [int(r["step"]) for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("n_envs", [1, 2])
def test_on_policy_evaluations_lie_on_rollout_boundaries(tmp_path: Path, n_envs: int) -> None:
    # rollouts of 96 * n_envs steps, eval.every 100: the n_steps 2048 / every 1000 in small
    trial, steps = run_one(tmp_path, {"algo": "PPO", "timesteps": 768, "n_envs": n_envs}, TINY_PPO)
    rollout = 96 * n_envs
    assert trial.state is TrialState.COMPLETE
    # the first boundary at or after each multiple of 100, each boundary once, and the final one
    expected = sorted({-(-k * 100 // rollout) * rollout for k in range(1, 769 // 100 + 1)} | {768})
    assert steps == [s for s in expected if s <= 768]
    assert all(s % rollout == 0 for s in steps) and len(set(steps)) == len(steps)
    assert sorted(trial.intermediate_values) == steps


@pytest.mark.slow
def test_a_gate_prunes_at_the_first_rollout_boundary(tmp_path: Path) -> None:
    gate = [{"metric": "eval/mean_return", "min": 1.0e9}]
    trial, steps = run_one(tmp_path, {"algo": "PPO", "timesteps": 768}, TINY_PPO, stop=gate)
    assert trial.state is TrialState.PRUNED
    assert steps == [192]  # the first boundary at or after 100 (at 100 the policy was still step 96's)
    assert " at step 192 " in trial.user_attrs["stop_reason"]


@pytest.mark.slow
def test_off_policy_still_evaluates_at_eval_every(tmp_path: Path) -> None:
    trial, steps = run_one(tmp_path, {"algo": "DQN", "timesteps": 500}, TINY_DQN)
    assert trial.state is TrialState.COMPLETE
    assert steps == [100, 200, 300, 400, 500]


@pytest.mark.slow
def test_an_unchanged_policy_is_not_evaluated_again(tmp_path: Path) -> None:
    # learning starts after the budget: the initial policy is measured once, not at every eval.every
    trial, steps = run_one(tmp_path, {"algo": "DQN", "timesteps": 500}, {**TINY_DQN, "learning_starts": 1000})
    assert trial.state is TrialState.COMPLETE
    assert steps == [100]
