"""Seeded episode recording, overlays, render_policy's files and sidecars, the render pool."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlsweep.render import RenderJob, record_episode, render_many, render_policy, timeline_jobs


class DotEnv(gym.Env):  # type: ignore[type-arg]
    """A dot in a square that the policy moves toward the centre; tiny frames, random start."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, render_mode: str | None = "rgb_array") -> None:
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(4)
        self.pos = np.zeros(2, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        return self.pos.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        move = [(0.1, 0), (-0.1, 0), (0, 0.1), (0, -0.1)][int(action)]
        self.pos = np.clip(self.pos + np.array(move, dtype=np.float32), -1, 1)
        dist = float(np.linalg.norm(self.pos))
        return self.pos.copy(), -dist, dist < 0.1, False, {}

    def render(self) -> np.ndarray:
        frame = np.full((96, 128, 3), 230, dtype=np.uint8)
        x, y = ((self.pos + 1) / 2 * [124, 92]).astype(int)
        frame[y : y + 4, x : x + 4] = (30, 60, 200)
        return frame


def greedy(obs: np.ndarray) -> int:
    i = int(np.argmax(np.abs(obs)))
    return (1 if obs[0] > 0 else 0) if i == 0 else (3 if obs[1] > 0 else 2)


def make_toy_env(config: dict[str, Any], seed: int, render_mode: str | None = None) -> gym.Env:  # type: ignore[type-arg]
    return DotEnv(render_mode)


def load_toy_policy(model_path: Any, config: dict[str, Any]) -> Any:
    return greedy


def _hash(frames: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for f in frames:
        h.update(np.ascontiguousarray(f).tobytes())
    return h.hexdigest()


def test_same_seed_same_episode() -> None:
    a = record_episode(DotEnv(), greedy, seed=3)
    b = record_episode(DotEnv(), greedy, seed=3)
    c = record_episode(DotEnv(), greedy, seed=4)
    assert a.episode_return == b.episode_return and a.length == b.length
    assert _hash(a.frames) == _hash(b.frames)
    assert _hash(a.frames) != _hash(c.frames)
    assert a.terminated and len(a.frames) == a.length + 1
    assert a.observations.shape == (a.length, 2) and a.actions.shape == (a.length,)


def test_max_steps_truncates() -> None:
    ep = record_episode(DotEnv(), lambda obs: 0, seed=0, max_steps=7)
    assert (ep.length, len(ep.frames), ep.truncated, ep.terminated) == (7, 8, True, False)


def test_overlay_changes_pixels_but_not_size() -> None:
    plain = record_episode(DotEnv(), greedy, seed=1)
    marked = record_episode(DotEnv(), greedy, seed=1, overlay="run 7\nconfig ab12")
    assert plain.episode_return == marked.episode_return
    for p, m in zip(plain.frames, marked.frames, strict=True):
        assert p.shape == m.shape
        assert not np.array_equal(p[:12, :32], m[:12, :32])
        assert np.array_equal(p[-16:], m[-16:])  # the text stays in its corner


def test_frame_size_shrinks_frames() -> None:
    ep = record_episode(DotEnv(), greedy, seed=1, frame_size=(32, 24))
    assert ep.frames[0].shape == (24, 32, 3)
    assert ep.observations.shape[0] == ep.length


def test_render_needs_rgb_array_env() -> None:
    from rlsweep.errors import ConfigError

    with pytest.raises(ConfigError, match="render_mode='rgb_array'"):
        record_episode(DotEnv(render_mode=None), greedy, seed=0)


def test_render_policy_writes_files_and_sidecars(tmp_path: Path) -> None:
    results = render_policy(
        "model.zip", {"env": "Dot"}, tmp_path / "r" / "run7.gif", episodes=2, seed=10, run=7, config_id="ab12",
        make_env=make_toy_env, load_policy=load_toy_policy,
    )  # fmt: skip
    assert [r.path.name for r in results] == ["run7-seed10.gif", "run7-seed11.gif"]
    for r in results:
        meta = json.loads(r.sidecar.read_text())
        assert r.sidecar.name == r.path.name + ".json"
        assert (meta["run"], meta["config_id"], meta["seed"]) == (7, "ab12", r.seed)
        assert meta["return"] == r.episode_return and meta["frames"] == meta["length"] + 1
        assert meta["configuration"] == {"env": "Dot"} and len(meta["behaviour"]) == 2 + 2 + 4 + 1
        assert meta["behaviour_names"] == [
            "obs0_mean", "obs1_mean", "obs0_std", "obs1_std",
            "action0_frac", "action1_frac", "action2_frac", "action3_frac", "length",
        ]  # fmt: skip
    again = render_policy(
        "model.zip", {}, tmp_path / "again.gif", seed=10, make_env=make_toy_env, load_policy=load_toy_policy
    )
    assert again[0].episode_return == results[0].episode_return


def test_render_many_in_parallel(tmp_path: Path) -> None:
    common = {
        "make_env": f"{__name__}:make_toy_env",
        "load_policy": f"{__name__}:load_toy_policy",
        "config": {},
    }
    jobs = [RenderJob(model_path=f"m{i}", out_path=tmp_path / f"{i}.gif", seed=i, **common) for i in range(3)]
    jobs.append(RenderJob(model_path="x", out_path=tmp_path / "bad.gif", config={}, make_env="no.such:thing"))
    outcomes = render_many(jobs, workers=2)
    assert [o.ok for o in outcomes] == [True, True, True, False]
    assert "no.such:thing" in (outcomes[3].error or "")
    assert all((tmp_path / f"{i}.gif").exists() for i in range(3))
    serial = render_many(jobs[:1], workers=1)
    assert serial[0].results[0].episode_return == outcomes[0].results[0].episode_return


def test_timeline_jobs_one_per_checkpoint(tmp_path: Path) -> None:
    jobs = timeline_jobs([(2000, "b.zip"), (1000, "a.zip")], {}, tmp_path, seed=5)
    assert [j.out_path.name for j in jobs] == ["step-000001000.gif", "step-000002000.gif"]  # type: ignore[union-attr]
    assert {j.seed for j in jobs} == {5}


def test_cartpole_headless_reproducible() -> None:
    pytest.importorskip("pygame")
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    policy = lambda obs: int(obs[2] + 0.5 * obs[3] > 0)  # noqa: E731
    a = record_episode(env, policy, seed=0, max_steps=15)
    b = record_episode(env, policy, seed=0, max_steps=15)
    env.close()
    assert a.frames[0].shape == (400, 600, 3)
    assert _hash(a.frames) == _hash(b.frames) and a.episode_return == b.episode_return == 15.0


@pytest.mark.slow
def test_render_a_trained_sb3_policy(tmp_path: Path) -> None:
    sb3 = pytest.importorskip("rlsweep.trainers.sb3")
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    torch.set_num_threads(1)

    config = {"kind": "sb3", "algo": "PPO", "env": "CartPole-v1"}
    model = PPO(
        "MlpPolicy", sb3.make_env(config, 0), n_steps=256, batch_size=64, n_epochs=2, seed=0, device="cpu"
    )
    model.set_logger(Logger(folder=None, output_formats=[]))  # not SB3's default: an empty /tmp/SB3-* per run
    model.learn(2000)
    model.save(tmp_path / "model.zip")
    first = render_policy(
        tmp_path / "model.zip", config, tmp_path / "out.gif", seed=100, size=(150, 100), run=0, config_id="c0"
    )
    again = render_policy(
        tmp_path / "model.zip",
        config,
        tmp_path / "again.mp4",
        seed=100,
        fmt="mp4",
        size=(150, 100),
        overlay=False,
    )
    assert first[0].episode_return == again[0].episode_return == first[0].length
    meta = json.loads(first[0].sidecar.read_text())
    assert meta["size"] == [150, 100] and meta["frames"] == first[0].length + 1
    assert len(meta["behaviour"]) == 4 + 4 + 2 + 1


@pytest.mark.parametrize(
    ("env_id", "algo", "module"),
    [("LunarLander-v3", "PPO", "Box2D"), ("HalfCheetah-v5", "SAC", "mujoco")],
    ids=["box2d", "mujoco"],
)
def test_render_box2d_and_mujoco_headless(tmp_path: Path, env_id: str, algo: str, module: str) -> None:
    """Box2D and MuJoCo (MUJOCO_GL=egl, set by scripts/test.sh) render without a screen: real frames,
    reproducible for a seed. The policy is an untrained one saved by SB3; what matters is the env."""
    pytest.importorskip(module)
    sb3 = pytest.importorskip("rlsweep.trainers.sb3")
    import stable_baselines3

    config = {"kind": "sb3", "algo": algo, "env": env_id}
    model = getattr(stable_baselines3, algo)("MlpPolicy", sb3.make_env(config, 0), seed=0, device="cpu")
    model.save(tmp_path / "model.zip")
    kwargs: dict[str, Any] = {"seed": 7, "size": (120, 90), "max_steps": 40, "run": 3, "config_id": "c3"}
    first = render_policy(tmp_path / "model.zip", config, tmp_path / "a.gif", **kwargs)[0]
    again = render_policy(tmp_path / "model.zip", config, tmp_path / "b.gif", **kwargs)[0]
    from PIL import Image

    with Image.open(first.path) as gif:
        assert gif.size == (120, 90) and gif.n_frames > 5
        gif.seek(gif.n_frames - 1)
        pixels = np.asarray(gif.convert("RGB"))
    assert pixels.std() > 5  # a real scene, not a blank frame
    assert first.length == again.length == 40
    assert first.episode_return == again.episode_return
    assert first.path.read_bytes() == again.path.read_bytes()
