"""A saved JAX run as a policy on the matching Gymnasium environment (render, mature).

gymnax's classic-control environments share their Gymnasium twins' observation and action layout,
so the network trained on gymnax plays the Gymnasium environment directly, and Gymnasium's renderer
draws it. Importing this module imports JAX and rejax.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlsweep.errors import ConfigError, TrainerError
from rlsweep.trainers.jax import build

#: gymnax id -> Gymnasium id with the same observations and actions.
GYMNASIUM_TWINS = {
    "CartPole-v1": "CartPole-v1",
    "Pendulum-v1": "Pendulum-v1",
    "Acrobot-v1": "Acrobot-v1",
    "MountainCar-v0": "MountainCar-v0",
    "MountainCarContinuous-v0": "MountainCarContinuous-v0",
}


class JaxPolicy:
    """`batch of observations -> batch of actions` (or one observation -> one action, as SB3's
    predict does), deterministic: the most likely action."""

    def __init__(self, base: Any, state: Mapping[str, Any]) -> None:
        rms = state.get("obs_rms_state") if base.normalize_observations else None
        params = build.policy_params(state)

        def act(obs: Any) -> Any:
            if rms is not None:
                obs = (obs - rms["mean"]) / jnp.sqrt(rms["var"] + 1e-8)
            return build.best_action(base, params, obs)

        self._act = jax.jit(act)
        self._obs_rank = len(base.obs_space.shape)

    def reset(self) -> None:
        pass  # feed-forward: nothing to reset between episodes

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == self._obs_rank
        actions = np.asarray(self._act(obs[None] if single else obs))
        return actions[0] if single else actions


def load_policy(settings: Mapping[str, Any], path: str | Path) -> JaxPolicy:
    file = Path(path)
    if not file.is_file():
        raise TrainerError(f"no model at {file}")
    saved = build.from_bytes(file.read_bytes())
    values = saved["settings"]
    config = {
        "algo": values.get("algo", settings.get("algo", "ppo")),
        "timesteps": values.get("timesteps") or settings.get("timesteps") or 1,
        "env": values.get("env", settings.get("env")),
        "env_params": values.get("env_params"),
    }
    base = build.make_base(config, values)
    return JaxPolicy(base, saved["state"])


def make_env(settings: Mapping[str, Any], seed: int, render_mode: str | None = None) -> Any:
    """The Gymnasium twin of the run's gymnax environment, reset once with `seed`."""
    env_id = str(settings.get("env"))
    if env_id not in GYMNASIUM_TWINS:
        raise ConfigError(
            f"the jax trainer plays saved policies on Gymnasium's twin of a gymnax environment "
            f"({', '.join(GYMNASIUM_TWINS)}); {env_id!r} has none",
            key="trainer.env",
        )
    import gymnasium as gym

    env = gym.make(GYMNASIUM_TWINS[env_id], render_mode=render_mode)
    env.reset(seed=seed)
    return env
