"""Per-step data and the training monitor: `record: {trajectories, every, batches}` and
`trainer.monitor`, on real tiny SB3 runs. The recorded rewards must add up to the returns the run
logged (evaluation) and to SB3's Monitor episode returns (training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("stable_baselines3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from rlsweep.cli import main  # noqa: E402
from rlsweep.trainers.sb3 import SB3Trainer  # noqa: E402
from rlsweep.trainers.trajectories import ParquetRows  # noqa: E402
from tests.trainers.test_sb3 import CARTPOLE, TINY_PPO, make_run  # noqa: E402


def episode_sums(frame: pd.DataFrame) -> pd.DataFrame:
    """Per recorded episode: the sum of its rewards, its length, and the return logged on its last row."""
    grouped = frame.groupby(["kind", "episode"])
    return pd.DataFrame(
        {
            "reward_sum": grouped["reward"].sum(),
            "length": grouped["t"].max() + 1,
            "logged": grouped["episode_return"].last(),
            "ended": grouped.apply(lambda g: bool((g["terminated"] | g["truncated"]).iloc[-1]), include_groups=False),
            "step": grouped["step"].first(),
        }
    ).reset_index()


def test_recorded_rewards_sum_to_the_logged_returns(tmp_path: Path) -> None:
    config = {**CARTPOLE, "timesteps": 1024, "monitor": {"after": 256, "every": 512, "max_steps": 40}}
    run, collector, records = make_run(tmp_path, config, TINY_PPO, record_trajectories="both", eval_every=256)
    SB3Trainer(config).train(run)

    frame = pd.read_parquet(records["trajectories"])
    assert set(frame["kind"]) == {"eval", "train"}
    assert len(frame.loc[0, "obs"]) == 4 and len(frame.loc[0, "action"]) == 1  # CartPole: 4 numbers, 1 action
    sums = episode_sums(frame)

    # Evaluation: every evaluation's episodes (3 each) sum to the mean return it reported, at its step.
    evals = sums[sums["kind"] == "eval"]
    reported = collector.curve()
    assert len(evals) == 3 * len(reported)
    for step, mean in reported:
        at = evals[evals["step"] == step]
        assert len(at) == 3 and at["ended"].all()
        assert at["reward_sum"].mean() == pytest.approx(mean)
        assert np.allclose(at["reward_sum"], at["logged"])

    # Training: each finished episode's rewards sum to the return SB3's Monitor logged for it; both
    # environments' episodes are there, and the run's steps are all recorded.
    train = frame[frame["kind"] == "train"]
    assert sorted(set(train["env"])) == [0, 1] and len(train) == 1024
    starts = np.stack(train.loc[train["t"] == 0, "obs"].to_numpy())
    assert np.abs(starts).max() <= 0.05  # the observation acted on: a reset state, not a terminal one
    finished = sums[(sums["kind"] == "train") & sums["ended"]]
    assert len(finished) > 10
    assert np.allclose(finished["reward_sum"], finished["logged"])
    assert np.allclose(finished["length"], finished["reward_sum"])  # CartPole: reward 1 per step

    # The monitor: a GIF at 256 and 768 (every 512 after 256), with its paths recorded.
    videos = [Path(p) for p in records["monitor"]]
    assert [p.name for p in videos] == ["step_256.gif", "step_768.gif"]
    from PIL import Image

    with Image.open(videos[0]) as gif:
        assert gif.n_frames > 1


def test_every_keeps_one_episode_in_n(tmp_path: Path) -> None:
    config = {**CARTPOLE, "timesteps": 1024, "n_envs": 1}
    run, collector, records = make_run(tmp_path, config, TINY_PPO, record_trajectories="eval", record_every=2, eval_every=512)
    SB3Trainer(config).train(run)
    frame = pd.read_parquet(records["trajectories"])
    assert set(frame["kind"]) == {"eval"}
    # 2 evaluations x 3 episodes = 6 episodes, numbered 0..5; one in two kept
    assert sorted(set(frame["episode"])) == [0, 2, 4]


def test_off_policy_batches_are_the_sampled_updates(tmp_path: Path) -> None:
    config = {"kind": "sb3", "algo": "DQN", "env": "CartPole-v1", "timesteps": 400}
    hyper = {"learning_starts": 200, "batch_size": 16, "train_freq": 4, "gradient_steps": 1,
             "policy_kwargs": {"net_arch": [16]}}  # fmt: skip
    run, _, records = make_run(tmp_path, config, hyper, record_batches=True, record_every=5, eval_every=400)
    SB3Trainer(config).train(run)
    batches = pd.read_parquet(records["batches"])
    updates = sorted(set(batches["update"]))
    # updates happen every 4 steps after step 200 (about 50); one in five kept, 16 transitions each
    assert updates[:3] == [0, 5, 10] and 8 <= len(updates) <= 11
    assert batches.groupby("update").size().eq(16).all()
    assert batches["obs"].map(len).eq(4).all() and batches["next_obs"].map(len).eq(4).all()
    assert batches["step"].min() >= 200
    assert "trajectories" not in records  # only what was asked for


def test_a_recording_file_appears_only_when_complete(tmp_path: Path) -> None:
    out = ParquetRows(tmp_path / "t.parquet", flush_rows=3)
    for i in range(7):
        out.add({"i": i, "obs": [float(i), 1.0]})
    assert not (tmp_path / "t.parquet").exists() and out.tmp.exists()  # two row groups written so far
    path = out.close()
    assert path == tmp_path / "t.parquet" and not out.tmp.exists()
    frame = pd.read_parquet(path)
    assert frame["i"].tolist() == list(range(7)) and frame.loc[6, "obs"].tolist() == [6.0, 1.0]


def sweep_file(tmp_path: Path, **extra: Any) -> Path:
    doc = {
        "study": "rec",
        "trainer": {**CARTPOLE, "timesteps": 512},
        "params": {**TINY_PPO, "learning_rate": {"choice": [0.001, 0.0003]}},
        "strategy": {"name": "grid"},
        "eval": {"every": 256, "episodes": 2},
        **extra,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_run_then_export_trajectories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    sweep_file(tmp_path, record={"trajectories": "eval"})
    assert main(["run", "sweep.yaml", "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", "rec", "--trajectories"]) == 0
    printed = capsys.readouterr().out
    assert "runs/rec/export/trajectories.parquet" in printed
    frame = pd.read_parquet(tmp_path / "runs/rec/export/trajectories.parquet")
    assert sorted(set(frame["run"])) == [0, 1] and frame["config_id"].nunique() == 2
    # each run: 2 evaluations x 2 episodes
    assert frame.groupby("run")["episode"].nunique().tolist() == [4, 4]


def test_bad_recording_settings_are_exit_2_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    sweep_file(tmp_path, record={"batches": True})
    assert main(["run", "sweep.yaml"]) == 2
    err = capsys.readouterr().err
    assert "sweep.yaml: record.batches: PPO samples no update batches (it learns on-policy from its rollouts)" in err
    sweep_file(tmp_path, record={"trajectories": "episodes"})
    assert main(["run", "sweep.yaml"]) == 2
    assert "record.trajectories" in capsys.readouterr().err
    doc = yaml.safe_load((tmp_path / "sweep.yaml").read_text())
    doc["record"] = {}
    doc["trainer"]["monitor"] = {"every": 100}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(doc))
    assert main(["run", "sweep.yaml"]) == 2
    assert "trainer.monitor.after: needs 'after'" in capsys.readouterr().err
    synthetic = {"study": "syn", "trainer": {"kind": "function", "target": "rlsweep.examples.synthetic:train", "steps": 10},
                 "params": {"lr": {"choice": [0.1]}}, "record": {"trajectories": "train"}}  # fmt: skip
    (tmp_path / "syn.yaml").write_text(yaml.safe_dump(synthetic))
    assert main(["run", "syn.yaml"]) == 2
    err = capsys.readouterr().err
    assert "record.trajectories: the 'function' trainer does not record per-step data; remove record.trajectories" in err
    assert not (tmp_path / "runs/syn").exists() or not list((tmp_path / "runs/syn").glob("artifacts/*"))
