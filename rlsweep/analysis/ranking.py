"""The one ranking of a study: `rank(handle)` orders its configurations (or, for a population study,
its members) for every caller — `rlsweep top` and `top --export`, the HTML report's table, `reseed
--top`, `replay`, `render --top`, `mature`'s candidates and `rlsweep export`.

How a configuration is valued (also in the README, "Rankings"):

- a configuration's *seeds* are its runs that ended with a value: finished runs at their objective
  value, and **pruned runs at the objective reduced over what they reported before they were cut**
  (for `reduce: last`, their last evaluation). A pruner or gate cuts a seed because it looked bad, so
  leaving it out would rank the configuration on its lucky seeds only; it counts, at the value it had;
- failed runs have no value: they are counted (`failed`) and left out of the statistics; copies that
  the machinery re-queued (a lost worker, Ctrl-C) are not counted at all, their re-run is;
- configurations are ordered by the mean (or IQM) over their seeds, ties by more seeds, then by
  configuration id; a configuration with fewer than `min_seeds` seeds (default 1) is not ranked and is
  listed apart (`Ranking.unranked`);
- the interval is a 95% percentile-bootstrap interval of the ranking statistic (mean or IQM) over
  seeds; with fewer than 2 seeds there is no interval (NaN, shown as "—" or null), and no std.

A population study (pbt, pb2, pb2_mixed) ranks members instead: each member by its newest
generation's value (members that reached the newest generation first, as `lineage` chooses its
winner), with its number of generations, how often it copied a donor (exploits) and a summary of the
schedule its lineage trained with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rlsweep import states
from rlsweep.analysis.stats import Summary, summarize
from rlsweep.strategies import POPULATION, keys_taken_by
from rlsweep.strategies.records import reduce_curve

Mode = Literal["max", "min"]
#: How the ranking reads one run: it ended with a value (complete, pruned), failed, is not over (or
#: not started), or was never started because its configuration was pruned as a whole (skipped).
RunState = Literal["complete", "pruned", "failed", "pending", "skipped"]


@dataclass(frozen=True)
class SeedRun:
    """One run as the ranking reads it (plain data: from a study's trials or the report's run rows)."""

    number: int
    config_id: str
    values: dict[str, Any]
    seed: int | None
    state: RunState
    score: float = math.nan  # complete: its value; pruned: its reduced reports; else NaN


@dataclass
class RankedConfig:
    """One configuration over its seeds."""

    config_id: str
    values: dict[str, Any]
    summary: Summary
    runs: list[int] = field(default_factory=list)  # trial numbers of its seeds (runs with a value)
    seeds: list[int] = field(default_factory=list)  # their seed numbers
    pruned: int = 0  # of its seeds, how many were pruned (counted at their last value)
    failed: int = 0  # runs without a value, left out
    pending: int = 0  # runs not over yet (running, or queued and not started)
    skipped: int = 0  # queued seeds never started: the configuration was pruned as a whole
    race_reason: str | None = None  # seed racing: why it got the seeds it got (None: no racing)
    rank: int | None = None  # 1 = best; None when not ranked

    @property
    def finished(self) -> int:
        return self.summary.n - self.pruned

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "config_id": self.config_id, "values": self.values, "runs": self.runs,
            "seeds": self.seeds, **{k: _number(v) for k, v in self.summary.as_dict().items()},
            "finished": self.finished, "pruned": self.pruned, "failed": self.failed, "pending": self.pending,
            "skipped": self.skipped, "race_reason": self.race_reason,
        }  # fmt: skip


@dataclass
class RankedMember:
    """One member (lineage) of a population study, valued by its newest generation."""

    member: int
    run: int  # trial number of its newest generation
    generation: int
    score: float
    generations: int  # runs this member trained
    exploits: int  # of them, how many started by copying a donor
    values: dict[str, Any]  # the newest generation's values
    config_id: str
    schedule: list[dict[str, Any]] = field(default_factory=list)  # its lineage: start, end, values
    rank: int | None = None

    @property
    def runs(self) -> list[int]:
        return [self.run]

    def schedule_text(self) -> str:
        """`h0 0.52 → 0.91 (7 changes), h1 0.3 (fixed)` over the lineage's segments."""
        parts = []
        for name in sorted({k for seg in self.schedule for k in seg["values"]}):
            seq = [seg["values"].get(name) for seg in self.schedule]
            changes = sum(1 for a, b in zip(seq, seq[1:], strict=False) if a != b)
            if changes:
                parts.append(
                    f"{name} {fmt(seq[0])} → {fmt(seq[-1])} ({changes} change{'' if changes == 1 else 's'})"
                )
            else:
                parts.append(f"{name} {fmt(seq[0])} (fixed)")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "member": self.member, "run": self.run, "generation": self.generation,
            "value": _number(self.score), "generations": self.generations, "exploits": self.exploits,
            "config_id": self.config_id, "values": self.values, "schedule": self.schedule,
        }  # fmt: skip


Entry = RankedConfig | RankedMember


@dataclass
class Ranking:
    """Best first in `entries`; `unranked` holds what was listed apart, and why (`reason`)."""

    kind: Literal["configurations", "members"]
    entries: list[Any]
    unranked: list[Any]
    statistic: str = "mean"
    mode: Mode = "max"
    min_seeds: int = 1
    confidence: float = 0.95
    include_pending: bool = False  # configurations with seeds still to run are ranked too

    # A Ranking reads as the list of its ranked entries (`rank(h)[:3]`, `for r in rank(h)`).
    def __iter__(self) -> Iterator[Any]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: Any) -> Any:
        return self.entries[i]

    @property
    def interval(self) -> str:
        """What the interval column is, in words."""
        what = "IQM" if self.statistic == "iqm" else self.statistic
        return f"{round(100 * self.confidence)}% CI of the {what} over seeds (percentile bootstrap; none below 2 seeds)"

    @property
    def reason(self) -> str:
        if self.kind == "members":
            return "no value yet"
        fewer = f"fewer than {self.min_seeds} seed{'' if self.min_seeds == 1 else 's'}"
        if not self.include_pending and any(e.pending for e in self.unranked):
            return "seeds still to run" if self.min_seeds == 1 else f"seeds still to run, or {fewer}"
        return fewer

    def order(self) -> list[str]:
        """Configuration ids, ranked ones first: the order every list of configurations follows."""
        seen: dict[str, None] = {}
        for e in [*self.entries, *self.unranked]:
            seen.setdefault(e.config_id, None)
        return list(seen)

    def run_order(self) -> list[int]:
        """Trial numbers in ranking order (a configuration's seeds by seed number; a member's newest run)."""
        return [n for e in [*self.entries, *self.unranked] for n in e.runs]

    def records(self) -> list[dict[str, Any]]:
        """The ranked entries as JSON-ready dicts (`top --json`, the exports); NaN is None."""
        return [e.as_dict() for e in self.entries]


# ---------------------------------------------------------------------------------- the ranking
def rank(
    handle: Any, *, statistic: str = "mean", min_seeds: int = 1, seed: int = 0, include_pending: bool = False
) -> Ranking:
    """The study's ranking (see the module's docstring for the rule): members for a population study,
    configurations over seeds otherwise. Reads only. By default a configuration is ranked only once
    all its seeds are over (finished, failed, or pruned as a whole); `include_pending` ranks it on
    the seeds it has."""
    trials = handle.get_trials(deepcopy=False)
    mode = handle.sweep.objective.mode
    if handle.sweep.strategy.name in POPULATION:
        from rlsweep.analysis.lineage import population_runs

        runs = population_runs(trials, handle.decode, interval=handle.sweep.strategy.interval)
        return rank_members(runs, mode=mode, config_id=lambda values: _config_id(values))
    objective = handle.sweep.objective
    racing = handle.sweep.strategy.racing
    seeds = seed_runs(trials, handle.decode, handle.config_id, objective.reduce, objective.k, mode)
    return rank_runs(
        [*seeds, *queued_runs(handle)], mode=mode, statistic=statistic, min_seeds=min_seeds, seed=seed,
        include_pending=include_pending, race_max=racing.max if racing is not None else None,
    )  # fmt: skip


def rank_runs(
    runs: Iterable[SeedRun],
    *,
    mode: Mode = "max",
    statistic: str = "mean",
    min_seeds: int = 1,
    seed: int = 0,
    include_pending: bool = False,
    race_max: int | None = None,
) -> Ranking:
    """Configurations over their seeds, best first (the pure core of `rank`, also used by the report
    when it is given plain run rows). With `race_max` (a racing study's seeds.max) each entry gets
    the seed race's call on it as `race_reason`."""
    if statistic not in ("mean", "iqm"):
        raise ValueError(f"statistic must be 'mean' or 'iqm', got {statistic!r}")
    if min_seeds < 1:
        raise ValueError(f"min_seeds must be at least 1, got {min_seeds}")
    groups: dict[str, RankedConfig] = {}
    scores: dict[str, list[float]] = {}
    seeds_used: dict[str, set[Any]] = {}
    for run in sorted(runs, key=lambda r: (r.seed if r.seed is not None else -1, r.number)):
        seeds_used.setdefault(run.config_id, set()).add(run.number if run.seed is None else run.seed)
        entry = groups.get(run.config_id)
        if entry is None:
            entry = groups[run.config_id] = RankedConfig(run.config_id, dict(run.values), summarize([]))
            scores[run.config_id] = []
        if run.state in ("complete", "pruned") and not math.isnan(run.score):
            scores[run.config_id].append(run.score)
            entry.runs.append(run.number)
            entry.seeds.append(-1 if run.seed is None else run.seed)
            entry.pruned += run.state == "pruned"
        elif run.state == "failed" or run.state in ("complete", "pruned"):
            entry.failed += 1  # a diverged (NaN) value is a failure too
        elif run.state == "skipped":
            entry.skipped += 1
        else:
            entry.pending += 1
    for cid, entry in groups.items():
        s = summarize(scores[cid], seed=seed, ci_statistic="iqm" if statistic == "iqm" else "mean")
        if s.n < 2:  # one seed has no spread and no interval: never show [x, x]
            s = replace(s, std=math.nan, ci_low=math.nan, ci_high=math.nan)
        entry.summary = s
    sign = -1.0 if mode == "max" else 1.0
    ordered = sorted(
        groups.values(),
        key=lambda g: (
            g.summary.n == 0,
            sign * getattr(g.summary, statistic) if g.summary.n else 0.0,
            -g.summary.n,
            g.config_id,
        ),
    )
    if race_max is not None:
        from rlsweep.strategies.racing import RaceEntry, race

        calls = race(
            [
                RaceEntry(cid, tuple(scores[cid]), len(seeds_used[cid]), g.pending, bool(g.pruned or g.skipped))
                for cid, g in groups.items()
            ],
            max_seeds=race_max,
            mode=mode,
        )
        for cid, g in groups.items():
            g.race_reason = calls[cid].reason

    def counted(g: RankedConfig) -> bool:
        return g.summary.n >= min_seeds and (include_pending or not g.pending)

    ranked = [g for g in ordered if counted(g)]
    for i, g in enumerate(ranked, 1):
        g.rank = i
    unranked = [g for g in ordered if not counted(g)]
    return Ranking("configurations", ranked, unranked, statistic, mode, min_seeds, include_pending=include_pending)


def rank_members(
    runs: Sequence[Any], *, mode: Mode = "max", config_id: Callable[[dict[str, Any]], str] | None = None
) -> Ranking:
    """A population's members by their newest generation's value (`lineage.GenerationRun` records).

    Members that reached the newest generation come first (one that is behind has trained fewer
    steps), then by value, then by member number: so the first is `lineage.winner`.
    """
    from rlsweep.analysis.lineage import ancestry, by_member

    entries = []
    for member, own in by_member(runs).items():
        last = own[-1]
        chain = ancestry(runs, last)
        entries.append(
            RankedMember(
                member=member, run=last.number, generation=last.generation, score=last.score, generations=len(own),
                exploits=sum(r.exploited for r in own), values=dict(last.values),
                config_id=config_id(last.values) if config_id else str(member),
                schedule=[{"start": r.start_step, "end": r.end_step, "values": dict(r.values)} for r in chain],
            )
        )  # fmt: skip
    sign = -1.0 if mode == "max" else 1.0
    entries.sort(key=lambda e: (-e.generation, sign * e.score, e.member))
    ranked = [e for e in entries if not math.isnan(e.score)]
    for i, e in enumerate(ranked, 1):
        e.rank = i
    return Ranking("members", ranked, [e for e in entries if math.isnan(e.score)], "last generation", mode)


# ---------------------------------------------------------------------------------- reading runs
def seed_runs(
    trials: Iterable[Any],
    decode: Callable[[Mapping[str, Any]], dict[str, Any]],
    config_id: Callable[[Any], str],
    reduce: str = "last",
    k: int = 3,
    mode: Mode = "max",
) -> list[SeedRun]:
    """rlsweep's runs among Optuna trials, as the ranking reads them."""
    out = []
    for t in trials:
        attrs = t.user_attrs
        if "seed" not in attrs:
            continue  # not a run of rlsweep's
        name = str(getattr(t.state, "name", t.state)).upper()
        score = math.nan
        state: RunState
        if name == "COMPLETE":
            state = "complete"
            score = math.nan if t.value is None else float(t.value)
        elif name == "PRUNED":
            state = "pruned"
            curve = [float(v) for _, v in sorted(t.intermediate_values.items()) if v is not None]
            score = reduce_curve(curve, reduce, k, mode)
        elif name == "FAIL":
            if attrs.get("failure_reason") in states.REQUEUED_REASONS:
                continue  # the machinery cut it; its re-queued copy is the run
            state = "failed"
        else:
            state = "pending"
        out.append(SeedRun(t.number, config_id(t), decode(t.params), int(attrs["seed"]), state, score))
    return out


def queued_runs(handle: Any) -> list[SeedRun]:
    """Seeds that have no trial yet, from the run queue: queued or claimed (pending), or never started
    because their configuration was pruned as a whole (skipped). A slot that has no configuration
    yet (a sampler's next proposal) belongs to none and is left out."""
    out = []
    for row in handle.rows([states.WAITING, states.RUNNING, states.PRUNED]):
        if row.params is None or row.trial_number is not None:
            continue
        values = handle.decode(row.params)
        state: RunState = "skipped" if row.state == states.PRUNED else "pending"
        out.append(SeedRun(-1, _config_id(values), values, handle.seed_for(row.seed_number), state))
    return out


def _config_id(values: dict[str, Any]) -> str:
    from rlsweep.space import config_id

    return config_id(values)


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def fmt(value: Any) -> str:
    """A number as the tables show it: 4 significant digits, "—" for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def interval_text(summary: Summary) -> str:
    if math.isnan(summary.ci_low):
        return "—"
    return f"[{fmt(summary.ci_low)}, {fmt(summary.ci_high)}]"


def values_text(values: Mapping[str, Any], sep: str = ", ") -> str:
    return sep.join(f"{k}={fmt(v)}" for k, v in values.items())


def unranked_line(ranking: Ranking) -> str:
    """`not ranked (fewer than 3 seeds): 0e1f2a (2 seeds, 1 pruned), ...` ('' when nothing is apart)."""
    if not ranking.unranked:
        return ""
    if ranking.kind == "members":
        items = [f"member {e.member} (generation {e.generation})" for e in ranking.unranked]
    else:
        items = [f"{e.config_id} ({_seed_counts(e)})" for e in ranking.unranked]
    return f"not ranked ({ranking.reason}): " + ", ".join(items)


def _seed_counts(e: RankedConfig) -> str:
    parts = [f"{e.summary.n} seed{'' if e.summary.n == 1 else 's'}"]
    parts += [
        f"{n} {word}"
        for n, word in (
            (e.pruned, "pruned"), (e.failed, "failed"), (e.pending, "pending"),
            (e.skipped, "not started: configuration pruned"),
        )
        if n
    ]  # fmt: skip
    return ", ".join(parts)


# ---------------------------------------------------------------------------------- export
def export_best(handle: Any, ranked: Sequence[Any], directory: Path) -> list[Path]:
    """Each entry (configuration, or member's newest values) as a ready-to-run sweep file with its
    values fixed (no markers left), named by its rank."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    base = handle.loaded.to_dict()
    for i, entry in enumerate(ranked, start=1):
        trainer, hyper = handle.space.fill(entry.values)
        data = json.loads(json.dumps(base))
        seeds = entry.summary.n if isinstance(entry, RankedConfig) else 1
        data.update(
            study=f"{handle.name}-best{i}",
            trainer=trainer,
            params=hyper,
            strategy={
                **keys_taken_by("grid", base["strategy"]),
                "name": "grid",
                "runs": None,
                "seeds": max(seeds, 1),
            },
            storage=None,
            artifacts=None,
        )
        data["strategy"].pop("runs")
        if isinstance(entry, RankedConfig):
            s = entry.summary
            what = f"mean {fmt(s.mean)}, IQM {fmt(s.iqm)} over {s.n} seed(s) ({entry.pruned} pruned)"
        else:
            what = f"member {entry.member}, generation {entry.generation}: {fmt(entry.score)} (its newest values, trained statically)"
        header = f"# configuration {entry.config_id} of study {handle.name}: rank {i}, {what}\n"
        path = directory / f"{handle.name}-best{i}.yaml"
        path.write_text(header + yaml.safe_dump(data, sort_keys=False))
        written.append(path)
    return written
