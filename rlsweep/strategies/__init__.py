"""Strategies: what proposes runs and decides stopping. `make_strategy` picks one by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlsweep.strategies._base import Strategy

if TYPE_CHECKING:
    from rlsweep.config import LoadedSweep

__all__ = ["Strategy", "make_strategy"]


def make_strategy(loaded: LoadedSweep) -> Strategy:
    name = loaded.sweep.strategy.name
    if name == "grid":
        from rlsweep.strategies.grid import GridStrategy

        return GridStrategy(loaded)
    if name in ("pbt", "pb2", "pb2_mixed"):
        from rlsweep.strategies.pbt import PopulationStrategy

        return PopulationStrategy(loaded)
    if name == "list":
        from rlsweep.strategies.listed import ListStrategy

        return ListStrategy(loaded)
    from rlsweep.strategies.samplers import SamplerStrategy

    return SamplerStrategy(loaded)
