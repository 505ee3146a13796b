"""Grid: every configuration x every seed, in a fixed order, so an index names exactly one run."""

from __future__ import annotations

from rlsweep.space import index_to_run
from rlsweep.strategies._base import Strategy
from rlsweep.strategies.settings import GridSettings
from rlsweep.study import RunSpec


class GridStrategy(Strategy):
    settings_model = GridSettings
    settings: GridSettings

    def configurations(self) -> list[dict]:
        return self.space.grid() if self.space.params else [{}]

    def total(self) -> int:
        n = len(self.configurations()) * self.sweep.strategy.seeds
        return min(n, self.sweep.strategy.runs) if self.sweep.strategy.runs else n

    def run_spec(self, index: int) -> RunSpec:
        configs = self.configurations()
        config_index, seed_number = index_to_run(index, len(configs))
        params = {name: self.space[name].encode(value) for name, value in configs[config_index].items()}
        return RunSpec(f"grid:{index}", params, seed_number, attrs={"_config_index": config_index})

    def planned(self) -> int | None:
        return self.total()

    def initial_runs(self) -> list[RunSpec]:
        return [self.run_spec(i) for i in range(self.total())]
