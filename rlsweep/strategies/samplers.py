"""Optuna's samplers as strategies: random, tpe, cmaes, gp, qmc.

Each proposal gets a sampler seeded from the sweep's seed and its slot number, so the same sweep
proposes the same first configurations however many workers run it.
"""

from __future__ import annotations

import math
from typing import Any

from rlsweep.strategies._base import Strategy
from rlsweep.strategies.seeds import raced_seeds
from rlsweep.strategies.settings import SamplerSettings
from rlsweep.study import QueueRow, RunSpec, StudyHandle
from rlsweep.study.trials import run_trial

DEFAULT_RUNS = 20
# Samplers that keep no state in the trial they sample for: their values can be drawn before the
# trial exists, and the trial is then written with params and attributes in one transaction
# instead of one per parameter and attribute (the difference is most of a short run's overhead).
# TPE is not among them: its relative sampling writes system attributes to the trial.
STATELESS = ("random",)


def sample_params(handle: StudyHandle, sampler: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """Draw one configuration from `sampler` through Optuna's sampler API, before the trial exists."""
    import datetime

    from optuna.trial import FrozenTrial, TrialState

    pending = FrozenTrial(
        number=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.datetime.now(),
        datetime_complete=None, params={}, distributions={}, user_attrs=dict(attrs), system_attrs={},
        intermediate_values={}, trial_id=-1,
    )  # fmt: skip
    study = handle.study
    distributions = handle.space.distributions()
    relative_space = sampler.infer_relative_search_space(study, pending)
    relative = sampler.sample_relative(study, pending, relative_space) if relative_space else {}
    return {
        name: relative[name] if name in relative else sampler.sample_independent(study, pending, name, dist)
        for name, dist in distributions.items()
    }


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
    settings_model = SamplerSettings
    settings: SamplerSettings

    def proposals(self) -> int:
        runs = self.sweep.strategy.runs or DEFAULT_RUNS
        return math.ceil(runs / self.sweep.strategy.first_seeds)

    def planned(self) -> int | None:
        # Racing may add seeds: this is then the least the study will have.
        return self.proposals() * self.sweep.strategy.first_seeds

    def initial_runs(self) -> list[RunSpec]:
        return [RunSpec(f"cfg:{k}", None, 0, priority=1, attrs={"_slot": k}) for k in range(self.proposals())]

    def propose(self, handle: StudyHandle, row: QueueRow, attrs: dict[str, Any]) -> Any:
        name = self.sweep.strategy.name
        slot = int(row.attrs.get("_slot", 0))
        # QMC walks one sequence indexed by trial number: every worker must share its seed.
        seed = self.sweep.seed if name == "qmc" else self.sweep.seed * 100_003 + slot
        sampler = make_sampler(name, seed, dict(self.settings.sampler_kwargs))
        handle.study.sampler = sampler
        if name in STATELESS:
            params = sample_params(handle, sampler, attrs)
            return handle.create_trial(params, attrs)
        trial = handle.study.ask(handle.space.distributions())
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return run_trial(trial)

    def on_start(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        base = row.key.split("/")[0]
        if row.seed_number != 0 or not base.startswith("cfg:"):
            return []
        return [
            RunSpec(f"{base}/seed:{j}", dict(trial.params), j, priority=0, attrs=dict(row.attrs))
            for j in range(1, self.sweep.strategy.first_seeds)
        ]

    def on_finish(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        return self._race(handle)

    def on_fail(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        return self._race(handle)

    def _race(self, handle: StudyHandle) -> list[RunSpec]:
        """Racing: one more seed, keyed `cfg:<slot>/seed:<n>`, for each configuration still in the race."""
        if self.sweep.strategy.racing is None:
            return []

        def seed_spec(template: Any, seed_number: int, reason: str) -> RunSpec:
            base = str(template.user_attrs["key"]).split("/")[0]
            return RunSpec(f"{base}/seed:{seed_number}", dict(template.params), seed_number, priority=0, attrs={"race_reason": reason})

        return raced_seeds(handle, seed_spec)
