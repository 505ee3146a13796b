"""The command trainer's settings (`trainer: {kind: command, ...}`), checked before any run starts:
each field's type and help text, the stop signal, and every placeholder of the command and the
config against the values a run will have. Errors name the file and the key path.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rlsweep.errors import ConfigError, closest
from rlsweep.trainers.command import template

SOURCES = ("tensorboard", "csv", "jsonl", "regex")
NATIVE_STEP = ("step", *SOURCES)  # steps_from values meaning "the source's own step"
MAX_POLL = 2.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricsSettings(_Model):
    tensorboard: str | None = Field(None, description="folder of the program's TensorBoard event files (searched recursively)")
    csv: str | None = Field(None, description="a CSV file with a header row, one row per step")
    jsonl: str | None = Field(None, description="a JSON-lines file, one object per step")
    regex: str | None = Field(None, description="a regular expression on each line of stdout; named groups are metrics")
    tags: dict[str, str] = Field(
        default_factory=dict, description="source name -> rlsweep metric name; when given, only these are reported"
    )


class CommandSettings(_Model):
    kind: Literal["command"] = "command"
    command: list[str | list[str]] = Field(description="argv items with placeholders; a list inside is an optional group")
    config: dict[str, Any] | None = Field(None, description="the wrapped tool's config, rendered per run to {config_file}")
    config_format: Literal["yaml", "json"] = Field("yaml", description="how {config_file} is written")
    metrics: MetricsSettings = Field(description="where the program's metrics are read while it runs")
    steps_from: str = Field("step", description="the step of a report: the source's own step, or a tag/column/group giving it")
    timesteps: int = Field(gt=0, description="environment steps per run (pruners, the {budget} placeholder)")
    stop_signal: str = Field("SIGTERM", description="sent to the program's process group to stop a pruned run")
    grace: float = Field(30.0, ge=0, description="seconds after stop_signal before SIGTERM, and after SIGTERM before SIGKILL")
    python: str | None = Field(None, description="the interpreter {python} names (another environment's); default: rlsweep's own")
    timeout_idle: float | None = Field(None, gt=0, description="stop and fail a program silent (no output, no metric) this long")
    cwd: str | None = Field(None, description="the program's working folder (default: where rlsweep runs); relative metric paths start here")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the program")
    poll: float = Field(1.0, gt=0, le=MAX_POLL, description="seconds between reads of the metrics")

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: list[Any]) -> list[Any]:
        if not value or isinstance(value[0], list):
            raise ValueError("needs the program first, e.g. [python, train.py, --seed={seed}]")
        return value


def parse(settings: Mapping[str, Any], file: str | None) -> CommandSettings:
    """The typed settings; an unknown key or a bad value is a ConfigError naming trainer.<key>."""
    known = {**CommandSettings.model_fields}
    for key in settings:
        if key not in known:
            raise ConfigError(
                f"unknown key '{key}'{closest(str(key), known) or '; known: ' + ', '.join(known)} for the command trainer",
                file=file,
                key=f"trainer.{key}",
            )
    metrics = settings.get("metrics")
    if isinstance(metrics, Mapping):
        for key in metrics:
            if key not in MetricsSettings.model_fields:
                hint = closest(str(key), MetricsSettings.model_fields) or f"; known: {', '.join(MetricsSettings.model_fields)}"
                raise ConfigError(f"unknown key '{key}'{hint}", file=file, key=f"trainer.metrics.{key}")
    try:
        return CommandSettings.model_validate(dict(settings))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = "trainer" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"] if p not in ("str", "list[str]"))
        if err["type"] == "missing":
            field = str(err["loc"][0])
            sub = CommandSettings.model_fields.get(field)
            description = sub.description if sub is not None else None
            raise ConfigError(f"is required ({description})", file=file, key=key) from None
        message = err["msg"].removeprefix("Value error, ")
        got = f", got {err['input']!r}" if err["type"] != "value_error" else ""
        raise ConfigError(f"{message}{got}", file=file, key=key) from None


def stop_signal(name: str, file: str | None = None) -> signal.Signals:
    """SIGINT, INT or a signal number -> the signal; anything else is a ConfigError."""
    text = str(name).upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text))
        except ValueError:
            pass
    else:
        full = text if text.startswith("SIG") else f"SIG{text}"
        if full in signal.Signals.__members__:
            return signal.Signals[full]
    names = [s.name for s in signal.Signals]
    raise ConfigError(
        f"unknown signal {name!r}{closest(text, names)}; use a name such as SIGINT or SIGTERM",
        file=file,
        key="trainer.stop_signal",
    )


def validate(settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> CommandSettings:
    """Everything a run needs, checked with one possible value per searched parameter."""
    parsed = parse(settings, file)
    stop_signal(parsed.stop_signal, file)
    sources = [name for name in SOURCES if getattr(parsed.metrics, name) is not None]
    if len(sources) != 1:
        got = f"got {', '.join(sources)}" if sources else "got none"
        raise ConfigError(
            f"needs exactly one source of metrics: tensorboard, csv, jsonl or regex ({got})", file=file, key="trainer.metrics"
        )
    if parsed.metrics.regex is not None:
        try:
            pattern = re.compile(parsed.metrics.regex)
        except re.error as exc:
            raise ConfigError(f"not a valid regular expression: {exc}", file=file, key="trainer.metrics.regex") from None
        if not pattern.groupindex:
            raise ConfigError(
                "needs named groups, e.g. 'step=(?P<step>\\d+) return=(?P<return>\\S+)'", file=file, key="trainer.metrics.regex"
            )
    known = names_for(settings, hyperparams)
    used: list[str] = []
    strings = list(template.command_items(parsed.command))
    strings += [(key, text, False) for key, text in template.tree_strings(parsed.config or {}, "trainer.config")]
    for name in SOURCES:
        value = getattr(parsed.metrics, name)
        if value is not None and name != "regex":
            strings.append((f"trainer.metrics.{name}", value, False))
    for key, text, group in strings:
        for name in template.fields(text, key, file):
            if name not in known:
                raise template.unknown(name, sorted(known), file, key)
            if name in template.OPTIONAL and not group:
                raise ConfigError(
                    f"{{{name}}} has no value for a fresh run; put it in an optional group, e.g. [\"--load\", \"{{{name}}}\"]",
                    file=file,
                    key=key,
                )
            if name == "config_file" and parsed.config is None:
                raise ConfigError(
                    "{config_file} needs the tool's config: add trainer.config_template (a file) or trainer.config", file=file, key=key
                )
            used.append(name)
    if parsed.config is not None and "config_file" not in used:
        raise ConfigError(
            "the tool's config is rendered but never handed over: put {config_file} in trainer.command", file=file, key="trainer.command"
        )
    for name in template.flatten(hyperparams):
        if not any(u == name or u.startswith(name + ".") or name.startswith(u + ".") for u in used):
            raise ConfigError(
                f"reaches the program nowhere: put {{{name}}} in trainer.command (or in the config)", file=file, key=f"params.{name}"
            )
    return parsed


def names_for(settings: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> set[str]:
    """Every placeholder a run can fill: the run values, params by dotted name, trainer.* values."""
    return {
        *template.RUN_PLACEHOLDERS,
        *template.flatten(hyperparams),
        *(f"trainer.{name}" for name in template.flatten(settings)),
    }
