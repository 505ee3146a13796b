"""The orchestration behind `rlsweep run` and `rlsweep.run`: create or resume a study, start workers,
supervise them, and run one grid index in-process. Messages go through `echo`, handed in from above;
nothing here prints. Errors are the typed RlsweepError family the CLI turns into exit codes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rlsweep import states
from rlsweep.config import LoadedSweep
from rlsweep.errors import ConfigError
from rlsweep.storage import again_if_dropped

Echo = Callable[[str], None]
COUNT_ORDER = states.STATES


def silent(message: str) -> None:
    import logging

    logging.getLogger("rlsweep").info(message)


@dataclass
class RunResult:
    """How a sweep invocation ended: `code` is the CLI's exit code (0 done, 1 runs failed, 130 interrupted)."""

    study: str
    url: str
    code: int
    counts: dict[str, int] = field(default_factory=dict)
    started: bool = False  # whether workers were started (False: nothing was left to run)
    line: str = ""  # the progress line at the end


def start_sweep(
    loaded: LoadedSweep,
    *,
    workers: int | None = None,
    storage: str | None = None,
    new: bool = False,
    force: bool = False,
    index: int | None = None,
    progress: TextIO | None = None,
    progress_every: float = 10.0,
    echo: Echo = silent,
    launcher: Any = None,
    resources: dict[str, Any] | None = None,
) -> RunResult:
    """Create or resume the study of `loaded`, run it to the end with `workers` local workers (or one
    grid `index` in this process) and say how it ended."""
    from rlsweep import storage as storage_mod
    from rlsweep.progress import counts as progress_counts
    from rlsweep.strategies import make_strategy
    from rlsweep.study import StudyHandle

    if workers is not None and workers <= 0:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    sweep = loaded.sweep
    url = storage or sweep.storage or storage_mod.default_url(sweep.study)
    if index is not None and sweep.strategy.name != "grid":
        raise ConfigError(
            f"--index needs the grid strategy, the sweep uses '{sweep.strategy.name}'", file=loaded.file, key="strategy.name"
        )
    if new:
        loaded = fresh_name(loaded, url, echo)
        sweep = loaded.sweep
    if index is not None:
        handle = StudyHandle.create_or_load(loaded, url, force=force)
        return run_index(handle, make_strategy(loaded), index, echo)
    n_workers = default_workers(sweep, workers)
    # Workers start now and import their libraries while the study is created; they begin only
    # when `supervise` names the study, and simply exit if anything below fails (bad input: exit 2).
    with standby_workers(sweep, n_workers, launcher) as launcher:
        handle = StudyHandle.create_or_load(loaded, url, force=force)
        strategy = make_strategy(loaded)
        handle.enqueue(strategy.initial_runs())
        handle.reap_lost()
        handle.enqueue(strategy.recover(handle))
        counts = handle.row_counts()
        if not counts.get(states.WAITING, 0) and not counts.get(states.RUNNING, 0):
            from rlsweep.api.children import POPULATION

            look = "lineage" if sweep.strategy.name in POPULATION else "top"
            echo(f"study '{sweep.study}': nothing left to run ({format_counts(counts)}); see 'rlsweep {look} {sweep.study}'")
            say_never_completed(handle, echo)
            return RunResult(sweep.study, url, 1 if counts.get(states.FAILED, 0) else 0, counts)
        # The display's own counts (runs the plan holds but has not queued yet are waiting), so the
        # start line and the display agree.
        shown = progress_counts(counts, strategy.planned()).as_dict()
        echo(f"study '{sweep.study}' in {storage_mod.redact(url)}: {format_counts(shown)}; starting {n_workers} worker(s)")
        return supervise(
            handle, n_workers, progress=progress, progress_every=progress_every, echo=echo, launcher=launcher, resources=resources
        )


@contextmanager
def standby_workers(sweep: Any, n_workers: int, launcher: Any = None) -> Iterator[Any]:
    """A launcher (local by default) with n workers started in standby; on the way out, those that
    were never launched are let go."""
    from rlsweep.launchers.local import LocalLauncher

    launcher = launcher or LocalLauncher(Path("runs") / sweep.study / "logs")
    launcher.prestart(n_workers, warm_modules(sweep.trainer))
    try:
        yield launcher
    finally:
        launcher.discard()


def default_workers(sweep: Any, workers: int | None = None) -> int:
    """Workers asked for, else the sweep's `strategy.workers`, else one per core."""
    return workers or sweep.strategy.workers or os.cpu_count() or 1


def warm_modules(trainer: dict[str, Any]) -> list[str]:
    """What a worker of this trainer imports first (imported by standby workers ahead of time)."""
    from rlsweep.trainers import get_trainer_class

    try:
        cls = get_trainer_class(str(trainer.get("kind")))
    except ConfigError:
        return []
    return list(cls.warm_modules(trainer))


def supervise(
    handle: Any,
    n_workers: int,
    *,
    progress: TextIO | None = None,
    progress_every: float = 10.0,
    echo: Echo = silent,
    launcher: Any = None,
    resources: dict[str, Any] | None = None,
) -> RunResult:
    """Start workers, follow the study until they exit; Ctrl-C stops them cleanly (code 130)."""
    from rlsweep.progress import Progress
    from rlsweep.strategies import make_strategy

    if launcher is None:
        # Forked standby workers, as for `run`: they inherit this process, so a trainer function
        # defined in a script or notebook (its __main__) is found there too.
        with standby_workers(handle.sweep, n_workers) as local:
            return supervise(
                handle, n_workers, progress=progress, progress_every=progress_every, echo=echo, launcher=local, resources=resources
            )
    launcher.launch(handle.name, handle.url, n_workers, resources)
    display = Progress(
        handle,
        out=progress,
        every=progress_every,
        planned=make_strategy(handle.loaded).planned(),
        workers=n_workers,
        show=progress is not None,
    )
    deaths = WorkerDeaths(handle, launcher, n_workers, echo)
    try:
        with display:
            last = time.monotonic()
            # A connection the server dropped (a restart) is opened again, the outage waited out.
            while again_if_dropped(deaths.keep_going):
                time.sleep(0.05)  # notice the end at once; refresh the counts once a second
                if time.monotonic() - last >= 1.0:
                    again_if_dropped(display.update)
                    last = time.monotonic()
        display.update()
        snap = display.snap()
    except KeyboardInterrupt:
        echo("\ninterrupting: running runs are marked interrupted and will resume on the next 'rlsweep run'")
        launcher.interrupt()
        launcher.wait(timeout=60)
        return RunResult(handle.name, handle.url, 130, handle.row_counts(), started=True)
    codes = launcher.exit_codes()
    crashed = [c for c in codes if c not in (0, None)]
    if crashed:
        echo(f"{len(crashed)} worker(s) exited with an error (codes {codes}); logs in {launcher.log_location()}")
    # A worker that died holding runs had them settled and was replaced: what its runs became is
    # in the counts. One that died holding nothing (it could not start) is an error of its own.
    crashed = [c for i, c in enumerate(codes) if c not in (0, None) and i not in deaths.replaced]
    counts = handle.row_counts()
    unfinished = counts.get(states.WAITING, 0) + counts.get(states.RUNNING, 0)
    echo(f"finished: {snap.line()}")
    if unfinished:
        echo(f"{unfinished} run(s) not finished; 'rlsweep run' again resumes them")
    lost = say_never_completed(handle, echo)
    code = 1 if (snap.counts.failed or crashed or unfinished or lost) else 0
    return RunResult(handle.name, handle.url, code, counts, started=True, line=snap.line())


# A worker that dies of one of these crashed (its run would crash again): the run fails, it is not
# re-run. Any other death (SIGKILL, the OOM killer, a lost node) loses the run, which is re-queued.
CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGSYS")


class WorkerDeaths:
    """The supervisor's watch over its workers: when one dies, its runs are settled at once (failed
    after a crash, re-queued after a kill, not after `lost_after`), and while work is left a new
    worker takes its place. Ends when every worker has exited and nothing is left to claim."""

    def __init__(self, handle: Any, launcher: Any, n_workers: int, echo: Echo) -> None:
        from rlsweep.strategies import make_strategy
        from rlsweep.worker import follow_ups_of

        self.handle, self.launcher, self.n_workers, self.echo = handle, launcher, n_workers, echo
        self.follow_ups = follow_ups_of(make_strategy(handle.loaded), handle)
        self.seen: set[int] = set()
        self.replaced: set[int] = set()  # dead workers whose runs were settled (and who were replaced)
        self.ended_at_restart = -1

    def keep_going(self) -> bool:
        # One look at the workers per call: whether any is alive is read from the same exit codes
        # whose deaths are settled here. (Asking the launcher again could find a worker that died
        # after this look and end the watch with its run unsettled and no replacement started.)
        codes = self.launcher.exit_codes()
        alive = sum(code is None for code in codes)
        replace = 0
        for i, code in enumerate(codes):
            if code is None or i in self.seen:
                continue
            if code != 0 and self._settle(i, code):
                self.replaced.add(i)
                replace += 1
            self.seen.add(i)  # settled: a storage error in _settle leaves it to the next look
        if replace == 0 and not alive and self._work_left():
            # Every worker left while runs were still queued (one re-queued as the others quit);
            # once more only if runs ended since the last time (no loop over an unclaimable run).
            ended = sum(n for state, n in self.handle.row_counts().items() if state in states.ENDED)
            if ended != self.ended_at_restart:
                self.ended_at_restart = ended
                replace = self.n_workers
        if replace:
            waiting = self.handle.row_counts().get(states.WAITING, 0)
            replace = min(replace, max(waiting, 1), self.n_workers)
            started = self.launcher.respawn(self.handle.name, self.handle.url, replace)
            if started:
                self.echo(f"started {started} worker(s) to replace ones that died")
                return True
        return alive > 0

    def _settle(self, i: int, code: int) -> bool:
        """Settle the runs the dead worker i held; True when it held any (it is worth replacing)."""
        import signal

        from rlsweep.study import REAPED
        from rlsweep.study.workers import CRASHED

        prefix = self.launcher.worker_prefix(i)
        if prefix is None:
            return False
        name = signal.Signals(-code).name if code < 0 and -code in signal.valid_signals() else None
        # The launcher saw it end: its runs need not wait `lost_after` for its heartbeat to go stale
        # (a worker on another node is not a process this host can look up).
        self.handle.workers_registry.mark_started_as(prefix, f"{CRASHED}{name}" if name in CRASH_SIGNALS else "lost")
        how = f"killed by {name}" if name else f"exit code {code}"
        held = [r.key for r in self.handle.rows([states.RUNNING]) if str(r.worker or "").startswith(prefix)]
        settled = self.handle.reap_lost(follow_ups=self.follow_ups)
        # Another worker's reaper may have got there first (a process it saw was gone from this host,
        # or its heartbeat gone silent): queued again as lost, or settled as its ended trial says.
        lost = [r.key for r in self.handle.rows() if str(r.worker or "").startswith(prefix) and (r.state == states.LOST or r.attrs.get(REAPED))]
        mine = list(dict.fromkeys([k for k in held if k in settled] + lost))
        if mine:
            self.echo(f"worker {i} died ({how}) holding {', '.join(mine)}: settled")
        return bool(mine)

    def _work_left(self) -> bool:
        self.handle.reap_lost(follow_ups=self.follow_ups)
        return bool(self.handle.row_counts().get(states.WAITING, 0))


def never_completed(handle: Any) -> dict[str, str]:
    """Configurations (a run and its retries) that ended without a result because their workers
    were lost or crashed, with why: the runs `worker.requeue` could not save."""
    ended: dict[str, str] = {}
    good: set[str] = set()
    for row in handle.rows():
        base = row.key.partition("/retry:")[0]
        if row.state in (states.DONE, states.PRUNED, states.WAITING, states.RUNNING):
            good.add(base)
        elif row.state == states.FAILED and row.attrs.get("failure_reason"):
            ended[base] = str(row.attrs["failure_reason"])
    return {k: v for k, v in ended.items() if k not in good}


def say_never_completed(handle: Any, echo: Echo) -> int:
    """Say which configurations never completed and why; returns how many."""
    from collections import Counter

    lost = never_completed(handle)
    if lost:
        why = [f"{n} x {reason}" if n > 1 else reason for reason, n in Counter(lost.values()).items()]
        echo(f"{len(lost)} configuration(s) never completed: {'; '.join(why)}")
    return len(lost)


def run_index(handle: Any, strategy: Any, index: int, echo: Echo = silent) -> RunResult:
    """Train grid run `index` in this process (an array job's task); re-running it never repeats it."""
    from rlsweep.worker import Worker

    # Every index >= 0 names a run, as in policy-params: configuration i mod N, seed number i div N
    # (an array job may run more seeds than the sweep's `seeds`).
    n = len(strategy.configurations())
    if index < 0:
        raise ConfigError(
            f"--index {index}: grid indices start at 0 (index i is configuration i mod {n}, seed number i div {n}); see 'rlsweep grid'"
        )
    from rlsweep.config import MAX_SEED

    if handle.sweep.seed + index // n > MAX_SEED:
        raise ConfigError(
            f"--index {index} is seed number {index // n}: seed {handle.sweep.seed} + {index // n} exceeds {MAX_SEED}, the largest seed; "
            "use a smaller index"
        )
    spec = strategy.run_spec(index)
    handle.enqueue([spec])
    handle.reap_lost()
    rows = {r.key: r for r in handle.rows()}
    row = rows[spec.key]

    def result(code: int) -> RunResult:
        return RunResult(handle.name, handle.url, code, handle.row_counts(), started=True)

    if row.state in (states.DONE, states.PRUNED):
        echo(f"index {index} already finished as run {row.trial_number} ({row.state}); not re-running it")
        return result(0)
    retry = [r for k, r in rows.items() if k.startswith(spec.key + "/retry:") and r.state == states.WAITING]
    key = retry[0].key if row.state != states.WAITING and retry else spec.key
    if rows.get(key) is None or rows[key].state != states.WAITING:
        echo(f"index {index} is {row.state} (worker {row.worker}); not starting it twice")
        return result(1 if row.state == states.FAILED else 0)
    worker = Worker(handle, echo=echo)
    worker.loop(only_key=key, max_runs=1)
    final = {r.key: r for r in handle.rows()}[key]
    return result(0 if final.state in (states.DONE, states.PRUNED) else 1)


def fresh_name(loaded: LoadedSweep, url: str, echo: Echo = silent) -> LoadedSweep:
    """--new: the first free name study-2, study-3 … in this storage."""
    import optuna

    from rlsweep import storage
    from rlsweep.config import load_sweep

    try:
        existing = set(optuna.get_all_study_names(storage.open_optuna_storage(url, create=True)))
    except Exception:
        existing = set()
    name = loaded.sweep.study
    if name not in existing:
        return loaded
    n = 2
    while f"{name}-{n}" in existing:
        n += 1
    data = loaded.to_dict(secrets=True)
    data["study"] = f"{name}-{n}"
    echo(f"study '{name}' exists; starting '{name}-{n}'")
    return load_sweep(data, file=loaded.file)


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in COUNT_ORDER if counts.get(k)) or "no runs yet"
