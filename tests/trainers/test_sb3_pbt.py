"""PBT with the SB3 trainer through a real worker and a SQLite file, at a tiny budget: every later
generation starts from a recorded checkpoint that exists (its own member's or a donor's), and the
model it saves really continued that checkpoint (SB3's step counter carries on from it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.conftest import run_in_process

pytest.importorskip("stable_baselines3")

INTERVAL = 128  # two rollouts of n_steps=64 on one env: the step counter lands on it exactly
GENERATIONS = 3


@pytest.mark.slow
def test_pbt_continues_sb3_models_from_checkpoints(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    sweep = {
        "study": "sb3-pbt",
        "seed": 0,
        "trainer": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": INTERVAL * GENERATIONS},
        "eval": {"every": INTERVAL, "episodes": 2},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "pbt", "population": 2, "interval": INTERVAL},
        "params": {
            "learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
            "n_steps": 64,
            "batch_size": 32,
            "n_epochs": 1,
            "policy_kwargs": {"net_arch": [16]},
        },
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
    }
    handle = run_in_process(sweep)

    trials = handle.study.get_trials(deepcopy=False)
    assert all(t.state is TrialState.COMPLETE for t in trials)
    by_number = {t.number: t for t in trials}
    generations = sorted((int(t.user_attrs["member"]), int(t.user_attrs["generation"])) for t in trials)
    assert generations == [(m, g) for m in range(2) for g in range(GENERATIONS)]
    later = [t for t in trials if int(t.user_attrs["generation"]) > 0]
    for t in later:
        start = t.user_attrs["start_checkpoint"]
        parent = by_number[int(t.user_attrs["parent"])]
        assert start == parent.user_attrs["model"] and Path(start).is_file()
        # an exploit starts from its donor's model, otherwise the member continues its own
        expected_member = t.user_attrs.get("donor", t.user_attrs["member"])
        assert int(parent.user_attrs["member"]) == int(expected_member)
        # the lineage's clock: this generation's reports continue after its parent's steps
        assert int(t.user_attrs["start_step"]) == int(parent.user_attrs["start_step"]) + INTERVAL
        assert min(t.intermediate_values) > int(t.user_attrs["start_step"])
        own = PPO.load(t.user_attrs["model"], device="cpu").num_timesteps
        assert own == PPO.load(start, device="cpu").num_timesteps + INTERVAL
    first = [t for t in trials if int(t.user_attrs["generation"]) == 0]
    assert all(PPO.load(t.user_attrs["model"], device="cpu").num_timesteps == INTERVAL for t in first)


OFF_POLICY = {
    "DQN": ({"env": "CartPole-v1"}, {"train_freq": 4}),
    # SAC on a normalized Pendulum: the VecNormalize statistics travel with the buffer
    "SAC": ({"env": "Pendulum-v1", "normalize": True}, {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("algo", list(OFF_POLICY))
def test_pbt_members_continue_with_their_donors_replay_buffer(tmp_path: Path, algo: str) -> None:
    import numpy as np

    trainer, extra = OFF_POLICY[algo]
    sweep = {
        "study": "sb3-pbt-buffer",
        "seed": 0,
        "trainer": {"kind": "sb3", "algo": algo, **trainer, "timesteps": INTERVAL * GENERATIONS},
        "eval": {"every": INTERVAL, "episodes": 2},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "pbt", "population": 2, "interval": INTERVAL, "synchronous": True},
        "params": {
            "learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
            "learning_starts": 32,
            "batch_size": 16,
            **extra,
            "buffer_size": 5000,
            "policy_kwargs": {"net_arch": [16]},
        },
        "checkpoint": {"replay_buffer": True},
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
    }
    handle = run_in_process(sweep)

    trials = handle.study.get_trials(deepcopy=False)
    assert len(trials) == 2 * GENERATIONS and all(t.state is TrialState.COMPLETE for t in trials)
    by_number = {t.number: t for t in trials}
    later = [t for t in trials if int(t.user_attrs["generation"]) > 0]
    assert any("donor" in t.user_attrs for t in later), "no exploit happened; the test needs one"
    for t in later:
        parent = by_number[int(t.user_attrs["parent"])]  # the donor's run after an exploit
        if trainer.get("normalize"):
            assert Path(t.user_attrs["vecnormalize"]).is_file()
        with (
            np.load(parent.user_attrs["replay_buffer"], allow_pickle=False) as before,
            np.load(t.user_attrs["replay_buffer"], allow_pickle=False) as after,
        ):
            # the run's buffer is its parent's, transition for transition, followed by its own steps
            assert int(after["pos"]) == int(before["pos"]) + INTERVAL
            for name in ("observations", "next_observations", "actions", "rewards", "dones"):
                np.testing.assert_array_equal(after[name][: int(before["pos"])], before[name], err_msg=name)


@pytest.mark.slow
def test_replay_segments_continue_with_their_replay_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from rlsweep.api import Study

    monkeypatch.chdir(tmp_path)
    sweep = {
        "study": "sb3-pbt-replay-buffer",
        "seed": 0,
        "trainer": {"kind": "sb3", "algo": "DQN", "env": "CartPole-v1", "timesteps": INTERVAL * GENERATIONS},
        "eval": {"every": INTERVAL, "episodes": 2},
        "strategy": {"name": "pbt", "population": 2, "interval": INTERVAL, "synchronous": True},
        "params": {
            "learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
            "learning_starts": 32,
            "batch_size": 16,
            "train_freq": 4,
            "buffer_size": 5000,
            "policy_kwargs": {"net_arch": [16]},
        },
        "checkpoint": {"replay_buffer": True},
        "storage": f"sqlite:///{tmp_path}/study.db",
    }
    handle = run_in_process(sweep)

    child = Study(handle).replay(1, workers=1)
    trials = child.handle.study.get_trials(deepcopy=False)
    assert len(trials) == 2 and all(t.state is TrialState.COMPLETE for t in trials)
    segments = {t.number: int(t.user_attrs["replay"]["segments"]) for t in trials}
    assert max(segments.values()) > 1, "the schedule arm needs a change of values; the test needs one"
    for t in trials:  # each segment continues the previous one's model and its buffer
        folder = child.handle.artifact_dir(t.number)
        previous, steps = None, []
        for k in range(segments[t.number]):
            with np.load(folder / f"segment-{k}" / "replay_buffer.npz", allow_pickle=False) as buffer:
                rewards = buffer["rewards"].copy()
            if previous is not None:
                assert len(rewards) > len(previous)
                np.testing.assert_array_equal(rewards[: len(previous)], previous)
            previous = rewards
            steps.append(len(rewards))
        assert steps[-1] == INTERVAL * GENERATIONS  # every step the arm trained is in its last buffer
