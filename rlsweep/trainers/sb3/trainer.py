"""SB3Trainer: `trainer: {kind: sb3, algo: PPO, env: CartPole-v1, ...}`.

The class itself imports nothing heavy, so the registry, the default space, the quick start and
`rlsweep space` stay fast; torch, SB3 and Gymnasium are imported by the methods that need them
(training, validation against a real environment, loading a policy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError
from rlsweep.trainers._base import RunContext, Trainer


class SB3Trainer(Trainer):
    """Trains one run with a Stable-Baselines3 (or sb3-contrib) algorithm."""

    #: the training loop writes its reported metrics to artifact_dir/tb itself (the worker then does not)
    writes_tensorboard = True
    #: every run records `model` (the final model.zip), which a PBT generation continues from
    records_checkpoints = True
    can_load_policy = True

    @classmethod
    def validate(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
        try:
            from rlsweep.trainers.sb3.validate import validate_settings
        except ImportError as exc:  # the class imports without SB3; this is where a missing one shows
            raise ConfigError(
                f"trainer kind 'sb3' needs extra packages ({exc.name} is missing): pip install 'rlsweep[sb3]'",
                file=file,
                key="trainer.kind",
            ) from exc
        validate_settings(settings, hyperparams, file)

    @classmethod
    def validate_checkpoint(cls, settings: Mapping[str, Any], checkpoint: Mapping[str, Any], file: str) -> None:
        from rlsweep.trainers.sb3.validate import validate_checkpoint

        validate_checkpoint(settings, checkpoint, file)

    @classmethod
    def validate_record(cls, settings: Mapping[str, Any], record: Mapping[str, Any], file: str) -> None:
        from rlsweep.trainers.sb3.validate import validate_record

        validate_record(settings, record, file)

    @classmethod
    def default_space(cls, settings: Mapping[str, Any]) -> dict[str, Any] | None:
        from rlsweep.trainers.sb3.spaces import default_space

        return default_space(str(settings.get("algo", "")))

    @classmethod
    def merge_space(cls, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        from rlsweep.trainers.sb3.spaces import merge_space

        return merge_space(defaults, overrides)  # policy_kwargs merge key by key

    @classmethod
    def warm_modules(cls, settings: Mapping[str, Any]) -> list[str]:
        return [cls.__module__, "rlsweep.trainers.sb3.training", "stable_baselines3", "gymnasium"]

    @classmethod
    def quickstart(cls, algo: str, env: str, timesteps: int) -> dict[str, Any]:
        return {"kind": "sb3", "algo": algo, "env": env, "timesteps": timesteps}

    @classmethod
    def updates_per_step(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> float | None:
        """Minibatch updates per environment step, with SB3's defaults for what is not set: PPO
        makes n_epochs passes of ceil(rollout / batch_size) minibatches per rollout of n_steps x
        n_envs steps, A2C one update per rollout, an off-policy algorithm gradient_steps per
        train_freq x n_envs steps (-1: one per step). None for other algorithms or a train_freq
        counted in episodes."""
        from rlsweep.trainers.sb3.algos import OFF_POLICY

        algo = str(settings.get("algo", "")).lower()
        recurrent = algo == "recurrentppo"
        try:
            n_envs = _positive(settings.get("n_envs", 1))
            if algo in ("ppo", "recurrentppo"):
                rollout = _positive(hyperparams.get("n_steps", 128 if recurrent else 2048)) * n_envs
                batches = -(-rollout // _positive(hyperparams.get("batch_size", 128 if recurrent else 64)))
                return _positive(hyperparams.get("n_epochs", 10)) * batches / rollout
            if algo == "a2c":
                return 1.0 / (_positive(hyperparams.get("n_steps", 5)) * n_envs)
            if algo in (name.lower() for name in OFF_POLICY):
                freq = hyperparams.get("train_freq", 4 if algo in ("dqn", "qrdqn") else 1)
                if isinstance(freq, (list, tuple)):
                    if len(freq) != 2 or str(freq[1]) != "step":
                        return None
                    freq = freq[0]
                steps = _positive(freq) * n_envs
                gradient = int(hyperparams.get("gradient_steps", 1))
                return 1.0 if gradient < 0 else gradient / steps
        except (TypeError, ValueError):
            return None
        return None

    @classmethod
    def load_policy(cls, settings: Mapping[str, Any], path: str | Path) -> Callable[[Any], Any]:
        import torch

        # A policy loaded for evaluation acts on one observation at a time, often in one of many
        # pool processes: more threads only compete for the cores.
        torch.set_num_threads(1)
        from rlsweep.trainers.sb3.policy import load_policy

        return load_policy(path, settings)

    @classmethod
    def make_env(cls, settings: Mapping[str, Any], seed: int, render_mode: str | None = None) -> Any:
        from rlsweep.trainers.sb3.env import make_env

        return make_env(settings, seed, render_mode=render_mode)

    def train(self, run: RunContext) -> None:
        from rlsweep.trainers.sb3.training import train

        train(run)


def _positive(value: Any) -> int:
    """A count from a sweep (validated elsewhere); ValueError when it is not a positive integer."""
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number
