"""Environments for the SB3 trainer: one `make_env` shared by training, evaluation and rendering.

Frame stacking is done per environment (not with VecFrameStack) so a rendered or evaluated episode
sees exactly the observations the policy was trained on.
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlsweep.errors import ConfigError, closest

# Added to a run's seed for its evaluation episodes, so evaluation never replays a training seed
# (training envs use seed .. seed + n_envs - 1).
EVAL_SEED_OFFSET = 1_000_003

VEC_ENVS = ("dummy", "subproc")
NORMALIZE_KEYS = ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "epsilon", "norm_obs_keys")


def import_env_module(env_id: str, file: str | None = None) -> str:
    """`module:Env-v0` imports `module` (which registers Env-v0) and returns the bare id."""
    module_name, sep, bare = env_id.partition(":")
    if not sep:
        return env_id
    try:
        importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module '{module_name}' for env '{env_id}' ({exc}); check the name and PYTHONPATH",
            file=file,
            key="trainer.env",
        ) from None
    return bare


def check_env_id(env_id: Any, file: str | None = None) -> str:
    """The registered id for `env_id`, or a ConfigError that suggests the closest registered one."""
    if not isinstance(env_id, str) or not env_id:
        raise ConfigError(
            f"needs a Gymnasium id such as 'CartPole-v1', got {env_id!r}", file=file, key="trainer.env"
        )
    bare = import_env_module(env_id, file)
    registry = gym.envs.registry
    if bare not in registry and (bare.startswith("ALE/") or "NoFrameskip" in bare):
        try:  # Atari ids register only once ale_py is imported (gymnasium >= 1.0)
            gym.register_envs(importlib.import_module("ale_py"))
        except ImportError:
            raise ConfigError(
                f"'{bare}' is an Atari id and needs ale-py: pip install 'rlsweep[atari]'", file=file, key="trainer.env"
            ) from None
    if bare not in registry:
        raise ConfigError(
            f"unknown environment '{env_id}'{closest(bare, registry)}; for a custom env write 'your_module:{bare}' so rlsweep imports the module that registers it",
            file=file,
            key="trainer.env",
        )
    return bare


def normalize_settings(config: Mapping[str, Any], gamma: float = 0.99) -> dict[str, Any] | None:
    """VecNormalize keyword arguments from `normalize: false | true | {norm_obs: ..., ...}`; None when off."""
    value = config.get("normalize", False)
    if value is False or value is None:
        return None
    settings: dict[str, Any] = {"gamma": gamma}
    if isinstance(value, Mapping):
        settings.update(value)
    return settings


class StackLastAxis(gym.Wrapper):  # type: ignore[type-arg]
    """The last `n` observations concatenated on the last axis, zeros before the first (as VecFrameStack)."""

    def __init__(self, env: gym.Env, n: int) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise ConfigError(
                f"frame_stack needs a Box observation space, got {space}", key="trainer.frame_stack"
            )
        self.n = n
        low = np.concatenate([space.low] * n, axis=-1)
        high = np.concatenate([space.high] * n, axis=-1)
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=space.dtype)  # type: ignore[arg-type]
        self.frames: deque[np.ndarray] = deque(maxlen=n)
        self._zeros = np.zeros(space.shape, dtype=space.dtype)

    def _obs(self) -> np.ndarray:
        return np.concatenate(list(self.frames), axis=-1)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.frames.extend([self._zeros] * (self.n - 1))
        self.frames.append(obs)
        return self._obs(), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(obs)
        return self._obs(), reward, terminated, truncated, info


def build_env(
    config: Mapping[str, Any],
    seed: int | None = None,
    render_mode: str | None = None,
    *,
    training: bool = False,
) -> gym.Env:  # type: ignore[type-arg]
    """One environment with rlsweep's wrappers. Training envs get a Monitor (episode returns for
    `train/episode_return`) and, for Atari, life-loss terminals and reward clipping; evaluation and
    rendering see whole games with real rewards."""
    env_id = import_env_module(str(config["env"]))
    kwargs = dict(config.get("env_kwargs") or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(env_id, **kwargs)
    if training:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env)  # innermost, so it counts whole episodes and unclipped rewards
    if config.get("atari", False):
        from stable_baselines3.common.atari_wrappers import AtariWrapper

        env = AtariWrapper(env, terminal_on_life_loss=training, clip_reward=training)
    n_stack = int(config.get("frame_stack", 0) or 0)
    if n_stack > 1:
        env = StackLastAxis(env, n_stack)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def make_env(config: Mapping[str, Any], seed: int, render_mode: str | None = None) -> gym.Env:  # type: ignore[type-arg]
    """The evaluation environment of a run's `trainer:` settings, seeded (the render helper uses this).

    The env is reset once with `seed`, so the caller's next plain `reset()` is reproducible too.
    """
    env = build_env(config, seed, render_mode)
    env.reset(seed=seed)
    return env


def _env_factory(config: dict[str, Any]) -> Callable[[], gym.Env]:  # type: ignore[type-arg]
    # A plain function over a dict so SubprocVecEnv can pickle it; seeding happens through VecEnv.seed.
    def factory() -> gym.Env:  # type: ignore[type-arg]
        return build_env(config, training=True)

    return factory


def make_vec_env(config: Mapping[str, Any], n_envs: int) -> Any:
    """The training VecEnv (without VecNormalize; the trainer adds or loads it)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    factories = [_env_factory(dict(config)) for _ in range(n_envs)]
    if config.get("vec_env", "dummy") == "subproc" and n_envs > 1:
        return SubprocVecEnv(factories)
    return DummyVecEnv(factories)


def vecnormalize_path(model_path: str | Path) -> Path:
    """Where the VecNormalize statistics of a saved model live: `vecnormalize.pkl` beside the final
    `model.zip`, `<name>_vecnormalize.pkl` beside any other `<name>.zip` (best model, checkpoints)."""
    path = Path(model_path)
    name = path.name.removesuffix(".zip")
    if name == "model":
        return path.with_name("vecnormalize.pkl")
    return path.with_name(f"{name}_vecnormalize.pkl")


def load_vecnormalize(stats_path: Path, venv: Any, *, training: bool) -> Any:
    from stable_baselines3.common.vec_env import VecNormalize

    vec = VecNormalize.load(str(stats_path), venv)
    vec.training = training
    if not training:
        vec.norm_reward = False
    return vec


class EpisodeRunner:
    """Runs evaluation episodes on its own envs, all episodes stepped together in one batch.

    Episode i is always reset with seed `base_seed + i`, so every evaluation of a run sees the same
    episodes and no training seed.
    """

    def __init__(
        self, config: Mapping[str, Any], n_episodes: int, base_seed: int, max_steps: int = 100_000
    ) -> None:
        self.envs = [build_env(config, base_seed + i) for i in range(n_episodes)]
        self.base_seed = base_seed
        self.max_steps = max_steps

    def run(
        self,
        act: Callable[[np.ndarray, np.ndarray | None, np.ndarray], tuple[np.ndarray, Any]],
        on_step: Callable[[int, Any, Any, float, bool, bool], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns (episode returns, episode lengths). `act(obs_batch, state, episode_start)` ->
        (actions, state) is the SB3 predict signature, so recurrent policies work too. `on_step(i,
        obs, action, reward, terminated, truncated)` sees each step of episode i (recording)."""
        n = len(self.envs)
        obs = [env.reset(seed=self.base_seed + i)[0] for i, env in enumerate(self.envs)]
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        active = np.ones(n, dtype=bool)
        state: Any = None
        starts = np.ones(n, dtype=bool)
        for _ in range(self.max_steps):
            actions, state = act(np.stack(obs), state, starts)
            starts = np.zeros(n, dtype=bool)
            for i in np.flatnonzero(active):
                new_obs, reward, terminated, truncated, _ = self.envs[i].step(actions[i])
                if on_step is not None:
                    on_step(int(i), obs[i], actions[i], float(reward), bool(terminated), bool(truncated))
                returns[i] += float(reward)
                lengths[i] += 1
                obs[i] = new_obs
                if terminated or truncated:
                    active[i] = False
            if not active.any():
                break
        return returns, lengths

    def close(self) -> None:
        for env in self.envs:
            env.close()
