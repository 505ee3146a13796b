"""Saved SB3 policies as plain `obs -> action` callables, for rendering and maturity checks.

A model saved by the SB3 trainer loads with plain `Algo.load(path)`; this adds its VecNormalize
statistics when they are beside it, so the policy sees observations scaled as in training.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.errors import TrainerError
from rlsweep.trainers.sb3.algos import algorithm_class
from rlsweep.trainers.sb3.env import normalize_settings, vecnormalize_path


class SB3Policy:
    """A saved model as `obs -> action` (deterministic), with its VecNormalize statistics applied.

    Call `reset()` at the start of each episode; it matters only for recurrent policies.
    """

    def __init__(self, model: Any, vecnorm: Any = None, *, deterministic: bool = True) -> None:
        self.model = model
        self.vecnorm = vecnorm
        self.deterministic = deterministic
        self.reset()

    def reset(self) -> None:
        self._state: Any = None
        self._start = np.ones((1,), dtype=bool)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.vecnorm is not None:
            obs = self.vecnorm.normalize_obs(obs)
        action, self._state = self.model.predict(
            obs, state=self._state, episode_start=self._start, deterministic=self.deterministic
        )
        self._start = np.zeros((1,), dtype=bool)
        return np.asarray(action)


def load_policy(model_path: str | Path, config: Mapping[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Load a model saved by this trainer (plain SB3 `load`) and its VecNormalize statistics if
    they are beside it; returns a deterministic `obs -> action` callable (an SB3Policy)."""
    path = Path(model_path)
    if not path.exists():
        raise TrainerError(f"no model at {path}")
    algo_cls = algorithm_class(str(config["algo"]))
    model = algo_cls.load(str(path), device="cpu")
    stats = vecnormalize_path(path)
    vecnorm = None
    if stats.exists():
        # VecNormalize pickles itself without its env; normalize_obs needs only the statistics.
        with stats.open("rb") as fh:
            vecnorm = pickle.load(fh)
        vecnorm.training = False
    elif normalize_settings(config) is not None:
        raise TrainerError(f"{path} was trained with VecNormalize but {stats} is missing")
    return SB3Policy(model, vecnorm)
