"""JaxTrainer: `trainer: {kind: jax, algo: ppo, env: CartPole-v1, timesteps: 100000, batch: 64}`.

A worker claims up to `batch` runs and trains each group of shape-compatible ones as one vmapped
rejax computation (see batch.py). The class imports nothing heavy: JAX, rejax and gymnax are
imported by the methods that train or load a policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rlsweep.trainers._base import RunContext, Trainer
from rlsweep.trainers.jax import settings as jax_settings


class JaxTrainer(Trainer):
    """Trains a batch of runs (seeds x per-run hyperparameters) at once with rejax on gymnax."""

    #: every run records `model` (its whole training state), which a PBT generation continues from
    records_checkpoints = True
    can_load_policy = True

    @classmethod
    def validate(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
        jax_settings.validate(settings, hyperparams, file)

    @classmethod
    def batch_size_for(cls, settings: Mapping[str, Any]) -> int:
        """`batch`, or with `memory` as many runs as fit in it (from the trainer section's shapes:
        searched shape settings are not known before a claim)."""
        batch = int(settings.get("batch", jax_settings.DEFAULT_BATCH))
        if "memory" not in settings:
            return batch
        from rlsweep.trainers.jax import build

        values = jax_settings.algo_settings(settings, {})
        return build.fit_batch(settings, values, batch, jax_settings.parse_memory(settings["memory"]))

    @classmethod
    def batch_group(cls, config: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> Any:
        return jax_settings.shape_key(config, hyperparams)

    @classmethod
    def warm_modules(cls, settings: Mapping[str, Any]) -> list[str]:
        return [cls.__module__, "rlsweep.trainers.jax.batch", "jax", "rejax", "gymnax"]

    @classmethod
    def load_policy(cls, settings: Mapping[str, Any], path: str | Path) -> Callable[[Any], Any]:
        from rlsweep.trainers.jax.policy import load_policy

        return load_policy(settings, path)

    @classmethod
    def make_env(cls, settings: Mapping[str, Any], seed: int, render_mode: str | None = None) -> Any:
        from rlsweep.trainers.jax.policy import make_env

        return make_env(settings, seed, render_mode)

    def budget(self) -> int:
        return int(self.settings.get("timesteps", 0))

    def train(self, run: RunContext) -> None:
        self.train_batch([run])

    def train_batch(self, runs: list[RunContext]) -> None:
        from rlsweep.trainers.jax.batch import train_batch

        train_batch(runs)
