"""List: given configurations, each trained on `seeds` seeds from seed number `seed_offset` on.

It is what `reseed` creates: the top configurations of a study, on seeds the study never used.
"""

from __future__ import annotations

from rlsweep.errors import ConfigError
from rlsweep.strategies._base import Strategy
from rlsweep.strategies.settings import ListSettings
from rlsweep.study import RunSpec


class ListStrategy(Strategy):
    settings_model = ListSettings
    settings: ListSettings

    def planned(self) -> int | None:
        return len(self.settings.configs) * self.settings.seeds

    def initial_runs(self) -> list[RunSpec]:
        s = self.settings
        specs = []
        for i, values in enumerate(s.configs):
            missing = set(self.space.names) - set(values)
            if missing:
                raise ConfigError(f"configuration {i} has no value for {sorted(missing)}", key="strategy.configs")
            params = {name: self.space[name].encode(values[name]) for name in self.space.names}
            for j in range(s.seeds):
                n = s.seed_offset + j
                specs.append(RunSpec(f"list:{i}/seed:{n}", params, n, attrs={"config_rank": i + 1}))
        return specs
