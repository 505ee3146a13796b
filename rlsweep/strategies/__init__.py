"""Strategies: what proposes runs and decides stopping.

One registry serves validation and construction: each name maps to its settings model (light, in
`settings.py`) and to its strategy class, imported only when `make_strategy` builds one, so that
`import rlsweep` and config validation stay light.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlsweep.errors import ConfigError, closest
from rlsweep.strategies._base import Strategy
from rlsweep.strategies.settings import (
    DEFAULT_STRATEGY,
    LEGACY_KEYS,
    GridSettings,
    ListSettings,
    PopulationSettings,
    SamplerSettings,
    StrategySettings,
)

if TYPE_CHECKING:
    from rlsweep.config import LoadedSweep

__all__ = [
    "REGISTRY",
    "STRATEGIES",
    "GridSettings",
    "ListSettings",
    "PopulationSettings",
    "SamplerSettings",
    "Strategy",
    "StrategyEntry",
    "StrategySettings",
    "check_strategy_keys",
    "keys_taken_by",
    "make_strategy",
    "parse_settings",
    "settings_model",
    "strategies_taking",
]


@dataclass(frozen=True)
class StrategyEntry:
    settings: type[StrategySettings]
    target: str  # "module:Class", imported on first use

    def strategy_class(self) -> type[Strategy]:
        module, _, cls = self.target.partition(":")
        found: type[Strategy] = getattr(importlib.import_module(module), cls)
        return found


REGISTRY: dict[str, StrategyEntry] = {
    "grid": StrategyEntry(GridSettings, "rlsweep.strategies.grid:GridStrategy"),
    **{
        name: StrategyEntry(SamplerSettings, "rlsweep.strategies.samplers:SamplerStrategy")
        for name in ("random", "tpe", "cmaes", "gp", "qmc")
    },
    **{
        name: StrategyEntry(PopulationSettings, "rlsweep.strategies.pbt:PopulationStrategy")
        for name in ("pbt", "pb2", "pb2_mixed")
    },
    "list": StrategyEntry(ListSettings, "rlsweep.strategies.listed:ListStrategy"),
}
STRATEGIES = tuple(REGISTRY)
POPULATION = tuple(name for name, entry in REGISTRY.items() if entry.settings is PopulationSettings)


def settings_model(name: str, file: str | None = None) -> type[StrategySettings]:
    """The settings model of strategy `name` (ConfigError naming the closest one if unknown)."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise ConfigError(f"unknown strategy '{name}'{closest(name, STRATEGIES)}; known: {', '.join(STRATEGIES)}", file=file, key="strategy.name")
    return entry.settings


def strategies_taking(key: str) -> list[str]:
    """The strategies whose settings include `key`, in registry order."""
    return [name for name, entry in REGISTRY.items() if key in entry.settings.model_fields]


def _name_in(data: Mapping[str, Any]) -> str:
    raw = data.get("name", DEFAULT_STRATEGY)
    return raw if isinstance(raw, str) else str(raw)


def _is_legacy(data: Mapping[str, Any]) -> bool:
    return LEGACY_KEYS <= set(data)


def check_strategy_keys(data: Mapping[str, Any], file: str | None = None) -> None:
    """Check every key of a `strategy` section against the named strategy's own model.

    A key of another strategy names the strategies that take it; an unknown key suggests the
    closest one. A section saved by an older rlsweep (every key of the one flat model) passes:
    `parse_settings` drops the other strategies' keys.
    """
    name = _name_in(data)
    own = settings_model(name, file).model_fields
    if _is_legacy(data):
        return
    for key in data:
        if key in own:
            continue
        takers = strategies_taking(str(key))
        if takers:
            raise ConfigError(f"'{key}' is a setting of {', '.join(takers)}, not of {name}", file=file, key=f"strategy.{key}")
        hint = closest(str(key), own) or f"; known: {', '.join(own)}"
        raise ConfigError(f"unknown key '{key}'{hint}", file=file, key=f"strategy.{key}")


def parse_settings(data: Mapping[str, Any]) -> StrategySettings:
    """The named strategy's own settings model, validated (pydantic errors keep their key paths)."""
    name = _name_in(data)
    model = settings_model(name)
    values = {k: v for k, v in data.items() if k in model.model_fields} if _is_legacy(data) else dict(data)
    return model.model_validate(values)


def keys_taken_by(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a `strategy` section that strategy `name` takes (to carry settings over to it)."""
    own = settings_model(name).model_fields
    return {key: value for key, value in data.items() if key in own}


def make_strategy(loaded: LoadedSweep) -> Strategy:
    """The strategy the sweep names, built from the same registry that validated its settings."""
    name = loaded.sweep.strategy.name
    return REGISTRY[name].strategy_class()(loaded)
