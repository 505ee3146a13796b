"""The function trainer: `trainer: {kind: function, target: "module:function"}` calls the function with
the run context. It is how a user plugs in a training script written as one Python function.

With `batch: N` (N > 1) the function trains several runs at once: a worker claims up to N runs and
calls it with the list of their contexts (see `Trainer.train_batch` for the duties that brings, and
rlsweep/examples/batch_synthetic.py for an example)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from rlsweep.errors import ConfigError
from rlsweep.trainers._base import RunContext, Trainer


def resolve_target(target: Any, file: str | None = None) -> Callable[[RunContext], None]:
    if not isinstance(target, str) or ":" not in target:
        raise ConfigError(f"target must be 'module:function', got {target!r}", file=file, key="trainer.target")
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module '{module_name}' ({exc}); check the name and PYTHONPATH", file=file, key="trainer.target") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        from rlsweep.errors import closest

        names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise ConfigError(f"'{module_name}' has no function '{func_name}'{closest(func_name, names)}", file=file, key="trainer.target")
    return func  # type: ignore[no-any-return]


class FunctionTrainer(Trainer):
    """Calls `target(run)`; the function reports, records and checkpoints as it likes (so none of the
    optional duties is declared: a PBT function records its `checkpoint` itself, see examples/toy_pbt)."""

    @classmethod
    def warm_modules(cls, settings: Mapping[str, Any]) -> list[str]:
        target = settings.get("target")
        modules = [cls.__module__]
        if isinstance(target, str) and ":" in target:
            modules.append(target.partition(":")[0])
        return modules

    @classmethod
    def validate(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
        target = settings.get("target")
        # A function decorated with @rlsweep.trainer in a script or notebook lives in that process's
        # __main__: its forked workers find it, while another process reading the study (`rlsweep
        # top`, a notebook) needs only the stored results.
        if not (isinstance(target, str) and target.startswith("__main__:")):
            resolve_target(target, file)
        batch = settings.get("batch", 1)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(
                f"must be a whole number >= 1 (how many runs the function trains at once), got {batch!r}", file=file, key="trainer.batch"
            )
        budget = settings.get("timesteps", settings.get("steps"))
        if not isinstance(budget, int) or budget <= 0:
            raise ConfigError(f"needs a positive whole number of steps, got {budget!r}", file=file, key="trainer.timesteps")

    @classmethod
    def batch_size_for(cls, settings: Mapping[str, Any]) -> int:
        return int(settings.get("batch", 1))

    def train(self, run: RunContext) -> None:
        resolve_target(self.settings["target"])(run)

    def train_batch(self, runs: list[RunContext]) -> None:
        if self.batch_size_for(self.settings) > 1:
            resolve_target(self.settings["target"])(runs)  # type: ignore[arg-type]  # a batch function takes the list
        else:
            super().train_batch(runs)
