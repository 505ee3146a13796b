"""Grid: every configuration x every seed, in a fixed order, so an index names exactly one run.

Racing (`seeds: {min, max, race: true}`) queues `min` seeds of each and adds seed n of configuration
c as index n * N + c: the same index the grid would give it, so keys stay unique and readable.
"""

from __future__ import annotations

from typing import Any

from rlsweep.space import index_to_run
from rlsweep.strategies._base import Strategy
from rlsweep.strategies.seeds import raced_seeds
from rlsweep.strategies.settings import GridSettings
from rlsweep.study import QueueRow, RunSpec, StudyHandle


class GridStrategy(Strategy):
    settings_model = GridSettings
    settings: GridSettings

    def configurations(self) -> list[dict]:
        return self.space.grid() if self.space.params else [{}]

    def total(self) -> int:
        """Runs queued: `strategy.runs` indices when given (more than configurations x seeds runs
        further seed numbers, index i being configuration i mod N, seed number i div N), else every
        configuration x seed. A racing grid starts `min` seeds of each and adds the rest itself."""
        n = len(self.configurations()) * self.sweep.strategy.first_seeds
        runs = self.sweep.strategy.runs
        if runs and self.sweep.strategy.racing is None:
            return int(runs)
        return min(n, runs) if runs else n

    def run_spec(self, index: int) -> RunSpec:
        configs = self.configurations()
        config_index, seed_number = index_to_run(index, len(configs))
        params = {name: self.space[name].encode(value) for name, value in configs[config_index].items()}
        return RunSpec(f"grid:{index}", params, seed_number, attrs={"_config_index": config_index})

    def planned(self) -> int | None:
        return self.total()

    def initial_runs(self) -> list[RunSpec]:
        return [self.run_spec(i) for i in range(self.total())]

    def on_finish(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        return self._race(handle)

    def on_fail(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        return self._race(handle)

    def _race(self, handle: StudyHandle) -> list[RunSpec]:
        if self.sweep.strategy.racing is None:
            return []
        n_configs = len(self.configurations())

        def seed_spec(template: Any, seed_number: int, reason: str) -> RunSpec:
            index = int(str(template.user_attrs["key"]).split("/")[0].removeprefix("grid:"))
            config_index = index % n_configs
            key = f"grid:{seed_number * n_configs + config_index}"
            attrs = {"_config_index": config_index, "race_reason": reason}
            return RunSpec(key, dict(template.params), seed_number, priority=0, attrs=attrs)

        return raced_seeds(handle, seed_spec)
