"""Optuna's samplers as strategies: random, tpe, cmaes, gp, qmc.

Each proposal gets a sampler seeded from the sweep's seed and its slot number, so the same sweep
proposes the same first configurations however many workers run it.
"""

from __future__ import annotations

import math
from typing import Any

from rlsweep.strategies._base import Strategy
from rlsweep.study import QueueRow, RunSpec, StudyHandle

DEFAULT_RUNS = 20


def make_sampler(name: str, seed: int, kwargs: dict[str, Any]) -> Any:
    import optuna.samplers as s

    if name == "random":
        return s.RandomSampler(seed=seed, **kwargs)
    if name == "tpe":
        return s.TPESampler(seed=seed, **{"n_startup_trials": 5, **kwargs})
    if name == "cmaes":
        return s.CmaEsSampler(seed=seed, **{"warn_independent_sampling": False, **kwargs})
    if name == "gp":
        return s.GPSampler(seed=seed, **kwargs)
    if name == "qmc":
        return s.QMCSampler(seed=seed, **{"warn_independent_sampling": False, **kwargs})
    raise ValueError(name)


class SamplerStrategy(Strategy):
    def proposals(self) -> int:
        runs = self.sweep.strategy.runs or DEFAULT_RUNS
        return math.ceil(runs / self.sweep.strategy.seeds)

    def initial_runs(self) -> list[RunSpec]:
        return [RunSpec(f"cfg:{k}", None, 0, priority=1, attrs={"slot": k}) for k in range(self.proposals())]

    def propose(self, handle: StudyHandle, row: QueueRow, attrs: dict[str, Any]) -> Any:
        name = self.sweep.strategy.name
        slot = int(row.attrs.get("slot", 0))
        # QMC walks one sequence indexed by trial number: every worker must share its seed.
        seed = self.sweep.seed if name == "qmc" else self.sweep.seed * 100_003 + slot
        handle.study.sampler = make_sampler(name, seed, dict(self.sweep.strategy.sampler_kwargs))
        trial = handle.study.ask(handle.space.distributions())
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return trial

    def on_start(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        base = row.key.split("/")[0]
        if row.seed_number != 0 or not base.startswith("cfg:"):
            return []
        return [
            RunSpec(f"{base}/seed:{j}", dict(trial.params), j, priority=0, attrs=dict(row.attrs))
            for j in range(1, self.sweep.strategy.seeds)
        ]
