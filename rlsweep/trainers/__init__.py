"""Trainers: what trains a run. `get_trainer_class(kind)` imports the one asked for, and only that one.

Everything the rest of rlsweep needs to know about a trainer (its default search space, the modules
to warm, how to load a saved policy, ...) is a hook on its class (see `_base.Trainer`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from rlsweep.errors import ConfigError, closest
from rlsweep.trainers._base import Decision, RunContext, Trainer

# kind -> "module:class"; imported lazily so `import rlsweep` never pulls in torch or JAX.
TRAINERS: dict[str, str] = {
    "function": "rlsweep.trainers.function:FunctionTrainer",
    "sb3": "rlsweep.trainers.sb3:SB3Trainer",
    "jax": "rlsweep.trainers.jax:JaxTrainer",
    "command": "rlsweep.trainers.command:CommandTrainer",
}

#: The trainer kind behind `rlsweep run --algo A --env E` (and `Sweep.quickstart`, `rlsweep space`).
QUICKSTART_KIND = "sb3"

__all__ = [
    "QUICKSTART_KIND",
    "TRAINERS",
    "Decision",
    "RunContext",
    "Trainer",
    "get_trainer_class",
    "kind_of",
    "policy_trainer",
    "quickstart_sweep",
]


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
        cls = getattr(module, class_name)
    except ImportError as exc:
        # each optional trainer has a pip extra of its own name
        raise ConfigError(
            f"trainer kind '{kind}' needs extra packages ({exc.name} is missing): pip install 'rlsweep[{kind}]'",
            file=file,
            key="trainer.kind",
        ) from exc
    return cls  # type: ignore[no-any-return]


def kind_of(cls: type[Trainer]) -> str:
    """The registry name of a trainer class (its class name when it is not registered)."""
    for kind, target in TRAINERS.items():
        module_name, _, class_name = target.partition(":")
        if class_name == cls.__name__ and cls.__module__.startswith(module_name):
            return kind
    return cls.__name__


def policy_trainer(settings: Mapping[str, Any], what: str, study: str | None = None) -> type[Trainer]:
    """The trainer class of `study`'s trainer section, checked to load saved policies; `what` names
    the command for the error (`render`, `mature`)."""
    kind = str(settings.get("kind"))
    cls = get_trainer_class(kind)
    if not cls.can_load_policy:
        raise ConfigError(
            f"{what} plays saved policies; {f'study {study!r}' if study else 'the study'} uses the '{kind}' trainer, "
            "which saves none that rlsweep can load"
        )
    return cls


def quickstart_sweep(algo: str, env: str, timesteps: int, runs: int) -> dict[str, Any]:
    """The sweep behind `rlsweep run --algo ALGO --env ENV`: a TPE search with a median pruner over
    the algorithm's default space, named after the environment and the algorithm."""
    cls = get_trainer_class(QUICKSTART_KIND)
    trainer = cls.quickstart(algo, env, timesteps)
    return {
        "study": f"{env.split(':')[-1]}-{algo}".lower().replace("/", "-"),
        "trainer": trainer,
        "eval": {"every": max(timesteps // 10, 1000), "episodes": 5},
        "objective": {"metric": "eval/mean_return", "mode": "max", "reduce": "mean_last", "k": 2},
        "strategy": {"name": "tpe", "runs": runs, "pruner": "median"},
        "params": cls.default_space(trainer) or {},
    }
