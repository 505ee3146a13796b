"""`checkpoint: {replay_buffer: true}`: the replay buffer saved beside a checkpoint as plain arrays and
restored into a continuing model (same layout, or the newest transitions when the size differs),
through the trainer's own save and continue; on-policy algorithms are refused before any run starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from gymnasium import spaces  # noqa: E402

from rlsweep.errors import TrainerError  # noqa: E402
from rlsweep.trainers.sb3.buffer import (  # noqa: E402
    load_replay_buffer,
    replay_buffer_path,
    save_replay_buffer,
)
from tests.trainers.test_sb3 import make_run, train  # noqa: E402

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Box(-1.0, 1.0, (1,), np.float32)
DQN_CARTPOLE = {"kind": "sb3", "algo": "DQN", "env": "CartPole-v1", "timesteps": 300}
TINY_DQN = {"learning_starts": 50, "train_freq": 4, "batch_size": 16, "buffer_size": 5000,
            "target_update_interval": 100, "policy_kwargs": {"net_arch": [16]}}


def filled(size: int, added: int, *, dict_obs: bool = False, seed: int = 0) -> Any:
    """A buffer of `size` with `added` random transitions (more than `size` wraps around)."""
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

    obs_space = spaces.Dict({"a": OBS, "b": spaces.Box(0, 255, (2, 2), np.uint8)}) if dict_obs else OBS
    cls = DictReplayBuffer if dict_obs else ReplayBuffer
    buffer = cls(size, obs_space, ACT, device="cpu")
    rng = np.random.default_rng(seed)
    for _ in range(added):
        def obs() -> Any:
            if dict_obs:
                return {"a": rng.random((1, 3), np.float32), "b": rng.integers(0, 255, (1, 2, 2), np.uint8)}
            return rng.random((1, 3), np.float32)

        buffer.add(obs(), obs(), rng.random((1, 1), np.float32), rng.random(1), rng.random(1) < 0.1,
                   [{"TimeLimit.truncated": bool(rng.random() < 0.1)}])
    return buffer


def fields(buffer: Any) -> dict[str, np.ndarray]:
    from rlsweep.trainers.sb3.buffer import _arrays

    return _arrays(buffer)


def assert_same(a: Any, b: Any) -> None:
    assert (a.pos, a.full, a.buffer_size) == (b.pos, b.full, b.buffer_size)
    fa, fb = fields(a), fields(b)
    assert fa.keys() == fb.keys()
    for name in fa:
        np.testing.assert_array_equal(fa[name], fb[name], err_msg=name)


@pytest.mark.parametrize("added", [0, 7, 10, 13], ids=["empty", "part", "exactly-full", "wrapped"])
@pytest.mark.parametrize("dict_obs", [False, True], ids=["box", "dict"])
def test_round_trip_restores_the_same_buffer(tmp_path: Path, added: int, dict_obs: bool) -> None:
    saved = filled(10, added, dict_obs=dict_obs)
    path = save_replay_buffer(saved, tmp_path / "replay_buffer.npz")
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"
    with np.load(path, allow_pickle=False) as data:  # plain arrays, nothing pickled
        assert {"pos", "full", "buffer_size", "actions", "rewards"} <= set(data.files)
    fresh = filled(10, 0, dict_obs=dict_obs)
    assert load_replay_buffer(fresh, path) == min(added, 10)
    assert_same(fresh, saved)


def test_another_size_gets_the_newest_transitions_oldest_first(tmp_path: Path) -> None:
    saved = filled(10, 13)  # wrapped: positions 3..9 hold transitions 3..9, 0..2 hold 10..12
    path = save_replay_buffer(saved, tmp_path / "b.npz")
    chronological = np.r_[3:10, 0:3]
    small = filled(4, 0)
    assert load_replay_buffer(small, path) == 4
    assert (small.pos, small.full) == (0, True)
    np.testing.assert_array_equal(small.rewards, saved.rewards[chronological[-4:]])
    large = filled(16, 0)
    assert load_replay_buffer(large, path) == 10
    assert (large.pos, large.full) == (10, False)
    np.testing.assert_array_equal(large.observations[:10], saved.observations[chronological])
    np.testing.assert_array_equal(large.next_observations[:10], saved.next_observations[chronological])


def test_a_buffer_of_other_spaces_is_refused(tmp_path: Path) -> None:
    from stable_baselines3.common.buffers import ReplayBuffer

    path = save_replay_buffer(filled(10, 5), tmp_path / "b.npz")
    other = ReplayBuffer(10, spaces.Box(-1.0, 1.0, (4,), np.float32), ACT, device="cpu")
    with pytest.raises(TrainerError) as info:
        load_replay_buffer(other, path)
    assert str(info.value) == (
        f"cannot restore the replay buffer {path}: its observations are (1, 3) per step, this run's are (1, 4) "
        "(n_envs and the environment's spaces must match the checkpoint's)"
    )


def test_paths_beside_the_model() -> None:
    assert replay_buffer_path("a/model.zip") == Path("a/replay_buffer.npz")
    assert replay_buffer_path("a/checkpoints/step_500.zip") == Path("a/checkpoints/step_500_replay_buffer.npz")


# ------------------------------------------------------------------ through the trainer
def continuing(tmp_path: Path, start: Path, *, replay_buffer: bool) -> Any:
    from stable_baselines3 import DQN

    from rlsweep.trainers.sb3.env import make_vec_env
    from rlsweep.trainers.sb3.training import _build_model

    run, _, _ = make_run(tmp_path, DQN_CARTPOLE, TINY_DQN, start_checkpoint=start, start_step=300,
                         budget=300, replay_buffer=replay_buffer)
    model, venv = _build_model(run, DQN, make_vec_env(DQN_CARTPOLE, 1), TINY_DQN, "cpu")
    venv.close()
    return model


def test_trainer_saves_the_buffer_with_each_checkpoint_and_a_continued_run_restores_it(tmp_path: Path) -> None:
    _, records = train(tmp_path / "donor", DQN_CARTPOLE, TINY_DQN, eval_every=300, eval_episodes=1,
                       checkpoint_every=150, replay_buffer=True)
    donor = tmp_path / "donor"
    assert records["replay_buffer"] == str(donor / "replay_buffer.npz")
    assert (donor / "checkpoints" / "step_150_replay_buffer.npz").is_file()
    assert (donor / "checkpoints" / "step_300_replay_buffer.npz").is_file()
    assert not (donor / "best_model_replay_buffer.npz").exists()  # best_model is for evaluation only
    assert not list(donor.rglob(".*tmp*")), "temporary files left behind"

    model = continuing(tmp_path / "next", Path(records["model"]), replay_buffer=True)
    buffer = model.replay_buffer
    assert (buffer.pos, buffer.full) == (300, False)  # every step the donor took
    with np.load(records["replay_buffer"], allow_pickle=False) as saved:
        for name, array in fields(buffer).items():
            np.testing.assert_array_equal(array[:300], saved[name], err_msg=name)
    assert not buffer.observations[300:].any()
    assert model.learning_starts == 50  # it learns from the restored experience at once

    with np.load(donor / "checkpoints" / "step_150_replay_buffer.npz", allow_pickle=False) as half:
        # a checkpoint is saved from SB3's step callback, which runs just before that step's transition is stored
        assert int(half["pos"]) == 149
    empty = continuing(tmp_path / "plain", Path(records["model"]), replay_buffer=False)
    assert (empty.replay_buffer.pos, empty.replay_buffer.full) == (0, False)
    assert empty.learning_starts == 300 + 16  # no buffer: collect a batch before learning again


def test_continuing_a_checkpoint_saved_without_its_buffer_fails_clearly(tmp_path: Path) -> None:
    _, records = train(tmp_path / "donor", DQN_CARTPOLE, TINY_DQN, eval_every=300, eval_episodes=1)
    with pytest.raises(TrainerError) as info:
        continuing(tmp_path / "next", Path(records["model"]), replay_buffer=True)
    assert str(info.value) == (
        f"cannot continue from {records['model']} with checkpoint.replay_buffer: its replay buffer "
        f"{tmp_path / 'donor' / 'replay_buffer.npz'} is missing (saved without replay_buffer: true?)"
    )


def test_on_policy_algorithm_with_replay_buffer_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlsweep.cli import main

    monkeypatch.chdir(tmp_path)
    sweep = {
        "study": "ppo-buffer",
        "trainer": {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1", "timesteps": 1000},
        "strategy": {"name": "grid"},
        "checkpoint": {"replay_buffer": True},
    }
    Path("bad.json").write_text(json.dumps(sweep))
    assert main(["run", "bad.json"]) == 2
    assert capsys.readouterr().err == (
        "rlsweep: error: bad.json: checkpoint.replay_buffer: PPO keeps no replay buffer (it learns on-policy); "
        "replay_buffer: true is for off-policy algorithms (DQN, SAC, TD3, DDPG, TQC, QRDQN, CrossQ): "
        "remove it or set it to false\n"
    )
    assert not Path("runs/ppo-buffer/study.db").exists()
