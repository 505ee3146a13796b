"""What an SB3 run records besides its metrics: per-step trajectories (`record:` in the sweep),
the update batches an off-policy algorithm sampled, and short videos of the training environment
(`trainer.monitor`), so a user can look at learning while it happens.

The training side reads SB3's rollout loop through the callback's `locals` (the step's actions,
rewards, dones and infos; the observation the action was taken on is still `model._last_obs`
there); rewards are taken before VecNormalize scales them, so an episode's rewards sum to the
return SB3's Monitor logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.trainers.trajectories import BatchWriter, TrajectoryWriter

MONITOR_DIR = "monitor"


class TrainRecorder:
    """Records whole training episodes (one in `writer.every` per environment) from the callback."""

    def __init__(self, writer: TrajectoryWriter, n_envs: int) -> None:
        self.writer = writer
        self.current: list[tuple[int, bool]] = [writer.new_episode("train") for _ in range(n_envs)]
        self.t = [0] * n_envs

    def on_step(self, model: Any, local: Mapping[str, Any], step: int, *, off_policy: bool) -> None:
        actions = local.get("actions")
        rewards = local.get("rewards")
        dones = local.get("dones")
        infos = local.get("infos") or []
        if actions is None or rewards is None or dones is None:
            return
        vecnorm = model.get_vec_normalize_env()
        obs = _obs_before(model, vecnorm, off_policy)
        if vecnorm is not None:
            rewards = vecnorm.get_original_reward()
        for i, done in enumerate(np.asarray(dones)):
            episode, kept = self.current[i]
            info = infos[i] if i < len(infos) else {}
            truncated = bool(done) and bool(info.get("TimeLimit.truncated", False))
            if kept and obs is not None:
                ret = info.get("episode", {}).get("r") if done else None
                self.writer.add(
                    "train", episode=episode, t=self.t[i], step=step, env=i, obs=_index(obs, i),
                    action=np.asarray(actions)[i], reward=float(np.asarray(rewards)[i]),
                    terminated=bool(done) and not truncated, truncated=truncated, episode_return=ret,
                )  # fmt: skip
            self.t[i] += 1
            if done:
                self.current[i] = self.writer.new_episode("train")
                self.t[i] = 0


class EvalRecorder:
    """Records evaluation episodes through EpisodeRunner's `on_step`; `step` is the evaluated policy's."""

    def __init__(self, writer: TrajectoryWriter) -> None:
        self.writer = writer

    def for_evaluation(self, step: int, n_episodes: int) -> Callable[..., None]:
        episodes = [self.writer.new_episode("eval") for _ in range(n_episodes)]
        t = [0] * n_episodes
        totals = [0.0] * n_episodes

        def on_step(i: int, obs: Any, action: Any, reward: float, terminated: bool, truncated: bool) -> None:
            episode, kept = episodes[i]
            totals[i] += float(reward)
            if kept:
                end = terminated or truncated
                self.writer.add(
                    "eval", episode=episode, t=t[i], step=step, env=i, obs=obs, action=action,
                    reward=reward, terminated=terminated, truncated=truncated,
                    episode_return=totals[i] if end else None,
                )  # fmt: skip
            t[i] += 1

        return on_step


def record_batches(model: Any, writer: BatchWriter, step: Callable[[], int]) -> None:
    """Wrap the replay buffer's `sample` so every batch handed to an update is also written."""
    buffer = model.replay_buffer
    sample = buffer.sample

    def recorded_sample(batch_size: int, env: Any = None) -> Any:
        data = sample(batch_size, env=env)
        writer.add(
            step(),
            {
                "obs": _rows(data.observations),
                "action": _rows(data.actions),
                "reward": _rows(data.rewards),
                "next_obs": _rows(data.next_observations),
                "done": _rows(data.dones),
            },
        )
        return data

    buffer.sample = recorded_sample


def _rows(value: Any) -> np.ndarray:
    """A batch field as one flat row per transition (dict observations: their keys side by side)."""
    if isinstance(value, Mapping):
        parts = [_rows(value[k]) for k in sorted(value)]
        return np.concatenate(parts, axis=1)
    array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    return array.reshape(len(array), -1)


def _obs_before(model: Any, vecnorm: Any, off_policy: bool) -> Any:
    """The observations the step's actions were taken on, as the environment gave them."""
    if off_policy and getattr(model, "_last_original_obs", None) is not None:
        return model._last_original_obs
    obs = model._last_obs
    if obs is None:
        return None
    if vecnorm is not None:
        return vecnorm.unnormalize_obs(obs)
    return obs


def _index(obs: Any, i: int) -> Any:
    if isinstance(obs, Mapping):
        return np.concatenate([np.asarray(obs[k][i]).ravel() for k in sorted(obs)])
    return obs[i]


class Monitor:
    """`trainer.monitor: {after: N, every: M, max_steps: K}`: once the run has trained N steps (and
    every M steps after), one episode of the current policy on a rendering copy of the training
    environment is written to `<artifacts>/monitor/step_<k>.gif`."""

    def __init__(self, settings: Mapping[str, Any], config: Mapping[str, Any], artifact_dir: Path, seed: int) -> None:
        self.after = int(settings["after"])
        self.every = int(settings["every"]) if settings.get("every") else None
        self.max_steps = int(settings.get("max_steps", 1000))
        self.fps = float(settings.get("fps", 30))
        self.config = config
        self.folder = artifact_dir / MONITOR_DIR
        self.seed = seed
        self.next_at: int | None = self.after
        self.videos: list[str] = []

    def due(self, step: int) -> bool:
        return self.next_at is not None and step >= self.next_at

    def record(self, step: int, act: Callable[[np.ndarray, Any, np.ndarray], tuple[np.ndarray, Any]]) -> Path:
        from rlsweep.render.episodes import record_episode
        from rlsweep.render.gif import write_gif
        from rlsweep.trainers.sb3.env import make_env

        start = self.next_at if self.next_at is not None else step
        self.next_at = None if self.every is None else start + self.every * ((step - start) // self.every + 1)
        self.folder.mkdir(parents=True, exist_ok=True)
        env = make_env(self.config, self.seed, render_mode="rgb_array")
        state: list[Any] = [None, np.ones(1, dtype=bool)]

        def policy(obs: Any) -> Any:
            batch = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, Mapping) else np.asarray(obs)[None]
            actions, state[0] = act(batch, state[0], state[1])  # type: ignore[arg-type]
            state[1] = np.zeros(1, dtype=bool)
            return actions[0]

        try:
            episode = record_episode(env, policy, self.seed, max_steps=self.max_steps, overlay=f"training step {step}")
        finally:
            env.close()
        path = write_gif(episode.frames, self.folder / f"step_{step}.gif", fps=self.fps)
        self.videos.append(str(path))
        return path


class Recordings:
    """Everything a run records besides metrics, wired to the session in a few calls: `eval_hook`
    for each evaluation, `on_step` from the callback, `close` once training ends (however it ends:
    what was recorded until then is published, each file renamed into place)."""

    def __init__(self, run: Any, model: Any, *, global_step: Callable[[], int]) -> None:
        from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

        self.run = run
        self.off_policy = isinstance(model, OffPolicyAlgorithm)
        kinds = run.record_trajectories
        self.trajectories = TrajectoryWriter(run.artifact_dir, kinds=kinds, every=run.record_every) if kinds else None
        self.train = (
            TrainRecorder(self.trajectories, int(model.get_env().num_envs))
            if self.trajectories is not None and self.trajectories.wants("train")
            else None
        )
        self.eval = EvalRecorder(self.trajectories) if self.trajectories is not None and self.trajectories.wants("eval") else None
        self.batches = None
        if run.record_batches and getattr(model, "replay_buffer", None) is not None:
            self.batches = BatchWriter(run.artifact_dir, every=run.record_every)
            record_batches(model, self.batches, global_step)
        monitor = run.config.get("monitor")
        self.monitor = Monitor(monitor, run.config, run.artifact_dir, run.seed) if monitor else None

    def eval_hook(self, step: int, n_episodes: int) -> Callable[..., None] | None:
        return self.eval.for_evaluation(step, n_episodes) if self.eval is not None else None

    def on_step(self, model: Any, local: Mapping[str, Any], step: int, act: Callable[..., Any]) -> None:
        if self.train is not None:
            self.train.on_step(model, local, step, off_policy=self.off_policy)
        if self.monitor is not None and self.monitor.due(step):
            self.monitor.record(step, act)
            self.run.record("monitor", list(self.monitor.videos))

    def close(self) -> None:
        for name, writer in (("trajectories", self.trajectories), ("batches", self.batches)):
            if writer is not None:
                path = writer.close()
                if path is not None:
                    self.run.record(name, str(path))
