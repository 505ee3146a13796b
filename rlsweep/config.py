"""Load and validate the sweep file. Every error names the file, the key path and the fix.

The models below are the reference for the sweep file: each field's description is reused by the
README and the error messages.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from rlsweep.errors import ConfigError, closest
from rlsweep.space import MAX_GRID, MAX_INT, Space, build_space
from rlsweep.strategies import STRATEGIES, check_strategy_keys, parse_settings
from rlsweep.strategies.settings import (
    PRUNERS,
    ListSettings,
    PopulationSettings,
    SamplerSettings,
    StrategySettings,
)

__all__ = ["PRUNERS", "STRATEGIES", "LoadedSweep", "StrategySettings", "Sweep", "load_sweep"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EvalSettings(_Model):
    every: int = Field(10_000, gt=0, description="evaluate every this many environment steps")
    episodes: int = Field(10, gt=0, description="episodes per evaluation")
    deterministic: bool = Field(True, description="act deterministically during evaluation")


class Objective(_Model):
    metric: str = Field("eval/mean_return", description="the reported metric the sweep optimises")
    mode: Literal["max", "min"] = Field("max", description="maximise or minimise the metric")
    reduce: Literal["last", "best", "mean_last"] = Field(
        "last", description="how a run's curve becomes one number: last, best, or mean of the last k evaluations"
    )
    k: int = Field(3, gt=0, description="evaluations averaged by reduce: mean_last")


class Gate(_Model):
    metric: str = Field(description="the reported metric the gate watches")
    after: int = Field(0, ge=0, description="the gate applies from this environment step on")
    min: float | None = Field(None, description="prune a run below this value")
    max: float | None = Field(None, description="prune a run above this value")
    success: SuccessGate | None = Field(None, description="end the run early as a success")

    @model_validator(mode="after")
    def _something_to_check(self) -> Gate:
        if self.min is None and self.max is None and self.success is None:
            raise ValueError("a gate needs min, max or success")
        return self


class SuccessGate(_Model):
    min: float | None = Field(None, description="succeed when the metric is at least this")
    max: float | None = Field(None, description="succeed when the metric is at most this")
    for_: int = Field(1, alias="for", gt=0, description="…for this many evaluations in a row")


class Checkpoints(_Model):
    every: int | None = Field(None, gt=0, description="save a checkpoint every this many steps (kept)")
    replay_buffer: bool = Field(
        False,
        description="save the replay buffer with each checkpoint and restore it when a run continues one "
        "(off-policy SB3 algorithms: a PBT member keeps its own or its donor's experience)",
    )


class Recording(_Model):
    trajectories: Literal["eval", "train", "both"] | None = Field(
        None,
        description="save each run's per-step observations, actions, rewards and episode ends to "
        "<artifacts>/<run>/trajectories.parquet: eval, train or both (default: off)",
    )
    every: int = Field(1, gt=0, description="keep one episode in this many (and one sampled update batch in this many)")
    batches: bool = Field(
        False, description="off-policy algorithms: also save the batches sampled for updates (batches.parquet)"
    )


class WorkerSettings(_Model):
    heartbeat: float = Field(5.0, gt=0, description="seconds between a worker's heartbeats")
    lost_after: float = Field(
        25.0, gt=0, description="a run whose worker is silent this long is lost (noticed within one more heartbeat)"
    )
    requeue: int = Field(1, ge=0, description="how often a lost run is queued again before it counts as failed")
    run_timeout: float | None = Field(
        None, gt=0, description="seconds a run may train before it is stopped and failed (default: no limit)"
    )
    idle_timeout: float | None = Field(
        None, gt=0, description="seconds a run may go without reporting before it is stopped and failed (default: no limit)"
    )


class Sweep(_Model):
    study: str = Field(description="the study's name; the storage keys everything by it")
    seed: int = Field(0, ge=0, description="seeds samplers; a run's seed is seed + its seed number")
    trainer: dict[str, Any] = Field(description="what trains a run: kind and its settings (markers allowed)")
    eval: EvalSettings = Field(default_factory=EvalSettings, description="evaluation schedule")
    objective: Objective = Field(default_factory=Objective, description="what is optimised")
    # The named strategy's own model (see rlsweep.strategies.settings); dumped with its own fields.
    strategy: SerializeAsAny[StrategySettings] = Field(default_factory=SamplerSettings, description="how runs are proposed")
    stop: list[Gate] = Field(default_factory=list, description="threshold gates")
    params: dict[str, Any] = Field(default_factory=dict, description="the algorithm's hyperparameters (markers allowed)")
    default_params: bool = Field(
        False, description="start from the trainer's default search space; keys in params override it key by key"
    )
    storage: str | None = Field(None, description="SQLAlchemy URL or journal file (default sqlite:///runs/<study>/study.db)")
    artifacts: str | None = Field(None, description="artifact root (default runs/<study>/artifacts)")
    checkpoint: Checkpoints = Field(default_factory=Checkpoints, description="periodic checkpoints")
    record: Recording = Field(default_factory=Recording, description="per-step data saved with each run")
    worker: WorkerSettings = Field(default_factory=WorkerSettings, description="heartbeats and lost runs")

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_model(cls, value: Any) -> Any:
        return parse_settings(value) if isinstance(value, Mapping) else value


Gate.model_rebuild()


MAX_SEED = 2**31 - 1  # seed + seed number stays below 2**32, NumPy's limit


class LoadedSweep:
    """A validated sweep and its search space."""

    def __init__(self, sweep: Sweep, space: Space, file: str) -> None:
        self.sweep = sweep
        self.space = space
        self.file = file

    def to_dict(self, *, secrets: bool = False) -> dict[str, Any]:
        """The sweep as plain data. The storage URL's password is masked (this is what is saved in
        the study and exported); `secrets=True` keeps it, for a copy used in this process only."""
        data = self.sweep.model_dump(mode="json", by_alias=True)
        if data.get("storage") and not secrets:
            from rlsweep.storage import redact

            data["storage"] = redact(data["storage"])
        return data


def read_file(path: str | Path) -> dict[str, Any]:
    file = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError("file not found; check the path", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=file) from None
    try:
        data = json.loads(text) if file.endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=file) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML{_yaml_where(exc)}: {_yaml_problem(exc)}", file=file) from None
    if not isinstance(data, dict):
        raise ConfigError("a sweep file must be a mapping with study, trainer, params …", file=file)
    return data


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or str(exc).splitlines()[0] or type(exc).__name__)


def _plain_json(value: Any, path: str, file: str) -> Any:
    """A copy made of JSON values only. The sweep is stored in the study as JSON and workers read it
    back from there, so a value JSON cannot hold (a YAML set or date, a Python object) would reach
    them changed; refuse it here, naming its key path."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                raise ConfigError(f"keys must be strings, got {key!r}; quote it", file=file, key=sub)
            out[key] = _plain_json(item, sub, file)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain_json(item, f"{path}[{i}]", file) for i, item in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ConfigError(
        f"{value!r} ({type(value).__name__}) is not a JSON value; use numbers, strings, booleans, null, lists and mappings",
        file=file,
        key=path or None,
    )


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], file: str) -> dict[str, Any]:
    """`--set strategy.runs=100`: dotted key, YAML value."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set needs KEY=VALUE, got '{item}'", file=file)
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set value {raw!r} is not valid YAML ({_yaml_problem(exc)}); close brackets or quote it", file=file, key=key
            ) from None
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                section = ".".join(parts[: i + 1])
                raise ConfigError(
                    f"--set cannot go inside '{section}': it holds the plain value {child!r}, not a section; set '{section}' itself",
                    file=file,
                    key=key,
                )
            node = child
        node[parts[-1]] = value
    return data


def load_sweep(
    source: str | Path | Mapping[str, Any], overrides: Sequence[str] = (), *, file: str | None = None, trainer_checks: bool = True
) -> LoadedSweep:
    """Read, override and validate a sweep; raise ConfigError naming file and key on any problem.
    `trainer_checks=False` leaves out the trainer's own checks (`Trainer.validate` and its kin), which
    import its libraries (SB3: torch, 2-3 s): for a sweep read back from its study, which passed them
    when the study was made."""
    if isinstance(source, Mapping):
        file = file or "<sweep>"
        data = _plain_json(source, "", file)
    else:
        file = str(source)
        data = _plain_json(read_file(source), "", file)
    data = apply_overrides(data, overrides, file)
    try:
        return _validate(_trainer_expands(data, file), file, trainer_checks)
    except ConfigError as exc:
        raise _blame_override(exc, overrides) from None


def _trainer_expands(data: dict[str, Any], file: str) -> dict[str, Any]:
    """The trainer's own rewrite of the raw sweep (Trainer.expand_sweep: the command trainer inlines
    the wrapped tool's config file); an unknown kind is left for validation to name."""
    from rlsweep.trainers import TRAINERS, get_trainer_class

    trainer = data.get("trainer")
    kind = trainer.get("kind") if isinstance(trainer, Mapping) else None
    if not isinstance(kind, str) or kind not in TRAINERS:
        return data
    return get_trainer_class(kind, file=file).expand_sweep(data, file)


def _blame_override(exc: ConfigError, overrides: Sequence[str]) -> ConfigError:
    """The error of a value an override set names that override, not the file it did not come from:
    `--set trainer.timesteps=-100: needs a positive ...`. The last override wins, as when applied."""
    if not exc.key:
        return exc
    for item in reversed(overrides):
        key = item.partition("=")[0]
        if exc.key == key or exc.key.startswith((f"{key}.", f"{key}[")):
            where = "" if exc.key == key else f"{exc.key}: "
            blamed = ConfigError(f"--set {item}: {where}{exc.message}")
            blamed.key = exc.key
            return blamed
    return exc


def _validate(data: dict[str, Any], file: str, trainer_checks: bool) -> LoadedSweep:
    _check_unknown_keys(data, Sweep, (), file)
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, file) from None
    _check_semantics(sweep, file)
    # A searching strategy with nothing to search gets the algorithm's default space; a grid (or
    # list) without params is a fixed configuration repeated over seeds and stays so.
    searching = sweep.strategy.name not in ("grid", "list")
    from rlsweep.trainers import get_trainer_class

    trainer_cls = get_trainer_class(str(sweep.trainer.get("kind")), file=file)
    if sweep.default_params or (searching and not sweep.params):
        try:
            defaults = trainer_cls.default_space(sweep.trainer)
        except ConfigError as exc:  # raised without the file: name it, keep the trainer's key
            message = str(exc).removeprefix(f"{exc.key}: ") if exc.key else str(exc)
            raise ConfigError(message, file=file, key=exc.key or "trainer") from None
        if defaults is not None:
            sweep.params = trainer_cls.merge_space(defaults, sweep.params)
    space = build_space(sweep.trainer, sweep.params, file)
    if sweep.strategy.name == "grid":
        for param in space.params:
            try:
                param.grid_values()
            except ConfigError as exc:
                raise ConfigError(str(exc).split(": ", 1)[1], file=file, key=_section_key(param.name)) from None
        sizes = [(p.name, p.grid_size() or 1) for p in space.params]
        total = math.prod(n for _, n in sizes)
        if total > MAX_GRID:
            parts = " x ".join(f"{n} ({name})" for name, n in sizes)
            raise ConfigError(
                f"the grid has {total} configurations ({parts}), more than a grid can enumerate (limit {MAX_GRID}); "
                "use fewer values or a searching strategy such as random or tpe",
                file=file,
                key="params",
            )
    trainer_settings, hyper = space.representative()
    for key in ("timesteps", "steps"):
        budget = trainer_settings.get(key)
        if isinstance(budget, int) and not isinstance(budget, bool) and budget > MAX_INT:
            raise ConfigError(
                f"at most {MAX_INT} (2^53) environment steps: steps are stored as 64-bit numbers and compared as "
                f"doubles, got {budget}",
                file=file,
                key=f"trainer.{key}",
            )
    if trainer_checks:
        trainer_cls.validate(trainer_settings, hyper, file)
        trainer_cls.validate_checkpoint(trainer_settings, sweep.checkpoint.model_dump(), file)
        trainer_cls.validate_record(trainer_settings, sweep.record.model_dump(), file)
    return LoadedSweep(sweep, space, file)


def _section_key(name: str) -> str:
    return name if name.startswith("trainer.") else f"params.{name}"


def _trainer_kinds() -> str:
    from rlsweep.trainers import TRAINERS

    *rest, last = TRAINERS
    return f"{', '.join(rest)} or {last}" if rest else last


def _check_semantics(sweep: Sweep, file: str) -> None:
    if not _NAME.match(sweep.study):
        raise ConfigError(
            f"'{sweep.study}' is not a usable study name; use letters, digits, '-', '_' and '.'", file=file, key="study"
        )
    if sweep.seed > MAX_SEED:
        raise ConfigError(
            f"{sweep.seed} is too large: a run's seed (this plus its seed number) must fit the 32-bit seeds NumPy "
            f"and Gymnasium take; use at most {MAX_SEED}",
            file=file,
            key="seed",
        )
    kind = sweep.trainer.get("kind")
    if not isinstance(kind, str):
        raise ConfigError(f"needs 'kind' ({_trainer_kinds()})", file=file, key="trainer.kind")
    name = sweep.strategy.name
    pruner = sweep.strategy.pruner
    if pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner '{pruner}'{closest(pruner, PRUNERS)}; known: {', '.join(PRUNERS)}", file=file, key="strategy.pruner")
    settings = sweep.strategy
    if isinstance(settings, PopulationSettings) and settings.interval is None:
        raise ConfigError(f"{name} needs interval: environment steps between exploit steps", file=file, key="strategy.interval")
    if isinstance(settings, ListSettings) and not settings.configs:
        raise ConfigError("the list strategy needs configs: a list of configurations", file=file, key="strategy.configs")
    for i, gate in enumerate(sweep.stop):
        if gate.min is not None and gate.max is not None and gate.min > gate.max:
            raise ConfigError(f"min {gate.min} is above max {gate.max}; no run could pass", file=file, key=f"stop[{i}]")


def _check_unknown_keys(data: Any, model: type[BaseModel], path: tuple[str, ...], file: str) -> None:
    """Unknown keys are errors with a suggestion (pydantic alone would not suggest)."""
    if not isinstance(data, Mapping):
        return
    known: dict[str, Any] = {}
    for fname, info in model.model_fields.items():
        known[info.alias or fname] = info
    for key, value in data.items():
        key_path = ".".join((*path, str(key)))
        if model is Sweep and key == "strategy" and isinstance(value, Mapping):
            check_strategy_keys(value, file)  # each strategy's own keys, not one flat bag
            continue
        if key not in known:
            hint = closest(str(key), known) or f"; known: {', '.join(known)}"
            raise ConfigError(f"unknown key '{key}'{hint}", file=file, key=key_path)
        annotation = known[key].annotation
        sub = _model_in(annotation)
        if sub is not None:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    _check_unknown_keys(item, sub, (*path, f"{key}[{i}]"), file)
            else:
                _check_unknown_keys(value, sub, (*path, str(key)), file)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _config_error(exc: ValidationError, file: str) -> ConfigError:
    err = exc.errors()[0]
    parts: list[str] = []
    for item in err["loc"]:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    key = ".".join(parts) or None
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        description = _description(Sweep, [str(item) for item in err["loc"] if not isinstance(item, int)])
        message = f"is required ({description})" if description else "is required"
    elif "input" in err and err["type"] not in ("value_error",):
        message = f"{message}, got {err['input']!r}"
    return ConfigError(message, file=file, key=key)


def _description(model: type[BaseModel], names: list[str]) -> str | None:
    """The help text of the field at `names` (the same text the README shows)."""
    for i, name in enumerate(names):
        fields = {info.alias or fname: info for fname, info in model.model_fields.items()}
        info = fields.get(name)
        if info is None:
            return None
        if i == len(names) - 1:
            return info.description
        sub = _model_in(info.annotation)
        if sub is None:
            return None
        model = sub
    return None
