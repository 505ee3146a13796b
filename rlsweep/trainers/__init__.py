"""Trainers: what trains a run. `get_trainer(kind)` imports the one asked for, and only that one."""

from __future__ import annotations

import importlib

from rlsweep.errors import ConfigError, closest
from rlsweep.trainers._base import Decision, RunContext, Trainer

# kind -> "module:class"; imported lazily so `import rlsweep` never pulls in torch or JAX.
TRAINERS: dict[str, str] = {
    "function": "rlsweep.trainers.function:FunctionTrainer",
    "sb3": "rlsweep.trainers.sb3:SB3Trainer",
    "command": "rlsweep.trainers.command:CommandTrainer",
    "jax": "rlsweep.trainers.jax:JaxTrainer",
}

__all__ = ["TRAINERS", "Decision", "RunContext", "Trainer", "get_trainer_class"]


def get_trainer_class(kind: str, *, file: str | None = None) -> type[Trainer]:
    if kind not in TRAINERS:
        raise ConfigError(
            f"unknown trainer kind '{kind}'{closest(kind, TRAINERS)}; known: {', '.join(TRAINERS)}",
            file=file,
            key="trainer.kind",
        )
    module_name, _, class_name = TRAINERS[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"sb3": "sb3", "jax": "jax"}.get(kind, "all")
        raise ConfigError(
            f"trainer kind '{kind}' needs extra packages ({exc.name} is missing): pip install 'rlsweep[{extra}]'",
            file=file,
            key="trainer.kind",
        ) from exc
    return getattr(module, class_name)  # type: ignore[no-any-return]
