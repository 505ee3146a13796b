"""SB3Trainer: `trainer: {kind: sb3, algo: PPO, env: CartPole-v1, ...}`.

The class itself imports nothing heavy, so the registry, the sweep-file checks that need no
environment, and `rlsweep space` stay fast; torch, SB3 and Gymnasium are imported by the methods
that need them (training, validation against a real environment, loading a policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlsweep.trainers._base import RunContext, Trainer


class SB3Trainer(Trainer):
    """Trains one run with a Stable-Baselines3 (or sb3-contrib) algorithm."""

    #: the trainer writes its reported metrics to artifact_dir/tb itself (the worker then does not)
    writes_tensorboard = True

    @classmethod
    def validate(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
        from rlsweep.trainers.sb3.validate import validate_settings

        validate_settings(settings, hyperparams, file)

    def train(self, run: RunContext) -> None:
        from rlsweep.trainers.sb3.training import train

        train(run)
