"""Each strategy's settings model (the `strategy:` section of a sweep file).

Kept in a light module (pydantic only) so config validation never imports a strategy's code; the
registry in `rlsweep.strategies` pairs each model with its strategy class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from rlsweep.errors import closest

PRUNERS = ("none", "median", "percentile", "asha", "successive_halving", "hyperband")
DEFAULT_STRATEGY = "tpe"
# Strategies that can race seeds: those whose runs are configurations x seeds.
RACING = ("grid", "random", "tpe", "cmaes", "gp", "qmc")
SEED_RANGE_KEYS = ("min", "max", "race")


@dataclass(frozen=True)
class SeedRange:
    """`seeds: {min, max, race: true}`: every configuration starts on `min` seeds; seeds are added one
    at a time while its interval overlaps the leader's, up to `max` (see strategies/racing.py)."""

    min: int
    max: int
    race: bool = True

    def __str__(self) -> str:
        return f"{self.min}-{self.max} (racing)"

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> SeedRange:
        """Checked here rather than by pydantic so each message names the sub-key and the fix."""
        for key in data:
            if key not in SEED_RANGE_KEYS:
                hint = closest(str(key), SEED_RANGE_KEYS) or f"; known: {', '.join(SEED_RANGE_KEYS)}"
                raise ValueError(f"unknown key '{key}' in seeds{hint}")
        for key in ("min", "max"):
            if key not in data:
                raise ValueError(f"racing needs seeds.{key}, e.g. seeds: {{min: 2, max: 10, race: true}}")
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"seeds.{key} must be a whole number, got {value!r}")
        low, high, race = int(data["min"]), int(data["max"]), data.get("race", False)
        if not isinstance(race, bool):
            raise ValueError(f"seeds.race must be true or false, got {race!r}")
        if low < 1:
            raise ValueError(f"seeds.min must be at least 1, got {low}")
        if high < low:
            raise ValueError(f"seeds.max must be at least seeds.min ({low}), got {high}")
        if not race:
            raise ValueError(f"a range of seeds is for racing: add race: true, or give one number (seeds: {low})")
        return cls(low, high, race)


class StrategySettings(BaseModel):
    """The keys every strategy takes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(DEFAULT_STRATEGY, description="the strategy: grid, random, tpe, cmaes, gp, qmc, pbt, pb2, pb2_mixed or list")
    runs: int | None = Field(None, gt=0, description="total runs (configurations x seeds); grid: all by default")
    seeds: int | SeedRange = Field(
        1, description="seeds per configuration, each one run; or {min, max, race: true} to race seeds"
    )
    workers: int | None = Field(None, gt=0, description="local worker processes (default: number of cores)")
    pruner: str = Field("none", description=f"one of {', '.join(PRUNERS)}")
    pruner_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for Optuna's pruner")

    @field_validator("seeds", mode="wrap")
    @classmethod
    def _seeds(cls, value: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> Any:
        if isinstance(value, Mapping):
            name = info.data.get("name", DEFAULT_STRATEGY)
            if name not in RACING:
                raise ValueError(f"racing seeds is for {', '.join(RACING)}, not {name}; give one number of seeds")
            return SeedRange.parse(value)
        if isinstance(value, SeedRange):
            return value
        if isinstance(value, bool):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        try:
            seeds = handler(value)
        except ValidationError as exc:  # report the whole-number reading, not one error per union member
            raise PydanticCustomError(exc.errors()[0]["type"], exc.errors()[0]["msg"]) from None
        if isinstance(seeds, int) and seeds < 1:
            raise PydanticCustomError("greater_than", "Input should be greater than 0")
        return seeds

    @property
    def first_seeds(self) -> int:
        """Seeds each configuration is queued with (all of them, unless racing adds more)."""
        return self.seeds.min if isinstance(self.seeds, SeedRange) else self.seeds

    @property
    def max_seeds(self) -> int:
        return self.seeds.max if isinstance(self.seeds, SeedRange) else self.seeds

    @property
    def racing(self) -> SeedRange | None:
        return self.seeds if isinstance(self.seeds, SeedRange) else None


class GridSettings(StrategySettings):
    """grid: every configuration x every seed, in a fixed order."""


class SamplerSettings(StrategySettings):
    """random, tpe, cmaes, gp, qmc: Optuna's samplers."""

    sampler_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for Optuna's sampler")


class PopulationSettings(StrategySettings):
    """pbt, pb2, pb2_mixed: a population trained in generations of `interval` steps."""

    seeds: int = Field(1, description="seeds per configuration, each one run (no racing: one run per member)")
    population: int = Field(8, gt=0, description="population size (pbt/pb2)")
    interval: int | None = Field(None, gt=0, description="environment steps between exploit/explore steps (pbt/pb2)")
    selection: Literal["truncation", "winner_takes_all"] = Field("truncation", description="who copies whom (pbt/pb2)")
    fraction: float = Field(0.25, gt=0, le=0.5, description="truncation: bottom fraction copies the top fraction")
    factors: tuple[float, float] = Field((0.8, 1.2), description="pbt: perturbation factors")
    resample_probability: float = Field(0.25, ge=0, le=1, description="pbt: probability of resampling a value")
    synchronous: bool = Field(False, description="pbt: wait for the whole generation before exploiting")
    fixed: list[str] = Field(default_factory=list, description="pbt: parameters that may not change mid-training")
    exploit: bool = Field(True, description="pbt: copy better members (false: explore-only baseline)")
    explore: bool = Field(True, description="pbt: perturb after copying (false: exploit-only baseline)")


class ListSettings(StrategySettings):
    """list (what reseed creates): given configurations, each on `seeds` seeds from `seed_offset` on."""

    seeds: int = Field(1, description="seeds per configuration, each one run")
    configs: list[dict[str, Any]] = Field(default_factory=list, description="list: configurations by dotted name")
    seed_offset: int = Field(0, ge=0, description="list: first seed number (held out from a parent study)")


# Before each strategy had its own model, a saved sweep held every key of one flat model under
# every strategy. A stored `strategy` section with all of these keys is such a save: keys of other
# strategies are dropped when it is read back, so studies made then still load.
LEGACY_KEYS = frozenset(
    (*StrategySettings.model_fields, *SamplerSettings.model_fields, *PopulationSettings.model_fields, *ListSettings.model_fields)
)
