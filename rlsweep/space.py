"""Search markers -> searched parameters; grid enumeration; run index -> (configuration, seed).

A marker is a one-key mapping (`{loguniform: [1e-5, 1e-2]}`, optionally with `step`) standing where
a plain value would stand, at any depth of the `trainer:` or `params:` sections.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlsweep.errors import ConfigError

CHOICE_MARKERS = ("choice", "grid", "opt_values")
RANGE_MARKERS = ("uniform", "loguniform", "int", "logint")
MARKERS = CHOICE_MARKERS + RANGE_MARKERS
_MARKER_OPTIONS = ("step",)
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class SearchParam:
    """One searched value: its dotted name and its possible values."""

    name: str  # "learning_rate", "policy_kwargs.net_arch", "trainer.n_envs"
    kind: str  # "choice" | "float" | "int"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def encoded(self) -> bool:
        """Optuna's categorical distribution holds only scalars; lists and dicts travel as JSON."""
        return self.kind == "choice" and not all(isinstance(c, _SCALARS) for c in self.choices)

    def distribution(self) -> Any:
        import optuna.distributions as d

        if self.kind == "choice":
            choices = [json.dumps(c) for c in self.choices] if self.encoded else list(self.choices)
            return d.CategoricalDistribution(choices)
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))  # type: ignore[arg-type]
        return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)  # type: ignore[arg-type]

    def encode(self, value: Any) -> Any:
        return json.dumps(value) if self.encoded else value

    def decode(self, value: Any) -> Any:
        return json.loads(value) if self.encoded else value

    def grid_size(self) -> int | None:
        """How many values the grid strategy visits (None: a continuous range), without listing them."""
        if self.kind == "choice":
            return len(self.choices)
        if self.kind == "int" and not self.log:
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1  # type: ignore[arg-type]
        if self.kind == "float" and self.step is not None and not self.log:
            return int(round((self.high - self.low) / self.step)) + 1  # type: ignore[operator]
        return None

    def grid_values(self) -> list[Any]:
        """Every value the grid strategy visits; ranges need a step (ints default to step 1)."""
        size = self.grid_size()
        if size is not None and size > MAX_GRID:
            fix = "a larger 'step'" if self.kind != "choice" else "fewer values"
            raise ConfigError(
                f"{self.describe()} gives {size} grid values, more than a grid can enumerate (limit {MAX_GRID}); "
                f"use {fix}, or a searching strategy such as random or tpe",
                key=f"params.{self.name}",
            )
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))  # type: ignore[arg-type]
        if self.kind == "float" and self.step is not None and not self.log:
            return [round(self.low + i * self.step, 12) for i in range(size or 0)]  # type: ignore[operator]
        fix = "use a linear range with 'step', or 'choice'" if self.log else "add 'step' or use 'choice'"
        raise ConfigError(
            f"the grid strategy needs a finite set of values, got the continuous range {self.describe()}; {fix}",
            key=f"params.{self.name}",
        )

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice {list(self.choices)}"
        scale = "log " if self.log else ""
        step = f" step {self.step}" if self.step else ""
        return f"{scale}{self.kind} [{self.low}, {self.high}]{step}"


@dataclass
class Space:
    """The searched parameters of a sweep and the templates they are filled into."""

    params: list[SearchParam]
    trainer: dict[str, Any]  # the `trainer:` section, markers in place
    hyperparams: dict[str, Any]  # the `params:` section, markers in place
    _by_name: dict[str, SearchParam] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {p.name: p for p in self.params}

    def __getitem__(self, name: str) -> SearchParam:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def distributions(self) -> dict[str, Any]:
        return {p.name: p.distribution() for p in self.params}

    def fill(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Put plain values where the markers stand: (trainer settings, hyperparameters)."""
        trainer = _fill(self.trainer, "trainer", values)
        hyper = _fill(self.hyperparams, "", values)
        return trainer, hyper

    def representative(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Settings filled with one possible value per marker, for up-front name checks."""
        values = {p.name: p.choices[0] if p.kind == "choice" else p.low for p in self.params}
        if any(p.kind == "int" for p in self.params):
            values.update({p.name: int(p.low) for p in self.params if p.kind == "int"})  # type: ignore[arg-type]
        return self.fill(values)

    def grid(self) -> list[dict[str, Any]]:
        """Every configuration in a fixed order: the last parameter varies fastest."""
        names = self.names
        product = itertools.product(*(self._by_name[n].grid_values() for n in names))
        return [dict(zip(names, combo, strict=True)) for combo in product]

    def hash(self) -> str:
        """Identifies the search space; a study refuses to continue with another one."""
        payload = [(p.name, p.kind, p.low, p.high, p.log, p.step, list(p.choices)) for p in self.params]
        return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def index_to_run(index: int, n_configurations: int) -> tuple[int, int]:
    """Grid run index -> (configuration index, seed number): i mod N, i div N."""
    if n_configurations <= 0:
        raise ValueError("a grid needs at least one configuration")
    return index % n_configurations, index // n_configurations


def config_id(values: Mapping[str, Any]) -> str:
    """A short, stable name for a configuration (same values -> same id, on any machine)."""
    canon = json.dumps({k: values[k] for k in sorted(values)}, sort_keys=True, default=str)
    return hashlib.sha1(canon.encode()).hexdigest()[:10]


def build_space(trainer: Mapping[str, Any], params: Mapping[str, Any], file: str | None = None) -> Space:
    """Find every marker in the two sections and check it; errors name the key path."""
    found: list[SearchParam] = []
    for section, prefix, tree in (("trainer", "trainer.", trainer), ("params", "", params)):
        for path, marker in _walk_markers(tree, (), file, section):
            key = f"{section}.{'.'.join(path)}"
            param = _parse_marker(prefix + ".".join(path), marker, file, key)
            if any(p.name == param.name for p in found):
                raise ConfigError(
                    f"two searched values share the name '{param.name}' (dotted keys and nesting collide); rename one",
                    file=file,
                    key=key,
                )
            found.append(param)
    return Space(found, copy.deepcopy(dict(trainer)), copy.deepcopy(dict(params)))


def is_marker(value: Any) -> bool:
    return isinstance(value, Mapping) and any(k in MARKERS for k in value)


def _walk_markers(tree: Any, path: tuple[str, ...], file: str | None, section: str) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    if is_marker(tree):
        yield path, tree
    elif isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _walk_markers(value, (*path, str(key)), file, section)
    elif isinstance(tree, list) and _contains_marker(tree):
        # Lists are plain values; a marker inside one would silently reach the trainer as a mapping.
        raise ConfigError(
            "a marker inside a list is not searched; search the whole list instead, "
            "e.g. {choice: [[64, 64], [256, 256]]}",
            file=file,
            key=f"{section}.{'.'.join(path)}",
        )


def _fill(tree: Any, prefix: str, values: Mapping[str, Any], path: tuple[str, ...] = ()) -> Any:
    if is_marker(tree):
        name = ".".join(((prefix,) if prefix else ()) + path)
        return copy.deepcopy(values[name])
    if isinstance(tree, Mapping):
        return {k: _fill(v, prefix, values, (*path, str(k))) for k, v in tree.items()}
    return copy.deepcopy(tree)


# Limits of what can be enumerated and stored: a grid lists its configurations; Optuna stores every
# parameter value as a double, which holds whole numbers exactly only up to 2**53.
MAX_GRID = 1_000_000
MAX_INT = 2**53


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_marker(name: str, marker: Mapping[str, Any], file: str | None, key: str) -> SearchParam:
    kinds = [k for k in marker if k in MARKERS]
    others = [k for k in marker if k not in MARKERS and k not in _MARKER_OPTIONS]
    if len(kinds) > 1:
        raise ConfigError(f"one marker per value, got {kinds}; keep one of them", file=file, key=key)
    if others:
        raise ConfigError(
            f"a '{kinds[0]}' marker takes only 'step' beside it, got {others}; move them out of the marker",
            file=file,
            key=key,
        )
    kind = kinds[0]
    arg = marker[kind]
    step = marker.get("step")
    if kind in CHOICE_MARKERS:
        if not isinstance(arg, list) or not arg:
            raise ConfigError(f"{kind} needs a non-empty list of values, got {arg!r}", file=file, key=key)
        if step is not None:
            raise ConfigError(f"{kind} takes no 'step'; list the values instead", file=file, key=key)
        for value in arg:
            if _contains_marker(value):
                raise ConfigError(f"{kind} values cannot contain markers (a marker inside a marker); list plain values", file=file, key=key)
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise ConfigError(f"{kind} values must be JSON values (finite numbers, strings, booleans, null, lists, mappings), got {value!r}", file=file, key=key) from None
        if len({json.dumps(v, sort_keys=True) for v in arg}) != len(arg):
            raise ConfigError(f"{kind} lists a value twice: {arg!r}; list each value once", file=file, key=key)
        if all(isinstance(v, _SCALARS) for v in arg):
            # Scalars go to Optuna as they are, and it finds a value by ==: 1, 1.0 and True would all be True.
            for i, value in enumerate(arg):
                same = next((earlier for earlier in arg[:i] if earlier == value), None)
                if same is not None:
                    raise ConfigError(
                        f"{kind} lists {same!r} and {value!r}, which compare equal and cannot be told apart; keep one of them",
                        file=file,
                        key=key,
                    )
        return SearchParam(name, "choice", choices=tuple(arg))
    if isinstance(arg, Mapping) and is_marker(arg):
        raise ConfigError(f"{kind} cannot hold another marker (a marker inside a marker); give [low, high]", file=file, key=key)
    if not (isinstance(arg, list) and len(arg) == 2 and all(_number(v) for v in arg)):
        raise ConfigError(f"{kind} needs [low, high] as two numbers, got {arg!r}", file=file, key=key)
    low, high = arg
    log = kind in ("loguniform", "logint")
    if not low < high:
        raise ConfigError(f"{kind} needs low < high, got {arg!r}", file=file, key=key)
    if not math.isfinite(float(high) - float(low)):
        raise ConfigError(
            f"{kind} range {arg!r} is too wide: high - low overflows a double; keep both within ±8.9e307",
            file=file,
            key=key,
        )
    if log and low <= 0:
        raise ConfigError(f"{kind} needs 0 < low < high (log scale), got {arg!r}", file=file, key=key)
    is_int = kind in ("int", "logint")
    if is_int and not all(float(v).is_integer() for v in arg):
        raise ConfigError(f"{kind} needs whole numbers, got {arg!r}; use uniform for real values", file=file, key=key)
    if is_int and not all(abs(v) <= MAX_INT for v in arg):
        raise ConfigError(
            f"{kind} values must lie within ±{MAX_INT} (2^53, the largest whole numbers the storage keeps exactly), got {arg!r}",
            file=file,
            key=key,
        )
    if step is not None:
        if log:
            raise ConfigError(f"{kind} cannot take a step (log scale); use {kind.removeprefix('log')} with a step", file=file, key=key)
        if not _number(step) or step <= 0:
            raise ConfigError(f"step must be a positive number, got {step!r}", file=file, key=key)
        if is_int and not float(step).is_integer():
            raise ConfigError(f"step of an int range must be a whole number, got {step!r}", file=file, key=key)
        ratio = (high - low) / step
        if abs(ratio - round(ratio)) > 1e-9 * max(1.0, abs(ratio)):
            raise ConfigError(f"step {step} does not divide the range [{low}, {high}]; choose a step that does", file=file, key=key)
    if is_int:
        return SearchParam(name, "int", int(low), int(high), log, int(step) if step is not None else None)
    return SearchParam(name, "float", float(low), float(high), log, float(step) if step is not None else None)


def _contains_marker(value: Any) -> bool:
    if is_marker(value):
        return True
    if isinstance(value, Mapping):
        return any(_contains_marker(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_marker(v) for v in value)
    return False
