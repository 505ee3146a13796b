"""The command trainer: any training program as a trainer, through its command line.

`trainer: {kind: command, command: [...], metrics: {tensorboard: ...}, ...}` starts the program once
per run with the run's values in its argv (and in its own config file, rendered per run), reads its
metrics while it runs and stops it when a pruner or gate says so. See settings.py for the keys,
template.py for the placeholders, layout.py for config templates, process.py for a run's life.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError
from rlsweep.trainers._base import RunContext, Trainer

__all__ = ["CommandTrainer"]


class CommandTrainer(Trainer):
    """Runs one program per run; the program writes its own metrics, rlsweep reads them."""

    @classmethod
    def expand_sweep(cls, data: dict[str, Any], file: str) -> dict[str, Any]:
        from rlsweep.trainers.command.layout import expand_sweep

        return expand_sweep(data, file)

    @classmethod
    def validate(cls, settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
        from rlsweep.trainers.command.settings import validate

        parsed = validate(settings, hyperparams, file)
        program = parsed.command[0]
        assert isinstance(program, str)  # the settings model refuses a group first
        if program.strip() == "{python}":
            if parsed.python is None:
                return  # the Python running rlsweep
            program, key = parsed.python, "trainer.python"
        else:
            key = "trainer.command[0]"
        if "{" in program:
            return  # built from run values: checked when the run starts
        base = Path(parsed.cwd) if parsed.cwd else Path.cwd()
        found = shutil.which(program) if os.sep not in program else None
        path = base / program
        if found is None and not (os.sep in program and path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(
                f"cannot run {program!r}: not an executable file{' on PATH' if os.sep not in program else ''}; "
                "check the name (or give its full path)",
                file=file,
                key=key,
            )

    @classmethod
    def warm_modules(cls, settings: Mapping[str, Any]) -> list[str]:
        return [cls.__module__, "rlsweep.trainers.command.process"]

    def train(self, run: RunContext) -> None:
        from rlsweep.trainers.command.process import train
        from rlsweep.trainers.command.settings import parse

        train(run, parse(run.config, None))
