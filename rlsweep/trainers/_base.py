"""The trainer contract: `train(run)` trains one run and reports through `run.report`.

A trainer never touches the storage; the worker hands it a RunContext and acts on the decisions.
"""

from __future__ import annotations

import copy
import enum
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError


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
    replay_buffer: bool = False  # save and restore the replay buffer with checkpoints (off-policy)
    eval_deterministic: bool = True  # act deterministically in evaluations
    record_trajectories: str | None = None  # "eval", "train" or "both": save per-step data (sweep's record:)
    record_every: int = 1  # keep one episode (and one sampled update batch) in this many
    record_batches: bool = False  # off-policy: also save the batches sampled for updates
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
    """Trains runs. Subclasses need only `train`; everything else is an optional hook whose default
    does nothing (or says the trainer cannot), so the worker, the config loader, render and mature
    never need to know which trainer they drive. tests/trainers/test_contract.py checks every hook."""

    #: How many runs one process trains at once (the batched JAX trainer says > 1). A trainer whose
    #: batch size comes from its settings overrides `batch_size_for` instead.
    batch_size: int = 1

    #: True when `train` writes its reported metrics as TensorBoard event files under
    #: `run.artifact_dir / "tb"` itself; otherwise the worker writes them from the reports.
    writes_tensorboard: bool = False

    #: True when every run records a `checkpoint` (or `model`) run attribute through `run.record`:
    #: the path of a complete saved file that a later run continues from when handed it as
    #: `run.start_checkpoint` (with `run.start_step`). PBT and PB2 need it: their next generation
    #: starts from the member's own or a donor's recorded checkpoint.
    records_checkpoints: bool = False

    #: True when `load_policy` and `make_env` work: saved policies can be evaluated (`rlsweep mature`)
    #: and rendered (`rlsweep render`).
    can_load_policy: bool = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)

    @classmethod
    def kind(cls) -> str:
        """The trainer's name in sweep files (`trainer.kind`), from the registry."""
        from rlsweep.trainers import kind_of

        return kind_of(cls)

    @classmethod
    def validate(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
        """Raise ConfigError for settings this trainer cannot run, before any run starts.

        `settings` (the trainer section) and `hyperparams` (the params section) come with every
        search marker replaced by one of its possible values, so names and types can be checked.
        """

    @classmethod
    def expand_sweep(cls, data: dict[str, Any], file: str) -> dict[str, Any]:
        """The raw sweep (plain data, before validation) as this trainer wants it stored: a trainer
        whose settings name another file inlines it here, so its markers are searched and workers on
        other hosts need no file. Loading the result again must change nothing. Default: unchanged."""
        return data

    @classmethod
    def validate_checkpoint(cls, settings: Mapping[str, Any], checkpoint: Mapping[str, Any], file: str) -> None:
        """Raise ConfigError (key checkpoint.*) for checkpoint settings this trainer cannot honour with
        these trainer settings; `checkpoint` is the sweep's checkpoint section with its defaults."""

    @classmethod
    def validate_record(cls, settings: Mapping[str, Any], record: Mapping[str, Any], file: str) -> None:
        """Raise ConfigError (key record.*) for per-step recording this trainer cannot do; `record` is
        the sweep's record section with its defaults. By default a trainer records nothing."""
        for key in ("trajectories", "batches"):
            if record.get(key):
                raise ConfigError(
                    f"the '{cls.kind()}' trainer does not record per-step data; remove record.{key}",
                    file=file,
                    key=f"record.{key}",
                )

    @classmethod
    def default_space(cls, settings: Mapping[str, Any]) -> dict[str, Any] | None:
        """The searched `params:` used when a searching sweep has none, or says `default_params: true`
        (then its own params override these key by key); None when the trainer has no default.
        `settings` is the sweep's trainer section (markers not yet filled in). A fresh copy: the
        caller may change it. Raise ConfigError (key trainer.*) when the settings name no default."""
        return None

    @classmethod
    def merge_space(cls, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        """`overrides` (the sweep's params) on top of `defaults` (from default_space), key by key."""
        return {**copy.deepcopy(dict(defaults)), **copy.deepcopy(dict(overrides))}

    @classmethod
    def warm_modules(cls, settings: Mapping[str, Any]) -> list[str]:
        """Modules a standby worker imports before it is handed a run, so the run does not pay for
        them; `settings` is the trainer section. Each name must be importable where the worker runs."""
        return [cls.__module__]

    @classmethod
    def quickstart(cls, algo: str, env: str, timesteps: int) -> dict[str, Any]:
        """The `trainer:` section for `rlsweep run --algo ALGO --env ENV` (and Sweep.quickstart)."""
        raise ConfigError(f"trainer kind '{cls.kind()}' has no quick start; write a sweep file")

    @classmethod
    def load_policy(cls, settings: Mapping[str, Any], path: str | Path) -> Callable[[Any], Any]:
        """A saved policy (`path`, as recorded in the run's `model` attribute) as a deterministic
        `batch of observations -> batch of actions` callable, optionally with a `reset()` called at
        each episode start. Only when `can_load_policy`."""
        raise ConfigError(cls._no_policies())

    @classmethod
    def make_env(cls, settings: Mapping[str, Any], seed: int, render_mode: str | None = None) -> Any:
        """One Gymnasium environment built as the runs were trained on (wrappers included), seeded
        with `seed`, for evaluating and rendering a loaded policy. Only when `can_load_policy`."""
        raise ConfigError(cls._no_policies())

    @classmethod
    def _no_policies(cls) -> str:
        return f"the '{cls.kind()}' trainer saves no policy that rlsweep can load, evaluate or render"

    @classmethod
    def updates_per_step(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> float | None:
        """Gradient updates per environment step of a configuration (`settings`: the trainer section,
        `hyperparams`: the params, both filled in), where that sets its cost per step: the time left
        then weighs each run by it (a run with 8 minibatches per rollout costs more than one with 2).
        None: not known (every configuration is taken to cost the same per step)."""
        return None

    @classmethod
    def batch_size_for(cls, settings: Mapping[str, Any]) -> int:
        """How many runs one worker claims at once and hands to `train_batch` (1: one `train` per
        run). `settings` is the sweep's trainer section."""
        return cls.batch_size

    @classmethod
    def batch_group(cls, config: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> Any:
        """Claimed runs whose groups are equal are trained together in one `train_batch` call (one
        trainer built from the first run's config); a trainer that compiles one program per array
        shape returns the shape-changing settings here. Default: every run of a sweep fits together."""
        return None

    def budget(self) -> int:
        """Environment steps a run trains for, from the trainer's settings."""
        return int(self.settings.get("timesteps", self.settings.get("steps", 0)))

    @abstractmethod
    def train(self, run: RunContext) -> None:
        """Train one run, calling run.report(step, metrics) at each evaluation; stop when told."""

    def train_batch(self, runs: list[RunContext]) -> None:
        """Train several runs at once (called when `batch_size_for` > 1; every run has the same
        `batch_group`). Each run reports through its own `run.report` and gets its own Decision: a run
        told to stop must stop alone (masked out) while the others go on; reports after that are
        ignored. A diverged run (a non-finite metric) is told PRUNE and settled as failed. An exception
        fails only the runs not yet stopped. The default trains them one after another."""
        for run in runs:
            self.train(run)
