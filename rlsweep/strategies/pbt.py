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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlsweep import states
from rlsweep.strategies._base import Strategy
from rlsweep.strategies.population import (
    Exploit,
    Mode,
    Param,
    describe_change,
    explore,
    select_donor_async,
    truncation,
    winner_takes_all,
)
from rlsweep.strategies.records import MemberRun, Population, read_population
from rlsweep.strategies.settings import PopulationSettings
from rlsweep.study import QueueRow, RunSpec, StudyHandle

KEY = re.compile(r"^pbt:m(\d+):g(\d+)$")
# Values that set a network's shape or the number of environments cannot change mid-training.
_SHAPE_PREFIXES = ("trainer.", "policy_kwargs")


def run_key(member: int, generation: int) -> str:
    return f"pbt:m{member}:g{generation}"


# (values, history, generation, rng) -> (new values, change log): the one explore signature.
Explorer = Callable[[Mapping[str, Any], Sequence[Any], int, np.random.Generator], tuple[dict[str, Any], list[str]]]


@dataclass(frozen=True)
class NextRun:
    """A member's next generation, as decided: its values, what it continues from and why."""

    member: int
    generation: int
    values: dict[str, Any]
    parent: MemberRun | None = None  # the run whose checkpoint it continues (None: a fresh start)
    donor: int | None = None  # the member copied, when it exploited
    changes: list[str] = field(default_factory=list)
    start_step: int = 0


def make_explorer(settings: PopulationSettings, params: Sequence[Param]) -> Explorer:
    """The explore step of `settings.name`, chosen once."""
    if settings.name == "pbt":

        def pbt(values: Mapping[str, Any], history: Sequence[Any], generation: int, rng: np.random.Generator) -> tuple[dict[str, Any], list[str]]:
            return explore(values, params, rng, factors=settings.factors, resample_probability=settings.resample_probability)

        return pbt
    from rlsweep.strategies.pb2 import pb2_explore, pb2_mixed_explore

    if settings.name == "pb2_mixed":

        def mixed(values: Mapping[str, Any], history: Sequence[Any], generation: int, rng: np.random.Generator) -> tuple[dict[str, Any], list[str]]:
            return pb2_mixed_explore(values, params, list(history), generation, rng)

        return mixed
    bounds = [p for p in params if p.kind != "choice" and p.mutable]

    def pb2(values: Mapping[str, Any], history: Sequence[Any], generation: int, rng: np.random.Generator) -> tuple[dict[str, Any], list[str]]:
        new = dict(values)
        new.update(pb2_explore(list(history), generation, bounds, rng))
        changes = [describe_change(p.name, values[p.name], new[p.name], "pb2") for p in bounds if new[p.name] != values[p.name]]
        return new, changes

    return pb2


def observations(population: Population, mode: Mode) -> list[Any]:
    """PB2's data: (generation, values) -> change of the score over that interval (higher is better)."""
    from rlsweep.strategies.pb2 import Observation

    sign = 1.0 if mode == "max" else -1.0
    by_number = {r.number: r for runs in population.values() for r in runs.values()}
    found = []
    for runs in population.values():
        for generation, run in runs.items():
            parent = by_number.get(run.parent if run.parent is not None else -1)
            if parent is None:
                continue
            change = sign * (run.score - parent.score)
            if math.isfinite(change):
                found.append(Observation(float(generation), dict(run.params), change))
    return found


def select(member: int, scores: Mapping[str, float], rng: np.random.Generator, settings: PopulationSettings, mode: Mode) -> Exploit | None:
    """Whom `member` copies, if anyone: winner-takes-all, truncation (synchronous) or its asynchronous form."""
    if settings.selection == "winner_takes_all":
        return next((e for e in winner_takes_all(scores, mode=mode) if e.target == str(member)), None)
    if settings.synchronous:
        return next((e for e in truncation(scores, rng, fraction=settings.fraction, mode=mode) if e.target == str(member)), None)
    return select_donor_async(str(member), scores, rng, fraction=settings.fraction, mode=mode)


def decide(
    member: int,
    generation: int,
    population: Population,
    judged: Mapping[int, MemberRun],
    *,
    settings: PopulationSettings,
    params: Sequence[Param],
    explorer: Explorer,
    mode: Mode,
    seed: int,
    interval: int,
) -> NextRun:
    """Member `member`'s generation `generation + 1`, from plain records only.

    `judged` is whom the member is ranked against (its generation when synchronous, every member's
    latest run otherwise). The generator is seeded by (seed, member, generation + 1), so a racing
    twin reading the same records decides the same. Checkpoints count as complete when recorded
    (the record follows the rename); no file is looked at.
    """
    rng = np.random.default_rng([seed, member, generation + 1])
    own = population[member][generation]
    scores = {str(m): r.score for m, r in judged.items()}
    history: Sequence[Any] = observations(population, mode) if settings.name != "pbt" else ()
    nxt = generation + 1
    # exploit: false is the explore-only baseline, explore: false the exploit-only one.
    exploit = select(member, scores, rng, settings, mode) if settings.exploit else None
    if exploit is not None:
        donor = judged[int(exploit.donor)]
        if donor.checkpoint_complete:
            values, changes = explorer(donor.params, history, generation, rng) if settings.explore else (dict(donor.params), [])
            # The copy continues the donor's lineage and clock: asynchronously the donor may be
            # generations behind or ahead of this member, so its checkpoint's steps count.
            log = [f"exploit: copy member {donor.member} (run {donor.number})", *changes]
            return NextRun(member, nxt, values, donor, donor.member, log, donor.start_step + interval)
    if not own.checkpoint_complete or not math.isfinite(own.score):
        # Nothing to continue from (the member failed before saving): start it afresh.
        values = {p.name: p.sample(rng) for p in params}
        return NextRun(member, nxt, values, None, None, ["restart: no checkpoint to continue from"], 0)
    if not settings.exploit and settings.explore:
        # Explore-only (the PBT paper's baseline): every member perturbs its own values each interval.
        values, changes = explorer(own.params, history, generation, rng)
        return NextRun(member, nxt, values, own, None, changes, own.start_step + interval)
    return NextRun(member, nxt, dict(own.params), own, None, [], own.start_step + interval)


class PopulationStrategy(Strategy):
    settings_model = PopulationSettings
    settings: PopulationSettings

    def __init__(self, loaded: Any) -> None:
        super().__init__(loaded)
        s = self.settings
        self.population = s.population
        self.interval = int(s.interval or 1)
        timesteps = int(self.sweep.trainer.get("timesteps", self.sweep.trainer.get("steps", self.interval)))
        self.generations = max(1, math.ceil(timesteps / self.interval))
        fixed = set(s.fixed)
        self.params = [
            Param.of(p, mutable=p.name not in fixed and not p.name.startswith(_SHAPE_PREFIXES)) for p in self.space.params
        ]
        self.mode: Mode = self.sweep.objective.mode
        self.explorer = make_explorer(s, self.params)

    # ------------------------------------------------------------------ queueing
    def initial_runs(self) -> list[RunSpec]:
        specs = []
        for m in range(self.population):
            rng = np.random.default_rng([self.sweep.seed, m, 0])
            values = {p.name: p.sample(rng) for p in self.params}
            specs.append(self._spec(NextRun(m, 0, values)))
        return specs

    def _spec(self, run: NextRun) -> RunSpec:
        attrs: dict[str, Any] = {"member": run.member, "generation": run.generation, "start_step": run.start_step}
        if run.parent is not None:
            attrs.update(parent=run.parent.number, start_checkpoint=run.parent.checkpoint)
            if run.donor is not None:
                attrs.update(donor=run.donor, donor_run=run.parent.number)
        if run.changes:
            attrs["changes"] = list(run.changes)
        params = {name: self.space[name].encode(value) for name, value in run.values.items()}
        # A member keeps its seed for life (seed number = member), so lineages are reproducible.
        return RunSpec(run_key(run.member, run.generation), params, run.member, priority=0, attrs=attrs)

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
            if m and r.state in states.ENDED and run_key(int(m[1]), int(m[2]) + 1) not in keys:
                specs.extend(self._next(handle, r))
        return specs

    def _next(self, handle: StudyHandle, row: QueueRow) -> list[RunSpec]:
        match = KEY.match(row.key.split("/")[0])
        if match is None:
            return []
        member, generation = int(match[1]), int(match[2])
        if generation + 1 >= self.generations:
            return []
        population = read_population(handle)  # the one read; everything below is plain values
        if self.settings.synchronous:
            judged = {m: r[generation] for m, r in population.items() if generation in r}
            if len(judged) < self.population:
                return []  # the last member to finish this generation decides for everyone
            return [self._spec(self._decide(m, generation, population, judged)) for m in range(self.population)]
        latest = {m: r[max(r)] for m, r in population.items() if r}
        return [self._spec(self._decide(member, generation, population, latest))]

    def _decide(self, member: int, generation: int, population: Population, judged: Mapping[int, MemberRun]) -> NextRun:
        return decide(
            member, generation, population, judged, settings=self.settings, params=self.params,
            explorer=self.explorer, mode=self.mode, seed=self.sweep.seed, interval=self.interval,
        )  # fmt: skip
