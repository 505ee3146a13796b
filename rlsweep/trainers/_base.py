"""The trainer contract: `train(run)` trains one run and reports through `run.report`.

A trainer never touches the storage; the worker hands it a RunContext and acts on the decisions.
"""

from __future__ import annotations

import enum
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Decision(enum.Enum):
    """What the worker tells a trainer after a report."""

    CONTINUE = "continue"
    PRUNE = "prune"  # the strategy or a gate judged the run hopeless: stop now
    STOP = "stop"  # stop now, but as a success (a success gate, or the run's budget was reached)

    @property
    def should_stop(self) -> bool:
        return self is not Decision.CONTINUE


ReportFn = Callable[[int, Mapping[str, float]], Decision]


@dataclass
class RunContext:
    """Everything a trainer needs for one run (one configuration, one seed)."""

    study: str
    number: int  # the Optuna trial number
    config: dict[str, Any]  # the `trainer:` section with every searched value filled in (nested)
    hyperparams: dict[str, Any]  # the `params:` section filled in: the algorithm's hyperparameters
    params: dict[str, Any]  # the searched values only, by dotted name ("gamma", "trainer.n_envs")
    seed: int
    budget: int  # environment steps this run trains for (for PBT: one ready interval)
    eval_every: int  # evaluate every this many environment steps
    eval_episodes: int
    objective: str  # the metric the sweep optimises, e.g. "eval/mean_return"
    artifact_dir: Path  # files of this run: models, checkpoints, event files
    report: ReportFn  # report(step, metrics) -> Decision
    start_checkpoint: Path | None = None  # continue from this checkpoint (PBT exploit / next generation)
    start_step: int = 0  # environment steps already trained by the checkpoint's lineage
    checkpoint_every: int | None = None  # save a checkpoint every this many steps (kept)
    eval_deterministic: bool = True  # act deterministically in evaluations
    extra: dict[str, Any] = field(default_factory=dict)  # member, generation, donor … (PBT)
    record: Callable[[str, Any], None] = lambda key, value: None  # store a run attribute (paths, info)

    @property
    def checkpoint_dir(self) -> Path:
        path = self.artifact_dir / "checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        return path


def atomic_path(path: Path) -> Path:
    """A temporary name beside `path`; write there, then `os.replace(tmp, path)` (see commit_file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def commit_file(tmp: Path, path: Path) -> Path:
    """Publish a finished file under its final name in one rename, so readers never see half a file."""
    os.replace(tmp, path)
    return path


class Trainer(ABC):
    """Trains runs. Subclasses need only `train`; the rest are hooks with defaults."""

    #: How many runs one process trains at once (the batched JAX trainer says > 1).
    batch_size: int = 1

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)

    @classmethod
    def validate(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
        """Raise ConfigError for settings this trainer cannot run, before any run starts.

        `settings` (the trainer section) and `hyperparams` (the params section) come with every
        search marker replaced by one of its possible values, so names and types can be checked.
        """

    def budget(self) -> int:
        """Environment steps a run trains for, from the trainer's settings."""
        return int(self.settings.get("timesteps", self.settings.get("steps", 0)))

    @abstractmethod
    def train(self, run: RunContext) -> None:
        """Train one run, calling run.report(step, metrics) at each evaluation; stop when told."""

    def train_batch(self, runs: list[RunContext]) -> None:
        """Train several runs; the default trains them one after another."""
        for run in runs:
            self.train(run)
