"""Each strategy's settings model (the `strategy:` section of a sweep file).

Kept in a light module (pydantic only) so config validation never imports a strategy's code; the
registry in `rlsweep.strategies` pairs each model with its strategy class.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PRUNERS = ("none", "median", "percentile", "asha", "successive_halving", "hyperband")
DEFAULT_STRATEGY = "tpe"


class StrategySettings(BaseModel):
    """The keys every strategy takes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(DEFAULT_STRATEGY, description="the strategy: grid, random, tpe, cmaes, gp, qmc, pbt, pb2, pb2_mixed or list")
    runs: int | None = Field(None, gt=0, description="total runs (configurations x seeds); grid: all by default")
    seeds: int = Field(1, gt=0, description="seeds per configuration, each one run")
    workers: int | None = Field(None, gt=0, description="local worker processes (default: number of cores)")
    pruner: str = Field("none", description=f"one of {', '.join(PRUNERS)}")
    pruner_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for Optuna's pruner")


class GridSettings(StrategySettings):
    """grid: every configuration x every seed, in a fixed order."""


class SamplerSettings(StrategySettings):
    """random, tpe, cmaes, gp, qmc: Optuna's samplers."""

    sampler_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for Optuna's sampler")


class PopulationSettings(StrategySettings):
    """pbt, pb2, pb2_mixed: a population trained in generations of `interval` steps."""

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

    configs: list[dict[str, Any]] = Field(default_factory=list, description="list: configurations by dotted name")
    seed_offset: int = Field(0, ge=0, description="list: first seed number (held out from a parent study)")


# Before each strategy had its own model, a saved sweep held every key of one flat model under
# every strategy. A stored `strategy` section with all of these keys is such a save: keys of other
# strategies are dropped when it is read back, so studies made then still load.
LEGACY_KEYS = frozenset(
    (*StrategySettings.model_fields, *SamplerSettings.model_fields, *PopulationSettings.model_fields, *ListSettings.model_fields)
)
