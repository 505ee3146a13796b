"""Progress of a running study: a rich live panel on a terminal, plain log lines otherwise, the one
set of counts every progress message shows, and the time left estimated from finished runs."""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rlsweep import states
from rlsweep.errors import ConfigError
from rlsweep.study import StudyHandle


@dataclass(frozen=True)
class Counts:
    """Runs by state as every progress message shows them (start line, display, end line)."""

    waiting: int
    running: int
    done: int
    pruned: int
    failed: int

    @property
    def finished(self) -> int:
        return self.done + self.pruned + self.failed

    @property
    def total(self) -> int:
        return self.finished + self.running + self.waiting

    def as_dict(self) -> dict[str, int]:
        return {
            states.WAITING: self.waiting,
            states.RUNNING: self.running,
            states.DONE: self.done,
            states.PRUNED: self.pruned,
            states.FAILED: self.failed,
        }


def counts(rows: Mapping[str, int], planned: int | None = None) -> Counts:
    """The queue's rows by state, with the runs the plan holds but has not queued yet counted as
    waiting (a sampler queues runs a few at a time). Lost and interrupted rows are not counted:
    their requeued copies are waiting or running, and the plan caps the total."""
    running, done = rows.get(states.RUNNING, 0), rows.get(states.DONE, 0)
    pruned, failed = rows.get(states.PRUNED, 0), rows.get(states.FAILED, 0)
    waiting = rows.get(states.WAITING, 0)
    if planned:
        waiting = max(waiting, planned - running - done - pruned - failed)
    return Counts(waiting, running, done, pruned, failed)


# ---------------------------------------------------------------- time left


@dataclass(frozen=True)
class RunTime:
    """A run's wall time (so far, for a running run), the last step it reported, whether it was
    pruned, (for a running run) how many seconds into the run it reported that step, and its
    configuration's updates per step (`Work`; None: not known)."""

    seconds: float
    steps: int
    pruned: bool = False
    reported: float = 0.0
    work: float | None = None


@dataclass(frozen=True)
class Pruning:
    """Where a pruner checks a run and how likely a run passes one check: the prior for how far a
    run goes before finished runs say so."""

    checks: tuple[int, ...]  # environment steps at which a run may be pruned
    survival: float  # chance of passing one check
    startup: int = 0  # the first this many runs are never pruned
    seeds: int = 1  # runs judged as one configuration (its seeds, pruned together)


def pruning_of(sweep: Any) -> Pruning | None:
    """The prior for the sweep's pruner (None: runs are not pruned, they take their budget or stop
    at a success gate). Median prunes about half at each check, percentile p its lowest p%, ASHA and
    Hyperband keep 1 in reduction_factor at each rung. With k seeds a configuration is judged at each
    seed's report, so a run passes a check with the k-th power of that chance."""
    s = sweep.strategy
    kwargs = dict(getattr(s, "pruner_kwargs", {}) or {})
    every, budget = int(sweep.eval.every), int(sweep.trainer.get("timesteps", 0) or 0)
    if s.pruner in ("none", None) or budget <= 0:
        return None
    seeds = s.first_seeds if s.max_seeds > 1 else 1
    evals = tuple(range(every, budget, every))
    if s.pruner in ("median", "percentile"):
        warmup = int(kwargs.get("n_warmup_steps", every))
        survival = 0.5 if s.pruner == "median" else 1.0 - float(kwargs.get("percentile", 25.0)) / 100.0
        # Each seed's report is judged (its configuration's mean so far), and a configuration
        # pruned at one seed's report stops all its seeds: a run passes a check only if every
        # seed's judgment passes it.
        survival **= seeds
        # The pruner waits for n_startup_trials finished trials; with several seeds it judges
        # configurations, so it waits for that many configurations' seeds.
        startup = int(kwargs.get("n_startup_trials", 5)) * seeds
        return Pruning(tuple(c for c in evals if c >= warmup), survival, startup, seeds)
    eta = float(kwargs.get("reduction_factor", 3 if s.pruner == "hyperband" else 4))
    rung, rungs = float(kwargs.get("min_resource", every)), []
    while rung < budget:
        rungs.append(int(rung))
        rung *= eta
    return Pruning(tuple(rungs), 1.0 / eta, seeds=seeds)


def stops(pruning: Pruning, cap: float) -> list[tuple[float, float]]:
    """Where a run stops under the pruning prior, as (steps, probability): cut at a check with the
    chance of passing the ones before and failing it, or gone on to `cap`."""
    alive, out = 1.0, []
    for check in pruning.checks:
        if check >= cap:
            break
        out.append((float(check), alive * (1.0 - pruning.survival)))
        alive *= pruning.survival
    return [*out, (float(cap), alive)]


class Durations:
    """A weighed pool of run durations to draw the runs to come from: (seconds, weight, steps)
    atoms, steps being the last step each run went to (0: not known)."""

    def __init__(self, atoms: Sequence[tuple[float, float, float]]) -> None:
        kept = sorted(a for a in atoms if a[1] > 0)
        self.seconds = [s for s, _, _ in kept]
        self.below = list(itertools.accumulate((w for _, w, _ in kept), initial=0.0))  # weight before each
        self.mean = sum(s * w for s, w, _ in kept) / self.below[-1]
        by_steps = sorted((n, w) for _, w, n in kept if n > 0)
        self.steps = [n for n, _ in by_steps]
        self.steps_below = list(itertools.accumulate((w for _, w in by_steps), initial=0.0))

    def draw(self, rng: random.Random, past: float = 0.0, pace: float = 1.0) -> float:
        """Seconds a run lasts, or, for a run `past` seconds in, the seconds it has left: drawn from
        the durations longer than that; a run already longer than all of them ends soon (a tenth of
        a run). The atoms are in steps at the fitted cost (`fit_pace`) and a run costs `pace`
        seconds per step; both 1.0 when every run is taken to cost the same."""
        first = bisect.bisect_right(self.seconds, past / pace) if past > 0 else 0
        if first == len(self.seconds):
            return 0.1 * self.mean * pace
        return self.seconds[_pick(self.below, first, rng)] * pace - past

    def draw_left(self, rng: random.Random, run: RunTime, pace: float = 1.0) -> float:
        """Seconds left to a running run: if it has reported a step, the step it stops at is drawn
        from the runs that went past that step, and it gets there at its own pace so far (a run's
        cost per step depends on its configuration); otherwise `draw` from its time so far."""
        first = bisect.bisect_right(self.steps, run.steps)
        if run.steps <= 0 or run.reported <= 0 or first == len(self.steps):
            return self.draw(rng, run.seconds, pace)
        stop = self.steps[_pick(self.steps_below, first, rng)]
        pace = run.reported / run.steps
        return max(0.0, run.reported + (stop - run.steps) * pace - run.seconds)


def _pick(below: Sequence[float], first: int, rng: random.Random) -> int:
    """The index of an atom drawn by weight from atom `first` on; `below`: the weight before each
    atom, and the total last."""
    low, high = below[first], below[-1]
    pick = bisect.bisect_right(below, low + rng.random() * (high - low)) - 1
    return min(max(pick, first), len(below) - 2)


def eta_seconds(
    finished: Sequence[RunTime],
    running: Sequence[RunTime],
    waiting: int,
    workers: int,
    *,
    budget: int = 0,
    pruning: Pruning | None = None,
    busy: float = 1.0,
    draws: int = 200,
    unseen: Sequence[float] = (),
) -> float | None:
    """Seconds until the last run ends, from the runs that have finished (None before the first);
    `finished` in the order the runs were started.

    The runs to come last as long as finished runs did: each duration is drawn from theirs, the
    runs are handed to `workers` workers in turn (each taking the next when it is free), and the
    estimate is the mean end over `draws` such draws. Drawing durations, not using their mean,
    keeps the long runs a pruner lets through: the last of them decides when the sweep ends.
    Under a pruner, the first `startup` runs go on unjudged (drawn from those of them that have
    finished); a later run is drawn from the later runs that have finished and from the prior
    (`stops`): a finished run that went on, cut where the pruner may cut it, at its own cost per
    step. The prior weighs as two configurations: 2 x `seeds` runs, as a configuration's seeds stop
    together, so they are one sign of where the pruner stops, not one each. A running run that has
    reported an evaluation goes on at its own pace to a last step drawn from the runs that went
    past its step (`Durations.draw_left`: its configuration's cost per step, not the pool's); one
    that has not is drawn from the durations longer than its own so far. `busy` (`busy_share`) is
    the share of the workers' time spent in runs: time between runs (claims, bookkeeping, a
    population waiting for its generation) stretches the estimate.

    Where runs say their configuration's updates per step (`RunTime.work`) and `unseen` holds that
    of configurations drawn from the search space, a run's cost per step is fitted as a + b x work
    (`fit_pace`) and each duration drawn is taken at the cost of the run it stands for: its own for
    a running run; for a waiting run of the pruner's start-up, whose configuration is drawn at
    random, one of `unseen` (the first runs to finish are not taken as what the whole space
    costs); for a later one, one of the finished runs' (the sampler chooses from what it saw).
    """
    if not finished:
        return None if waiting or running else 0.0
    pace = fit_pace(finished, running) if unseen else None
    unit = pace or (lambda work: 1.0)
    works = [r.work for r in finished]
    observed = [(r.seconds / unit(r.work), 1.0, float(r.steps)) for r in finished]
    whole = judged = Durations(observed)
    startup = 0
    if pruning is not None:
        startup = pruning.startup
        whole = Durations(observed[:startup] or observed)
        sized = [r for r in finished if r.steps > 0]
        full = [r for r in sized if not r.pruned] or sized
        prior = [
            (r.seconds / unit(r.work) * steps / r.steps, 2.0 * pruning.seeds * p / len(full), steps)
            for r in full
            for steps, p in stops(pruning, float(r.steps))
        ]
        judged = Durations(prior + observed[startup:] or observed)
    # A running run is of the kind the runs finished before it are.
    now = judged if len(finished) >= startup else whole
    unjudged = max(0, startup - len(finished) - len(running))
    rng = random.Random(0)
    n = max(5, min(draws, 20000 // (waiting + len(running) + 1)))  # fewer draws of a long queue
    total = 0.0
    for _ in range(n):
        free = sorted(now.draw_left(rng, r, unit(r.work)) for r in running)
        end = max(free, default=0.0)
        free += [0.0] * max(workers - len(free), 0)
        heapq.heapify(free)
        for i in range(waiting):
            # A start-up run's configuration is drawn at random (the sampler has not started
            # choosing); a later one is chosen from what the sampler saw, at the cost of those.
            cost = unit(rng.choice(unseen if i < unjudged else works)) if pace else 1.0
            stop = heapq.heappop(free) + (whole if i < unjudged else judged).draw(rng, pace=cost)
            heapq.heappush(free, stop)
            end = max(end, stop)
        total += end
    return total / n / min(1.0, max(busy, 0.05))


def fit_pace(finished: Sequence[RunTime], running: Sequence[RunTime]) -> Callable[[float | None], float] | None:
    """Seconds per step as a + b x work, fitted by least squares on the runs' paces so far (a
    finished run's seconds per step, a running run's to its last report): None while they do not
    show a cost that grows with the work (fewer than two kinds of configuration, a slope not above
    0, or a run whose work is not known). The intercept is kept above a tenth of the fastest pace."""
    if any(r.work is None for r in (*finished, *running)):
        return None
    points = [(float(r.work or 0.0), r.seconds / r.steps) for r in finished if r.steps > 0]
    points += [(float(r.work or 0.0), r.reported / r.steps) for r in running if r.steps > 0 and r.reported > 0]
    works, paces = [w for w, _ in points], [p for _, p in points]
    if len(set(works)) < 2:
        return None
    mean_w, mean_p = sum(works) / len(works), sum(paces) / len(paces)
    spread = sum((w - mean_w) ** 2 for w in works)
    slope = sum((w - mean_w) * (p - mean_p) for w, p in zip(works, paces, strict=True)) / spread
    if slope <= 0:
        return None
    base = max(mean_p - slope * mean_w, 0.1 * min(paces))
    return lambda work: base + slope * float(work or 0.0)


def busy_share(finished: Sequence[RunTime], running: Sequence[RunTime], workers: int, wall: float) -> float:
    """The share of `workers` workers' time over the last `wall` seconds spent inside the runs
    given (those started in that time): 1.0 when runs follow each other without a gap."""
    if wall <= 0 or workers <= 0 or not (finished or running):
        return 1.0
    inside = sum(r.seconds for r in finished) + sum(r.seconds for r in running)
    return min(1.0, inside / (workers * wall))


Reports = Mapping[int, Sequence[tuple[int, float]]]  # trial number -> (step, wall time) of its evaluations


def run_times(
    trials: Sequence[Any], now: dt.datetime | None = None, reports: Reports | None = None, work: Work | None = None
) -> tuple[list[RunTime], list[RunTime]]:
    """(finished, running) run times of a study's trials at `now`, each in the order the runs
    started; a running run's last evaluation before `now` is taken from `reports`, each run's
    updates per step from `work`."""
    from optuna.trial import TrialState

    now = now or dt.datetime.now()
    stamp = now.timestamp()
    finished, running = [], []
    started = (t for t in trials if t.datetime_start is not None and t.datetime_start <= now)
    for t in sorted(started, key=lambda t: t.datetime_start):
        steps = int(max(t.intermediate_values)) if t.intermediate_values else 0
        cost = work.of(t.params) if work else None
        if t.datetime_complete is not None and t.datetime_complete <= now:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
            finished.append(RunTime(seconds, steps, t.state == TrialState.PRUNED, work=cost))
        elif t.state == TrialState.RUNNING or t.datetime_complete is not None:
            # Running (or, replayed at an earlier `now`, still running then).
            seen = [r for r in (reports or {}).get(t.number, ()) if r[1] <= stamp]
            step, wall = max(seen, default=(0, 0.0))
            began = t.datetime_start.timestamp()
            reported = max(0.0, wall - began) if seen else 0.0
            running.append(RunTime(stamp - began, int(step), reported=reported, work=cost))
    return finished, running


class Work:
    """Each configuration's updates per environment step, from the trainer's `updates_per_step`
    hook, for the time left: `of(params)` for a run's (stored) params, `unseen` for configurations
    drawn at random from the search space (the runs not yet started). Empty when the trainer does
    not say, when nothing is searched, or when the configurations all cost the same."""

    def __init__(self, handle: StudyHandle, draws: int = 256) -> None:
        from rlsweep.trainers import get_trainer_class

        self.handle = handle
        self.cached: dict[str, float | None] = {}
        self.unseen: list[float] = []
        try:
            self.hook = get_trainer_class(str(handle.sweep.trainer.get("kind"))).updates_per_step
        except ConfigError:  # a trainer that cannot be imported here: every run costs the same
            return
        import numpy as np

        from rlsweep.strategies.population import Param

        params, rng = [Param.of(p) for p in handle.space.params], np.random.default_rng(0)
        drawn = [self._work({p.name: p.sample(rng) for p in params}) for _ in range(draws if params else 0)]
        if drawn and None not in drawn and len(set(drawn)) > 1:
            self.unseen = [float(w) for w in drawn if w is not None]

    def of(self, params: Mapping[str, Any]) -> float | None:
        """A run's updates per step from its trial's params (as Optuna stores them)."""
        if not self.unseen:
            return None
        key = json.dumps(params, sort_keys=True, default=str)
        if key not in self.cached:
            try:
                self.cached[key] = self._work(self.handle.decode(params))
            except (ValueError, TypeError):  # a trial from another version of the space: not known
                self.cached[key] = None
        return self.cached[key]

    def _work(self, values: Mapping[str, Any]) -> float | None:
        settings, hyperparams = self.handle.space.fill(values)
        return self.hook(settings, hyperparams)


def reports_of(handle: StudyHandle, numbers: Sequence[int] | None = None) -> dict[int, list[tuple[int, float]]]:
    """The (step, wall time) of each evaluation of the runs numbered (all: None), for `run_times`."""
    out: dict[int, list[tuple[int, float]]] = {}
    if numbers is None or numbers:
        for row in handle.metrics(numbers, [handle.sweep.objective.metric]):
            out.setdefault(int(row["trial_number"]), []).append((int(row["step"]), float(row["wall_time"])))
    return out


def time_left(
    trials: Sequence[Any],
    sweep: Any,
    waiting: int,
    workers: int,
    *,
    since: dt.datetime,
    now: dt.datetime | None = None,
    reports: Reports | None = None,
    work: Work | None = None,
) -> float | None:
    """The display's time left: `eta_seconds` on a study's trials at `now`, with how busy the
    workers have been since `since` (this session's start: an earlier session's runs and the pause
    since then say nothing about it) and, given `work`, each configuration's cost per step.
    bench/eta.py replays it on finished studies."""
    now = now or dt.datetime.now()
    finished, running = run_times(trials, now, reports, work)
    session = [t for t in trials if t.datetime_start is not None and since <= t.datetime_start <= now]
    busy = 1.0
    if session:
        wall = (now - min(t.datetime_start for t in session)).total_seconds()
        busy = busy_share(*run_times(session, now), workers, wall)
    return eta_seconds(
        finished,
        running,
        waiting,
        workers,
        budget=int(sweep.trainer.get("timesteps", 0) or 0),
        pruning=pruning_of(sweep),
        busy=busy,
        unseen=work.unseen if work else (),
    )


# ---------------------------------------------------------------- the display


@dataclass
class Snapshot:
    counts: Counts
    best: float | None
    elapsed: float
    rate: float  # finished runs per minute
    eta_s: float | None = None  # seconds left (None: not known yet)

    def eta(self) -> str:
        if not (self.counts.waiting or self.counts.running):
            return "0s"
        return "?" if self.eta_s is None else _duration(self.eta_s)

    def line(self) -> str:
        c = self.counts
        best = "-" if self.best is None else f"{self.best:.4g}"
        return (
            f"{c.finished}/{c.total} finished (done {c.done}, pruned {c.pruned}, failed {c.failed}), "
            f"running {c.running}, waiting {c.waiting} | best {best} | {self.rate:.1f} runs/min | "
            f"elapsed {_duration(self.elapsed)} | eta {self.eta()}"
        )


def snapshot(
    handle: StudyHandle,
    started: float,
    finished_at_start: int,
    planned: int | None = None,
    workers: int | None = None,
    work: Work | None = None,
) -> Snapshot:
    from optuna.trial import TrialState

    now = counts(handle.row_counts(), planned)
    elapsed = time.time() - started
    rate = 60.0 * (now.finished - finished_at_start) / elapsed if elapsed > 0 else 0.0
    n_workers = max(workers or 0, now.running, 1)
    trials = handle.get_trials(deepcopy=False)
    eta = time_left(
        trials,
        handle.sweep,
        now.waiting,
        n_workers,
        since=dt.datetime.fromtimestamp(started),
        reports=reports_of(handle, [t.number for t in trials if t.state == TrialState.RUNNING]),
        work=work,
    )
    return Snapshot(now, best_value(handle), elapsed, rate, eta)


def best_value(handle: StudyHandle) -> float | None:
    try:
        return float(handle.study.best_value)
    except (ValueError, RuntimeError):
        return None


class Progress:
    def __init__(
        self,
        handle: StudyHandle,
        out: TextIO | None = None,
        every: float = 10.0,
        planned: int | None = None,
        workers: int | None = None,
        show: bool = True,
    ) -> None:
        self.handle = handle
        self.planned = planned
        self.workers = workers
        self.out = out or sys.stdout
        self.every = every
        self.started = time.time()
        self.finished_at_start = counts(handle.row_counts()).finished
        self.show = show
        self.live: Any = None
        self.last_counts: Counts | None = None
        self.last_print = 0.0
        self.failing = False  # the last refresh failed (said once, until one succeeds)
        self.work: Work | None = None  # each configuration's cost per step, for the time left

    def __enter__(self) -> Progress:
        if self.show and self.out.isatty():
            from rich.live import Live

            self.live = Live(self._render(self.snap()), refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self._refresh(lambda: self.live.update(self._render(self.snap())))
            self.live.__exit__(*exc)

    def snap(self) -> Snapshot:
        if self.work is None:
            self.work = Work(self.handle)
        return snapshot(self.handle, self.started, self.finished_at_start, self.planned, self.workers, self.work)

    def update(self) -> None:
        """Refresh the display: the live panel, or a plain line when the counts changed or `every` s
        passed. Only then is the whole snapshot (every trial, for the time left) read: the queue's
        counts alone are cheap enough to read every second, also when nothing is shown. A refresh
        that fails (a database busy or out of reach for a moment) is said once and skipped: the
        display is a view, and the sweep goes on without it."""
        self._refresh(self._update)

    def _refresh(self, show: Callable[[], None]) -> None:
        try:
            show()
        except Exception as exc:  # whatever breaks a view must not end the sweep it shows
            if not self.failing:
                cause = getattr(exc, "orig", None) or exc  # a database error without its SQL
                print(
                    f"[{self.handle.name}] progress not shown ({type(cause).__name__}: {cause}); "
                    "the runs go on, and the display comes back once the study can be read",
                    file=sys.stderr,
                    flush=True,
                )
            self.failing = True
        else:
            self.failing = False

    def _update(self) -> None:
        if self.live is not None:
            self.live.update(self._render(self.snap()))
            return
        if not self.show:
            return
        now = time.time()
        if (
            counts(self.handle.row_counts(), self.planned) == self.last_counts
            and now - self.last_print <= self.every
        ):
            return
        snap = self.snap()
        print(f"[{self.handle.name}] {snap.line()}", file=self.out, flush=True)
        self.last_counts, self.last_print = snap.counts, now

    def _render(self, snap: Snapshot) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        c = snap.counts
        table = Table.grid(padding=(0, 2))
        table.add_row(
            f"[bold]{self.handle.name}[/]",
            ProgressBar(total=max(c.total, 1), completed=c.finished, width=40),
            f"{c.finished}/{c.total}",
        )
        best = "-" if snap.best is None else f"{snap.best:.4g}"
        table.add_row(
            f"done {c.done}  pruned {c.pruned}  failed {c.failed}",
            f"running {c.running}  waiting {c.waiting}",
            f"best {best}",
        )
        table.add_row(f"{snap.rate:.1f} runs/min", f"elapsed {_duration(snap.elapsed)}", f"eta {snap.eta()}")
        return table


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
