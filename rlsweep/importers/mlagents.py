"""`rlsweep import ml-agents trainer_config.yaml --command "mlagents-learn {config_file} --run-id={run_id} ..."`:
the trainer config becomes the command trainer's inline config (markers under default_settings
given to each behavior, opt_stop turned into gates: the same expansion `config_template` gets), run
as a grid whose order is the config's (behaviors in file order, the last marker varying fastest)."""

from __future__ import annotations

import shlex
from typing import Any

from rlsweep.errors import ConfigError
from rlsweep.trainers.command.layout import expand_sweep, read_template

DEFAULT_COMMAND = "mlagents-learn {config_file} --run-id={run_id} --force"
REWARD_TAG = "Environment/Cumulative Reward"


def import_mlagents(path: str, *, command: str | None, study: str, timesteps: int | None, results: str = "results") -> dict[str, Any]:
    config, fmt = read_template(path, "<command line>")
    argv = shlex.split(command or DEFAULT_COMMAND)
    if "{config_file}" not in " ".join(argv):
        raise ConfigError(f"--command must hand the config over with {{config_file}}, got {command!r}", key="--command")
    steps = timesteps or _max_steps(config)
    if steps is None:
        raise ConfigError(f"{path}: no max_steps in default_settings or a behavior; give --timesteps", key="--timesteps")
    summary = _first(config, "summary_freq") or 50000
    data: dict[str, Any] = {
        "study": study,
        "trainer": {
            "kind": "command",
            "command": argv,
            "config": config,
            "config_format": fmt,
            "metrics": {"tensorboard": f"{results}/{{run_id}}", "tags": {REWARD_TAG: "eval/mean_return"}},
            "steps_from": "tensorboard",
            "stop_signal": "SIGINT",
            "grace": 60,
            "timesteps": steps,
        },
        "eval": {"every": int(summary)},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "grid"},
    }
    return expand_sweep(data, path)


def _behaviors(config: dict[str, Any]) -> list[dict[str, Any]]:
    found = [config.get("default_settings")] + list((config.get("behaviors") or {}).values())
    return [b for b in found if isinstance(b, dict)]


def _max_steps(config: dict[str, Any]) -> int | None:
    steps = [b["max_steps"] for b in _behaviors(config) if isinstance(b.get("max_steps"), int)]
    return max(steps) if steps else None


def _first(config: dict[str, Any], key: str) -> Any:
    return next((b[key] for b in _behaviors(config) if isinstance(b.get(key), int)), None)
