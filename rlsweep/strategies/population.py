"""Population-based training building blocks: explore, exploit selection, and generation bookkeeping.

Everything here is a pure function over plain values with an explicit `numpy.random.Generator`, so
the storage-coordinated PBT/PB2 strategy can be tested by hand-made score dicts and arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Mode = Literal["max", "min"]


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter as population strategies see it."""

    name: str
    kind: Literal["float", "int", "choice"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    mutable: bool = True  # False: fixed per member for its whole life (e.g. network size, n_envs)

    @classmethod
    def of(cls, param: Any, *, mutable: bool = True) -> Param:
        """Convert anything shaped like `rlsweep.space.SearchParam` (same attribute names)."""
        return cls(
            name=param.name,
            kind=param.kind,
            low=param.low,
            high=param.high,
            log=bool(param.log),
            step=param.step,
            choices=tuple(param.choices or ()),
            mutable=mutable,
        )

    def to_unit(self, value: float) -> float:
        """Map a float/int value into [0, 1] (log scale for log parameters)."""
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (float(value) - lo) / (hi - lo)

    def from_unit(self, u: float) -> Any:
        """Inverse of `to_unit`, then clipped, snapped to the step grid and typed."""
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        u = min(max(float(u), 0.0), 1.0)
        value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if self.log else lo + u * (hi - lo)
        return self.snap(value)

    def snap(self, value: float) -> Any:
        """Clip to [low, high], put on the step grid, and give ints their type."""
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        value = min(max(float(value), lo), hi)
        if self.step:
            value = lo + round((value - lo) / self.step) * self.step
            value = min(max(value, lo), hi)
        if self.kind == "int":
            return int(round(value))
        return float(value)

    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn uniformly from the space (log-uniformly for log parameters)."""
        if self.kind == "choice":
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.kind == "int" and not self.log:
            # Uniform over the integer grid itself, so both end points are as likely as inner values.
            step = int(self.step or 1)
            n = (int(self.high) - int(self.low)) // step  # type: ignore[arg-type]
            return int(self.low) + step * int(rng.integers(n + 1))  # type: ignore[arg-type]
        return self.from_unit(float(rng.random()))


@dataclass(frozen=True)
class Exploit:
    """Decision: member `target` continues from `donor`'s checkpoint and configuration."""

    target: str
    donor: str


def format_value(value: Any) -> str:
    """Readable in a change log: floats with 4 significant digits, everything else as str."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def describe_change(name: str, old: Any, new: Any, note: str | None = None) -> str:
    """`name: old -> new (note)`, the format of every change log line that is not a perturbation."""
    suffix = f" ({note})" if note else ""
    return f"{name}: {format_value(old)} -> {format_value(new)}{suffix}"


def explore(
    config: Mapping[str, Any],
    space: Sequence[Param],
    rng: np.random.Generator,
    *,
    factors: Sequence[float] = (0.8, 1.2),
    resample_probability: float = 0.25,
) -> tuple[dict[str, Any], list[str]]:
    """Perturb or resample every mutable parameter of `config`; return (new config, change log).

    Floats are multiplied by a factor drawn from `factors` and clipped to the bounds; ints likewise,
    rounded to their step, and moved by one step in the factor's direction when rounding would undo
    the change (small ints would otherwise never move); choices move to a neighbouring index. With
    `resample_probability` a parameter is drawn afresh from the space instead. Keys of `config` not in
    `space` and immutable parameters are copied unchanged. The log has one line per changed parameter.
    """
    if not 0.0 <= resample_probability <= 1.0:
        raise ValueError(f"resample_probability must be in [0, 1], got {resample_probability}")
    if not factors:
        raise ValueError("factors must name at least one factor, e.g. (0.8, 1.2)")
    new = dict(config)
    log: list[str] = []
    for param in space:
        if not param.mutable:
            continue
        if param.name not in config:
            raise ValueError(f"config has no value for '{param.name}'; explore needs every searched value")
        old = config[param.name]
        if float(rng.random()) < resample_probability:
            value = param.sample(rng)
            line = describe_change(param.name, old, value, "resampled")
        elif param.kind == "choice":
            value, line = _neighbour(param, old, rng)
        else:
            factor = float(factors[int(rng.integers(len(factors)))])
            value = _perturb(param, old, factor)
            line = f"{param.name}: {format_value(old)} * {format_value(factor)} -> {format_value(value)}"
        if _same(value, old):
            continue  # e.g. already at a bound: no change, no log line
        new[param.name] = value
        log.append(line)
    return new, log


def _perturb(param: Param, old: Any, factor: float) -> Any:
    value = param.snap(float(old) * factor)
    if param.kind == "int" and value == int(old) and factor != 1.0:
        # 2 * 1.2 rounds back to 2: take one step in the direction the factor points.
        step = int(param.step or 1)
        value = param.snap(int(old) + (step if factor > 1.0 else -step))
    return value


def _neighbour(param: Param, old: Any, rng: np.random.Generator) -> tuple[Any, str]:
    choices = list(param.choices)
    if old not in choices:
        raise ValueError(f"'{param.name}' = {old!r} is not one of its choices {choices}")
    if len(choices) == 1:
        return old, ""
    index = choices.index(old)
    move = -1 if rng.random() < 0.5 else 1
    if not 0 <= index + move < len(choices):
        move = -move  # at an end of the list the only neighbour is inward
    value = choices[index + move]
    return value, describe_change(param.name, old, value, "neighbour")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _check_mode(mode: str) -> None:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")


def rank(scores: Mapping[str, float], mode: Mode = "max") -> list[str]:
    """Member ids best first. NaN counts as worst; ties are broken by id so the order is reproducible."""
    _check_mode(mode)
    sign = -1.0 if mode == "max" else 1.0

    def key(member: str) -> tuple[int, float, str]:
        value = float(scores[member])
        if math.isnan(value):
            return (1, 0.0, member)
        return (0, sign * value, member)

    return sorted(scores, key=key)


def _better(a: float, b: float, mode: Mode) -> bool:
    """Whether score a is strictly better than b, with NaN worse than everything."""
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if mode == "max" else a < b


def _quantiles(scores: Mapping[str, float], fraction: float, mode: Mode) -> tuple[list[str], list[str]]:
    """(bottom, top) members: ceil(fraction * n) each, never overlapping, none with one member."""
    if not 0.0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    order = rank(scores, mode)
    n = len(order)
    # ceil so that small populations still exploit; n // 2 keeps bottom and top apart.
    k = min(math.ceil(fraction * n), n // 2)
    if k == 0:
        return [], []
    return order[n - k :][::-1], order[:k]


def truncation(
    scores: Mapping[str, float],
    rng: np.random.Generator,
    *,
    fraction: float = 0.25,
    mode: Mode = "max",
) -> list[Exploit]:
    """Truncation selection: each member of the bottom fraction copies one sampled from the top fraction.

    Both fractions hold ceil(fraction * n) members (at most n // 2; none when n < 2). A bottom member
    only copies a donor strictly better than itself, so a population of equal scores exploits nothing.
    Exploits are listed worst target first.
    """
    bottom, top = _quantiles(scores, fraction, mode)
    decisions = []
    for target in bottom:
        donor = _sample_donor(target, scores, top, rng, mode)
        if donor is not None:
            decisions.append(Exploit(target, donor))
    return decisions


def _sample_donor(
    target: str, scores: Mapping[str, float], top: Sequence[str], rng: np.random.Generator, mode: Mode
) -> str | None:
    donors = [m for m in top if m != target and _better(float(scores[m]), float(scores[target]), mode)]
    if not donors:
        return None
    return donors[int(rng.integers(len(donors)))]


def winner_takes_all(scores: Mapping[str, float], *, mode: Mode = "max") -> list[Exploit]:
    """Every member strictly worse than the best copies the best (members tied with it keep theirs)."""
    order = rank(scores, mode)
    if len(order) < 2:
        return []
    best = order[0]
    return [Exploit(m, best) for m in order[1:][::-1] if _better(float(scores[best]), float(scores[m]), mode)]


def select_donor_async(
    member: str,
    latest_scores: Mapping[str, float],
    rng: np.random.Generator,
    *,
    fraction: float = 0.25,
    mode: Mode = "max",
) -> Exploit | None:
    """Asynchronous PBT: judge `member`, just ready, against the latest finished score of every member.

    `latest_scores` must include `member` itself. Returns an exploit when the member is in the bottom
    fraction (donor sampled from the strictly better part of the top fraction), else None.
    """
    if member not in latest_scores:
        raise ValueError(f"latest_scores has no score for '{member}', the member being judged")
    bottom, top = _quantiles(latest_scores, fraction, mode)
    if member not in bottom:
        return None
    donor = _sample_donor(member, latest_scores, top, rng, mode)
    return Exploit(member, donor) if donor is not None else None


def judgeable_generation(finished: Mapping[str, int], population: int, judged: int = -1) -> int | None:
    """Synchronous PBT: the newest generation every member has finished, if it has not been judged yet.

    `finished` maps each member to the number of its latest finished generation (-1: none yet);
    members missing from it have finished nothing. `judged` is the last generation already judged.
    """
    if population < 1:
        raise ValueError(f"population must be at least 1, got {population}")
    if len(finished) < population:
        return None
    generation = min(finished.values())
    return generation if generation > judged else None


def scores_at(results: Mapping[str, Mapping[int, float]], generation: int) -> dict[str, float]:
    """Synchronous PBT: every member's score at one generation (members without it are left out)."""
    return {m: float(g[generation]) for m, g in results.items() if generation in g}


def latest_scores(results: Mapping[str, Mapping[int, float]]) -> dict[str, float]:
    """Asynchronous PBT: every member's score at its newest finished generation."""
    return {m: float(g[max(g)]) for m, g in results.items() if g}
