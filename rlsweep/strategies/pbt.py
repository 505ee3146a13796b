"""PBT, PB2 and PB2 with categorical parameters, coordinated through the storage.

Each generation of a member is one run (key `pbt:m<member>:g<generation>`) that trains one ready
interval from a checkpoint. Whichever worker finishes a run decides that member's next generation
(asynchronous mode) or, when it finishes the last run of a generation, the whole next generation
(synchronous mode), and queues it. The unique run key makes a generation exist exactly once however
many workers race; decisions draw from a generator seeded by (sweep seed, member, generation), so a
racing twin computes the same decision. There is no master process.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.strategies._base import Strategy
from rlsweep.strategies.population import (
    Exploit,
    Param,
    explore,
    select_donor_async,
    truncation,
    winner_takes_all,
)
from rlsweep.study import QueueRow, RunSpec, StudyHandle

KEY = re.compile(r"^pbt:m(\d+):g(\d+)$")
# Values that set a network's shape or the number of environments cannot change mid-training.
_SHAPE_PREFIXES = ("trainer.", "policy_kwargs")


def run_key(member: int, generation: int) -> str:
    return f"pbt:m{member}:g{generation}"


class PopulationStrategy(Strategy):
    def __init__(self, loaded: Any) -> None:
        super().__init__(loaded)
        s = self.sweep.strategy
        self.population = s.population
        self.interval = int(s.interval or 1)
        timesteps = int(self.sweep.trainer.get("timesteps", self.sweep.trainer.get("steps", self.interval)))
        self.generations = max(1, math.ceil(timesteps / self.interval))
        fixed = set(s.fixed)
        self.params = [
            Param.of(p, mutable=p.name not in fixed and not p.name.startswith(_SHAPE_PREFIXES)) for p in self.space.params
        ]
        self.mode = self.sweep.objective.mode

    # ------------------------------------------------------------------ queueing
    def initial_runs(self) -> list[RunSpec]:
        specs = []
        for m in range(self.population):
            rng = np.random.default_rng([self.sweep.seed, m, 0])
            values = {p.name: p.sample(rng) for p in self.params}
            specs.append(self._spec(m, 0, values, None, None, [], start_step=0))
        return specs

    def _spec(
        self, member: int, generation: int, values: dict[str, Any], parent: Any, donor: int | None, changes: list[str], start_step: int
    ) -> RunSpec:
        checkpoint = _checkpoint_of(parent) if parent is not None else None
        attrs: dict[str, Any] = {"member": member, "generation": generation, "start_step": start_step}
        if parent is not None:
            attrs.update(parent=parent.number, start_checkpoint=checkpoint)
        if donor is not None:
            attrs.update(donor=donor, donor_run=parent.number)
        if changes:
            attrs["changes"] = changes
        params = {name: self.space[name].encode(value) for name, value in values.items()}
        # A member keeps its seed for life (seed number = member), so lineages are reproducible.
        return RunSpec(run_key(member, generation), params, member, priority=0, attrs=attrs)

    def planned(self) -> int | None:
        return self.population * self.generations

    def budget(self, row: QueueRow) -> int | None:
        return self.interval

    def start_from(self, handle: StudyHandle, row: QueueRow) -> tuple[str | None, int]:
        return row.attrs.get("start_checkpoint"), int(row.attrs.get("start_step", 0))

    def expect_more(self, handle: StudyHandle) -> bool:
        return True

    # ------------------------------------------------------------------ decisions
    def on_finish(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        return self._next(handle, row)

    def on_fail(self, handle: StudyHandle, row: QueueRow, trial: Any) -> list[RunSpec]:
        # A diverged or crashed member scores worst: the next generation copies a donor.
        return self._next(handle, row)

    def recover(self, handle: StudyHandle) -> list[RunSpec]:
        """After a crash between a run's end and its successor's queueing: queue what is missing."""
        specs: list[RunSpec] = []
        rows = handle.rows()
        keys = {r.key.split("/")[0] for r in rows}
        for r in rows:
            m = KEY.match(r.key.split("/")[0])
            if m and r.state in ("done", "pruned", "failed") and run_key(int(m[1]), int(m[2]) + 1) not in keys:
                specs.extend(self._next(handle, r))
        return specs

    def _next(self, handle: StudyHandle, row: QueueRow) -> list[RunSpec]:
        match = KEY.match(row.key.split("/")[0])
        if match is None:
            return []
        member, generation = int(match[1]), int(match[2])
        if generation + 1 >= self.generations:
            return []
        results = self._results(handle)
        if self.sweep.strategy.synchronous:
            gen_results = {m: r[generation] for m, r in results.items() if generation in r}
            if len(gen_results) < self.population:
                return []  # the last member to finish this generation decides for everyone
            return [self._decide(handle, m, generation, results, gen_results) for m in range(self.population)]
        latest = {m: r[max(r)] for m, r in results.items() if r}
        return [self._decide(handle, member, generation, results, latest)]

    def _results(self, handle: StudyHandle) -> dict[int, dict[int, Any]]:
        """member -> generation -> finished trial (the last finished copy of that run)."""
        from optuna.trial import TrialState

        ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        results: dict[int, dict[int, Any]] = {}
        for t in handle.study.get_trials(deepcopy=False, states=ended):
            if t.state == TrialState.FAIL and t.user_attrs.get("failure_reason") in ("worker lost", "interrupted"):
                continue
            if "member" in t.user_attrs:
                results.setdefault(int(t.user_attrs["member"]), {})[int(t.user_attrs["generation"])] = t
        return results

    def _score(self, trial: Any) -> float:
        from optuna.trial import TrialState

        if trial.state == TrialState.COMPLETE and trial.value is not None:
            return float(trial.value)
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            return float(trial.intermediate_values[max(trial.intermediate_values)])
        return math.nan  # failed or diverged: worst

    def _decide(self, handle: StudyHandle, member: int, generation: int, results: dict[int, dict[int, Any]], judged: dict[int, Any]) -> RunSpec:
        rng = np.random.default_rng([self.sweep.seed, member, generation + 1])
        own = results[member][generation]
        scores = {str(m): self._score(t) for m, t in judged.items()}
        settings = self.sweep.strategy
        # exploit: false is the explore-only baseline, explore: false the exploit-only one.
        exploit = self._select(str(member), scores, rng) if settings.exploit else None
        if exploit is not None:
            donor = int(exploit.donor)
            donor_trial = judged[donor]
            checkpoint = _checkpoint_of(donor_trial)
            if checkpoint is not None and Path(checkpoint).exists():
                if settings.explore:
                    values, changes = self._explore(handle, donor_trial, generation, results, rng)
                else:
                    values, changes = handle.decode(donor_trial.params), []
                # The copy continues the donor's lineage and clock: asynchronously the donor may be
                # generations behind or ahead of this member, so its checkpoint's steps count.
                return self._spec(member, generation + 1, values, donor_trial, donor, [f"exploit: copy member {donor} (run {donor_trial.number})", *changes], self._end_step(donor_trial))
        if _checkpoint_of(own) is None or not math.isfinite(self._score(own)):
            # Nothing to continue from (the member failed before saving): start it afresh.
            values = {p.name: p.sample(rng) for p in self.params}
            return self._spec(member, generation + 1, values, None, None, ["restart: no checkpoint to continue from"], 0)
        if not settings.exploit and settings.explore:
            # Explore-only (the PBT paper's baseline): every member perturbs its own values each interval.
            values, changes = self._explore(handle, own, generation, results, rng)
            return self._spec(member, generation + 1, values, own, None, changes, self._end_step(own))
        return self._spec(member, generation + 1, handle.decode(own.params), own, None, [], self._end_step(own))

    def _end_step(self, trial: Any) -> int:
        """Environment steps a finished run's checkpoint holds: its start plus one interval."""
        return int(trial.user_attrs.get("start_step", 0)) + self.interval

    def _select(self, member: str, scores: dict[str, float], rng: np.random.Generator) -> Exploit | None:
        s = self.sweep.strategy
        if s.selection == "winner_takes_all":
            return next((e for e in winner_takes_all(scores, mode=self.mode) if e.target == member), None)
        if s.synchronous:
            return next((e for e in truncation(scores, rng, fraction=s.fraction, mode=self.mode) if e.target == member), None)
        return select_donor_async(member, scores, rng, fraction=s.fraction, mode=self.mode)

    def _explore(self, handle: StudyHandle, donor: Any, generation: int, results: dict[int, dict[int, Any]], rng: np.random.Generator) -> tuple[dict[str, Any], list[str]]:
        values = handle.decode(donor.params)
        name = self.sweep.strategy.name
        if name == "pbt":
            return explore(values, self.params, rng, factors=self.sweep.strategy.factors, resample_probability=self.sweep.strategy.resample_probability)
        from rlsweep.strategies.pb2 import Observation, pb2_explore, pb2_mixed_explore

        history = self._observations(handle, results)
        if name == "pb2_mixed":
            return pb2_mixed_explore(values, self.params, history, generation, rng)
        bounds = [p for p in self.params if p.kind != "choice" and p.mutable]
        new = dict(values)
        new.update(pb2_explore(history, generation, bounds, rng))
        from rlsweep.strategies.population import describe_change

        changes = [describe_change(p.name, values[p.name], new[p.name], "pb2") for p in bounds if new[p.name] != values[p.name]]
        _ = Observation
        return new, changes

    def _observations(self, handle: StudyHandle, results: dict[int, dict[int, Any]]) -> list[Any]:
        """PB2's data: (generation, values) -> change of the score over that interval (higher is better)."""
        from rlsweep.strategies.pb2 import Observation

        sign = 1.0 if self.mode == "max" else -1.0
        by_number = {t.number: t for r in results.values() for t in r.values()}
        observations = []
        for r in results.values():
            for generation, t in r.items():
                parent = by_number.get(t.user_attrs.get("parent", -1))
                if parent is None:
                    continue
                change = sign * (self._score(t) - self._score(parent))
                if math.isfinite(change):
                    observations.append(Observation(float(generation), handle.decode(t.params), change))
        return observations


def _checkpoint_of(trial: Any) -> str | None:
    """A finished run's checkpoint: recorded only once the file is complete (atomic rename)."""
    attrs = trial.user_attrs
    return attrs.get("checkpoint") or attrs.get("model")
