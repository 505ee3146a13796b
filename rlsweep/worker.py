"""The worker loop: claim -> train -> report -> stop/prune -> finish, until the study has no work.

A worker needs nothing but the storage: the sweep is read from the study. Workers never talk to
each other; a heartbeat thread keeps this worker's row fresh and, on its own clock, reaps runs of
workers that went silent.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rlsweep import states
from rlsweep.errors import TrainerError
from rlsweep.storage import again_if_dropped, cut_off
from rlsweep.strategies import make_strategy
from rlsweep.strategies.seeds import (
    CONFIG_PRUNED_ATTR,
    SKIPPED_ATTR,
    ConfigSeeds,
    config_pruned_reason,
    judge_configuration,
    read_configs,
    runs_as_configs,
    sibling_metrics,
)
from rlsweep.strategies.stopping import GateSchedule, make_pruner
from rlsweep.study import FollowUps, QueueRow, RunSpec, RunTrial, StudyHandle
from rlsweep.study.attrs import CHECKPOINT_STEP, CHECKPOINTS_ATTR
from rlsweep.study.workers import CRASHED
from rlsweep.threads import limit_threads
from rlsweep.trainers import get_trainer_class
from rlsweep.trainers._base import Decision, RunContext

log = logging.getLogger("rlsweep.worker")


# Test-only fault injection: with RLSWEEP_TEST_EXIT_AT set to "claimed" (queue row claimed, no
# trial yet), "created" (trial created), "prepared" (trial created, signals no longer deferred,
# training not begun) or "finished" (trial ended, queue row still running), the worker process
# dies at that point as if SIGKILLed. The fault tests use it to hit exact windows.
# RLSWEEP_TEST_SIGINT_AT names a point where the worker sends itself SIGINT instead (a Ctrl-C
# landing in exactly that window).
_EXIT_AT = os.environ.get("RLSWEEP_TEST_EXIT_AT")
_SIGINT_AT = os.environ.get("RLSWEEP_TEST_SIGINT_AT")


def _test_exit(point: str) -> None:
    if _EXIT_AT == point:
        os._exit(137)
    if _SIGINT_AT == point:
        os.kill(os.getpid(), signal.SIGINT)


class _Flag:
    """A flag that a signal handler sets. Not a threading.Event: its `set` takes a lock, and a
    second signal whose handler runs while the first holds that lock deadlocks the main thread (a
    worker hung for good after SIGTERM and SIGINT in quick succession, its heartbeat keeping its run
    alive). Reading and writing one attribute needs no lock."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


# Set once SIGINT/SIGTERM reached this process through `handle_interrupts`: a KeyboardInterrupt
# then means "stop cleanly" (the run is queued again); without it, the trainer raised its own.
SIGNALLED = _Flag()
_HANDLERS: list[bool] = []  # non-empty once `handle_interrupts` ran in this process
_DEFERRED: list[bool] = []  # non-empty while a stop signal is only noted (see signals_deferred)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """From a claim to the start of training, a Ctrl-C or SIGTERM only sets SIGNALLED: the caller
    then settles the claimed runs as interrupted, knowing their trials. (Raised at once, it could
    leave a trial just created RUNNING until the next `rlsweep run` reaped it.)"""
    _DEFERRED.append(True)
    try:
        yield
    finally:
        _DEFERRED.pop()


def handle_interrupts() -> Callable[[], None]:
    """The first SIGINT or SIGTERM stops the worker cleanly (KeyboardInterrupt, its run settled as
    interrupted); later ones must not break that cleanup. Main thread only. Returns a function
    that puts the previous handlers back (for a worker loop run inside another program)."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}

    def restore() -> None:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        _HANDLERS.clear()
        SIGNALLED.clear()

    def once(signum: int, frame: Any) -> None:
        # Ignore the next ones first: one already delivered then finds no handler to run.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        SIGNALLED.set()
        if not _DEFERRED:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, once)
    signal.signal(signal.SIGTERM, once)
    signal.signal(signal.SIGUSR1, _timeout_signal)
    _HANDLERS.append(True)
    return restore


class RunTimeout(BaseException):  # noqa: N818 - not an Exception: a trainer's `except Exception` must not swallow it
    """Raised in the training thread when a run passed `worker.run_timeout` or `idle_timeout`."""


_EXPIRED: list[str] = []  # the reason of the watchdog that fired (read by the SIGUSR1 handler)


def _timeout_signal(signum: int, frame: Any) -> None:
    if _EXPIRED:
        raise RunTimeout(_EXPIRED[-1])


class Watchdog(threading.Thread):
    """Stops a run that trains longer than `run_timeout` s or goes `idle_timeout` s without a
    report: SIGUSR1 to the training (main) thread raises RunTimeout there, which interrupts even a
    `time.sleep`. If the run has still not ended `grace` s later (stuck in C code), `hard_stop` is
    called (a worker process records the reason and exits; its launcher replaces it)."""

    def __init__(self, run_timeout: float | None, idle_timeout: float | None, last_report: Callable[[], float],
                 hard_stop: Callable[[str], None] | None, grace: float = 30.0) -> None:  # fmt: skip
        super().__init__(daemon=True, name="rlsweep-watchdog")
        self.run_timeout, self.idle_timeout = run_timeout, idle_timeout
        self.last_report, self.hard_stop, self.grace = last_report, hard_stop, grace
        self.started_at = time.monotonic()
        self.done = threading.Event()
        self.reason: str | None = None

    @classmethod
    def for_run(cls, worker: Worker, last_report: Callable[[], float]) -> Watchdog | None:
        settings = worker.sweep.worker
        if settings.run_timeout is None and settings.idle_timeout is None:
            return None
        if threading.current_thread() is not threading.main_thread() or not _HANDLERS:
            log.warning("worker.run_timeout/idle_timeout need the worker loop in the main thread; not enforced here")
            return None
        dog = cls(settings.run_timeout, settings.idle_timeout, last_report, worker.hard_stop)
        dog.start()
        return dog

    def expired(self) -> str | None:
        now = time.monotonic()
        if self.run_timeout is not None and now - self.started_at >= self.run_timeout:
            return f"stopped by worker.run_timeout: still training after {self.run_timeout:g} s"
        if self.idle_timeout is not None and now - max(self.started_at, self.last_report()) >= self.idle_timeout:
            return f"stopped by worker.idle_timeout: no report for {self.idle_timeout:g} s"
        return None

    def run(self) -> None:
        while not self.done.wait(0.2):
            reason = self.expired()
            if reason is None:
                continue
            self.reason = reason
            _EXPIRED.append(reason)
            main = threading.main_thread().ident
            if main is not None:
                signal.pthread_kill(main, signal.SIGUSR1)
            if not self.done.wait(self.grace) and self.hard_stop is not None:
                self.hard_stop(reason)
            return

    def stop(self) -> None:
        self.done.set()
        _EXPIRED.clear()


def follow_ups_of(strategy: Any, handle: StudyHandle) -> FollowUps:
    """What the reaper queues after a run it settled for a dead worker: the strategy's follow-ups
    to a finished run, or to a failed one (trial None: it failed before or without its trial)."""

    def follow_ups(row: QueueRow, trial: Any) -> list[RunSpec]:
        from optuna.trial import TrialState

        if trial is None or trial.state == TrialState.FAIL:
            return strategy.on_fail(handle, row, trial)
        return strategy.on_finish(handle, row, trial)

    return follow_ups


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Heartbeat(threading.Thread):
    """Beats every `interval` seconds and reaps lost runs of other workers every few beats."""

    def __init__(self, handle: StudyHandle, worker: str, interval: float, follow_ups: FollowUps | None = None) -> None:
        super().__init__(daemon=True, name="rlsweep-heartbeat")
        self.handle, self.worker, self.interval = handle, worker, interval
        self.follow_ups = follow_ups
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.handle.heartbeat(self.worker)
                # every beat: a silent worker's run is settled within lost_after + one heartbeat
                self.handle.reap_lost(follow_ups=self.follow_ups)
            except Exception as exc:  # a storage hiccup must not kill training; the next beat retries
                log.warning("heartbeat failed: %s", exc)


class Worker:
    def __init__(self, handle: StudyHandle, worker_id: str | None = None, *, echo: Callable[[str], None] | None = None) -> None:
        self.handle = handle
        self.sweep = handle.sweep
        self.id = worker_id or new_worker_id()
        self.echo = echo or (lambda message: log.info(message))
        self.strategy = make_strategy(handle.loaded)
        trainer_cls = get_trainer_class(str(self.sweep.trainer["kind"]))
        self.trainer_cls = trainer_cls
        self.batch_size = max(1, int(trainer_cls.batch_size_for(self.sweep.trainer)))
        self.pruner = None
        if self.sweep.strategy.pruner != "none":
            budget = int(self.sweep.trainer.get("timesteps", self.sweep.trainer.get("steps", 0)) or 0)
            self.pruner = make_pruner(self.sweep.strategy, self.sweep.eval.every, budget)
        # With several seeds per configuration, pruners and gates judge the configuration (its mean
        # over the seeds that reached a step), and a pruned configuration starts no more seeds.
        self.judges_configs = self.sweep.strategy.max_seeds > 1
        self.finished = 0
        self.own_process = False  # set by `serve`: this process is the worker and may exit on its own
        self._current: list[QueueRow] = []  # the rows being trained now (for `hard_stop`)

    def loop(self, *, only_key: str | None = None, max_runs: int | None = None, poll: float = 1.0) -> int:
        """Train runs until none is left; returns how many this worker finished. While others run
        and more work may appear, it polls the queue from every 50 ms, backing off to `poll` s."""
        limit_threads()
        restore = None
        if not _HANDLERS and threading.current_thread() is threading.main_thread():
            restore = handle_interrupts()  # tell a Ctrl-C from a trainer's own KeyboardInterrupt; timeouts
        self.handle.register_worker(self.id)
        beat = Heartbeat(self.handle, self.id, self.sweep.worker.heartbeat, self.follow_ups)
        beat.start()
        state = "stopped"  # the worker registry's state, not a run's
        wait = 0.05
        try:
            while max_runs is None or self.finished < max_runs:
                with signals_deferred():
                    # Read again after a dropped connection; a claim whose commit's answer was lost
                    # reads whether it took its rows (queue.claim), so none is taken twice.
                    rows = again_if_dropped(lambda: self._claim(only_key, None if max_runs is None else max_runs - self.finished))
                    if rows:
                        _test_exit("claimed")
                    if SIGNALLED.is_set():  # stopped while claiming: what it took is queued again
                        for row in rows:
                            self.settle(row, None, INTERRUPTED_OUTCOME)
                if SIGNALLED.is_set():
                    raise KeyboardInterrupt
                if not rows:
                    if only_key is not None or not again_if_dropped(self._work_may_appear):
                        break
                    time.sleep(wait)
                    wait = min(wait * 2, poll)
                    continue
                wait = 0.05
                if len(rows) == 1 and self.batch_size == 1:
                    self.run_one(rows[0])
                else:
                    self.run_batch(rows)
                self.finished += len(rows)
        except KeyboardInterrupt:
            state = "interrupted"  # the worker registry's state
            raise
        finally:
            beat.stopped.set()
            if restore is not None:
                restore()
            try:
                self.handle.heartbeat(self.id, state=state)
            except Exception:
                pass
        return self.finished

    def _claim(self, only_key: str | None, room: int | None) -> list[QueueRow]:
        """The next runs to train: one, or up to the trainer's batch size in one transaction."""
        n = self.batch_size if room is None else max(1, min(self.batch_size, room))
        if only_key is not None or n == 1:
            row = self.handle.claim(self.id, key=only_key)
            return [] if row is None else [row]
        return self.handle.claim_batch(self.id, n)

    def _work_may_appear(self) -> bool:
        """Wait while others run: a lost run is queued again, a population queues its next generation."""
        self.handle.reap_lost(follow_ups=self.follow_ups)
        counts = self.handle.row_counts()
        if counts.get(states.WAITING, 0):
            return True
        return bool(counts.get(states.RUNNING, 0)) and self.strategy.expect_more(self.handle)

    def follow_ups(self, row: QueueRow, trial: Any) -> list[RunSpec]:
        """The runs to queue after a run that ended whose worker died before settling it (reaper)."""
        return list(follow_ups_of(self.strategy, self.handle)(row, trial))

    # ------------------------------------------------------------------ one run
    def run_one(self, row: QueueRow) -> str:
        """Prepare, execute and settle one claimed run; returns how it ended ("complete", "pruned",
        "failed", "lost" or "interrupted"). Ctrl-C is re-raised once the run is settled."""
        plan: Prepared | Outcome | None = None
        try:
            with signals_deferred():
                plan = self.prepare(row)
            _test_exit("prepared")
            if SIGNALLED.is_set():  # stopped while preparing: settled below, trial and all
                outcome = INTERRUPTED_OUTCOME
            else:
                outcome = plan if isinstance(plan, Outcome) else self.execute(plan)
        except KeyboardInterrupt:  # stopped outside training (execute settles one in training)
            outcome = INTERRUPTED_OUTCOME
        with signals_deferred():  # a signal now must not leave the run half settled
            ended = self.settle(row, plan if isinstance(plan, Prepared) else None, outcome)
        if outcome.kind == INTERRUPTED or SIGNALLED.is_set():
            raise KeyboardInterrupt
        return ended

    def run_batch(self, rows: list[QueueRow]) -> list[str]:
        """Prepare the claimed runs, train each group of compatible ones in one `train_batch` call and
        settle every run on its own; returns how each ended. Ctrl-C settles the runs not yet trained
        as interrupted (queued again) and is re-raised."""
        plans: list[Prepared | Outcome | None] = [None] * len(rows)
        outcomes: list[Outcome | None] = [None] * len(rows)
        groups: dict[str, list[int]] = {}
        interrupted = False
        try:
            with signals_deferred():
                for i, row in enumerate(rows):
                    plan = plans[i] = self.prepare(row)
                    if isinstance(plan, Outcome):
                        outcomes[i] = plan
                    else:
                        key = repr(self.trainer_cls.batch_group(plan.ctx.config, plan.ctx.hyperparams))
                        groups.setdefault(key, []).append(i)
            _test_exit("prepared")
            interrupted = SIGNALLED.is_set()  # stopped while preparing: none is trained
            for members in groups.values():
                group = [plans[i] for i in members]
                results = (
                    [INTERRUPTED_OUTCOME] * len(group)
                    if interrupted
                    else self.execute_batch([p for p in group if isinstance(p, Prepared)])
                )
                for i, result in zip(members, results, strict=True):
                    outcomes[i] = result
                interrupted = interrupted or any(o.kind == INTERRUPTED for o in results)
        except KeyboardInterrupt:  # stopped outside training: the runs without an ending are queued again
            interrupted = True
        ended = []
        with signals_deferred():  # a signal now must not leave a run half settled
            for row, planned, ending in zip(rows, plans, outcomes, strict=True):
                ending = INTERRUPTED_OUTCOME if ending is None else ending
                ended.append(self.settle(row, planned if isinstance(planned, Prepared) else None, ending))
        if interrupted or SIGNALLED.is_set():
            raise KeyboardInterrupt
        return ended

    def prepare(self, row: QueueRow) -> Prepared | Outcome:
        """Queue row -> its trial (seed recorded first), the follow-up runs and the RunContext; an
        Outcome (failed) when the trial cannot be created."""
        from pathlib import Path

        handle, sweep = self.handle, self.sweep
        seed = handle.seed_for(row.seed_number)
        # On the trial: what a user reads (seed recorded before the run starts). Bookkeeping such as
        # the worker and slot stays in the run queue row; keys starting with "_" are private to it.
        attrs: dict[str, Any] = {"seed": seed, "key": row.key, **{k: v for k, v in row.attrs.items() if not k.startswith("_")}}
        try:
            trial = self.strategy.propose(handle, row, attrs) if row.params is None else handle.create_trial(row.params, attrs)
        except Exception as exc:  # a sampler or storage error loses this run, not the worker
            if cut_off(exc):  # not the run's fault: the worker exits, its run is queued again
                raise
            log.exception("could not create run %s", row.key)
            return Outcome(FAILED, reason=f"could not start: {type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        handle.set_row(row.id, trial_number=trial.number)
        row.trial_number = trial.number
        _test_exit("created")
        values = handle.decode(trial.params)
        handle.enqueue(self.strategy.on_start(handle, row, trial))

        config, hyper = handle.space.fill(values)
        artifact_dir = handle.artifact_dir(trial.number)
        start_checkpoint, start_step = self.strategy.start_from(handle, row)
        budget = self.strategy.budget(row)
        trainer = self.trainer_cls(config)
        resumed = None if start_checkpoint else self._resume_point(row)
        if resumed is not None and budget is None and trainer.budget() > resumed[1]:
            start_checkpoint, start_step = resumed
            budget = trainer.budget() - start_step  # the steps still to train
            handle.set_attr(trial, "resumed_from", {"run": row.attrs.get("retry_of"), "checkpoint": start_checkpoint, "step": start_step})
        reporter = Reporter(self, trial, start_step, in_batch=self.batch_size > 1, seed_number=row.seed_number)
        if resumed is not None and start_checkpoint == resumed[0]:
            self._carry_curve(row, trial, reporter, start_step)
        ctx = RunContext(
            study=handle.name,
            number=trial.number,
            config=config,
            hyperparams=hyper,
            params=values,
            seed=seed,
            budget=budget if budget is not None else trainer.budget(),
            eval_every=sweep.eval.every,
            eval_episodes=sweep.eval.episodes,
            objective=sweep.objective.metric,
            artifact_dir=artifact_dir,
            report=reporter,
            start_checkpoint=Path(start_checkpoint) if start_checkpoint else None,
            start_step=start_step,
            checkpoint_every=sweep.checkpoint.every,
            replay_buffer=sweep.checkpoint.replay_buffer,
            record_trajectories=sweep.record.trajectories,
            record_every=sweep.record.every,
            record_batches=sweep.record.batches,
            eval_deterministic=sweep.eval.deterministic,
            extra=dict(row.attrs),
            record=lambda key, value: handle.set_attr(trial, key, value),
        )
        self.echo(f"run {trial.number} ({row.key}) seed {seed}: {_short(values)}")
        return Prepared(row, trial, ctx, trainer, reporter)

    def _resume_point(self, row: QueueRow) -> tuple[str, int] | None:
        """Where a run queued again after an interruption or a lost worker (a preemption, a time
        limit, Ctrl-C) can continue: the last periodic checkpoint its previous attempt recorded,
        for a trainer that continues checkpoints. None: it starts from scratch."""
        from pathlib import Path

        previous = row.attrs.get("retry_of")
        if previous is None or row.attrs.get("retry_reason") not in states.REQUEUED_REASONS or not self.trainer_cls.records_checkpoints:
            return None
        try:
            saved = list(self.handle.trial(int(previous)).user_attrs.get(CHECKPOINTS_ATTR) or [])
        except Exception:  # its trial is gone or unreadable: start over
            return None
        for path in reversed(saved):
            step = CHECKPOINT_STEP.search(Path(str(path)).name)
            if step and Path(str(path)).is_file():
                return str(path), int(step[1])
        return None

    def _carry_curve(self, row: QueueRow, trial: RunTrial, reporter: Reporter, start_step: int) -> None:
        """A resumed run's learning curve up to its checkpoint is its previous attempt's."""
        try:
            before = self.handle.trial(int(row.attrs["retry_of"])).intermediate_values
        except Exception:
            return
        for step, value in sorted(before.items()):
            if step <= start_step:
                self.handle.report(trial, step, value)
                reporter.curve.append((step, value))

    def execute(self, run: Prepared) -> Outcome:
        """Train the run and classify how it ended; records nothing about the ending (settle does)."""
        return self.execute_batch([run], lambda: run.trainer.train(run.ctx))[0]

    def execute_batch(self, runs: list[Prepared], train: Callable[[], None] | None = None) -> list[Outcome]:
        """Train compatible runs together in one `train_batch` call (one trainer, built from the first
        run's config); each run's Outcome comes from its own reporter. An exception fails the runs
        still training; the ones already told to stop keep how they ended. A trainer that exits
        (sys.exit), raises its own KeyboardInterrupt or passes a timeout fails its runs; only a
        signal to this worker interrupts them (they are queued again)."""
        if train is None:
            train = lambda: runs[0].trainer.train_batch([run.ctx for run in runs])  # noqa: E731
        self._current = [run.row for run in runs]
        dog = Watchdog.for_run(self, lambda: max(run.reporter.last_time for run in runs))
        failure: str | None = None
        trace = ""
        try:
            train()
        except KeyboardInterrupt:
            if SIGNALLED.is_set() or not _HANDLERS:
                return [INTERRUPTED_OUTCOME] * len(runs)
            failure, trace = "the trainer raised KeyboardInterrupt of its own (no signal reached the worker)", traceback.format_exc()
        except SystemExit as exc:
            failure, trace = f"the trainer called sys.exit({exc.code!r})", traceback.format_exc()
        except RunTimeout as exc:
            failure, trace = str(exc), traceback.format_exc()
        except Exception as exc:
            if cut_off(exc):  # the storage's, not the runs': the worker exits, they are queued again
                raise
            return [_outcome(run.reporter) if run.reporter.decided else _crashed(run.reporter, exc) for run in runs]
        finally:
            if dog is not None:
                dog.stop()
            self._current = []
            for run in runs:
                run.reporter.close()
        if failure is not None:
            return [_outcome(run.reporter) if run.reporter.decided else Outcome(FAILED, reason=failure, traceback=trace) for run in runs]
        return [_outcome(run.reporter) for run in runs]

    def hard_stop(self, reason: str) -> None:
        """The watchdog's last resort for a run stuck where no signal reaches it: record why on the
        runs this worker holds, say this worker crashed, and exit; the reaper fails the runs with
        that reason and the launcher replaces the worker. Only in a worker process of its own."""
        if not self.own_process:
            return
        for row in self._current:
            self.handle.set_row(row.id, attrs=dict(row.attrs, failure_reason=reason))
        self.handle.heartbeat(self.id, state=CRASHED + "timeout")
        log.error("%s; the run did not stop within the grace period, exiting the worker", reason)
        os._exit(3)

    def settle(self, row: QueueRow, run: Prepared | None, outcome: Outcome) -> str:
        """The one place a run ends: its trial's state and reason, its error.log, the follow-up runs,
        its queue row and its message."""
        from optuna.trial import TrialState

        handle = self.handle
        trial = run.trial if run is not None else None
        if outcome.kind == INTERRUPTED:
            if trial is not None:
                self._fail(trial, states.INTERRUPTED_REASON)
            handle.set_row(row.id, state=states.INTERRUPTED)
            handle.requeue(row, states.INTERRUPTED_REASON)
            return INTERRUPTED
        if outcome.kind == FAILED:
            reason = outcome.reason or "failed"
            if trial is None:
                handle.set_row(row.id, state=states.FAILED, attrs=dict(row.attrs, failure_reason=reason))
                self.echo(f"run {row.key} {reason}")
                return FAILED
            (handle.artifact_dir(trial.number) / "error.log").write_text(outcome.traceback or reason + "\n")
            self._fail(trial, reason)
            # Follow-ups are queued before this row leaves "running": a worker looking for work in
            # between would otherwise see nothing waiting or running and leave (a population stalls).
            handle.enqueue(self.strategy.on_fail(handle, row, trial))
            handle.set_row(row.id, state=states.FAILED)
            self.echo(f"run {trial.number} failed: {reason}")
            return FAILED
        assert trial is not None and outcome.value is not None  # only a prepared run is trained
        if outcome.reason:
            handle.set_attr(trial, "stop_reason", outcome.reason)
        state = TrialState.PRUNED if outcome.kind == PRUNED else TrialState.COMPLETE
        try:
            handle.finish(trial, state, outcome.value if state == TrialState.COMPLETE else None)
        except Exception as exc:
            if cut_off(exc):
                # Cut off while recording: whether it was recorded is not known here. The worker
                # exits and its launcher or a reaper settles the run (done if the trial is complete).
                raise
            # Reaped as lost while we were slow: the requeued copy will run.
            self.echo(f"run {trial.number}: could not record the result ({exc})")
            return "lost"
        _test_exit("finished")
        if state == TrialState.PRUNED and run is not None and run.reporter.config_pruned:
            self._skip_seeds(run.reporter.config_id, run.reporter.config_pruned)
        handle.enqueue(self.strategy.on_finish(handle, row, trial))
        handle.set_row(row.id, state=states.PRUNED if state == TrialState.PRUNED else states.DONE)
        self.echo(f"run {trial.number} {state.name.lower()}: {self.sweep.objective.metric} = {outcome.value:.4g}")
        return state.name.lower()

    def _skip_seeds(self, config_id: str, reason: str) -> None:
        """The configuration was pruned as a whole: its queued seeds end unstarted, saying why (a
        worker that claimed one first prunes it at its first report, with the same reason)."""
        cfg = read_configs(self.handle).get(config_id)
        for queued in cfg.queued if cfg is not None else []:
            if queued.state == states.WAITING:
                attrs = dict(queued.attrs, **{SKIPPED_ATTR: reason})
                if self.handle.set_row(queued.id, only_if_state=states.WAITING, state=states.PRUNED, attrs=attrs):
                    self.echo(f"run {queued.key} not started: {reason}")

    def _fail(self, trial: RunTrial, reason: str) -> None:
        from optuna.trial import TrialState

        try:
            self.handle.set_attr(trial, "failure_reason", reason)
            self.handle.finish(trial, TrialState.FAIL)
        except Exception as exc:
            if cut_off(exc):  # not known whether it was recorded: as in settle, the worker exits
                raise
            # Already ended (reaped as lost): nothing more to record.


# How a run's training ended (Outcome.kind): FINISHED ran its budget, STOPPED was ended early as a
# success by a gate, PRUNED was cut by a pruner or gate, FAILED raised/diverged/reported nothing.
FINISHED, STOPPED, PRUNED, FAILED, INTERRUPTED = "finished", "stopped", "pruned", "failed", "interrupted"


def _outcome(reporter: Reporter) -> Outcome:
    """How a run whose training returned ended, from what it reported and was told."""
    value = reporter.final_value()
    if reporter.diverged or value is None or not math.isfinite(value):
        return Outcome(FAILED, reason=reporter.diverged or "no evaluation of the objective was reported")
    if reporter.pruned:
        return Outcome(PRUNED, value, reporter.stop_reason)
    return Outcome(STOPPED if reporter.stop_reason else FINISHED, value, reporter.stop_reason)


def _crashed(reporter: Reporter, exc: BaseException) -> Outcome:
    reason = str(exc) if isinstance(exc, TrainerError) else f"error: {type(exc).__name__}: {exc}"
    return Outcome(FAILED, reason=reporter.diverged or reason, traceback=traceback.format_exc())


@dataclass(frozen=True)
class Outcome:
    """What executing a run gave: its kind, its objective value, why it ended and any traceback."""

    kind: str
    value: float | None = None
    reason: str | None = None
    traceback: str | None = None


INTERRUPTED_OUTCOME = Outcome(INTERRUPTED, reason=states.INTERRUPTED_REASON)  # Ctrl-C/SIGTERM stopped it: queued again


@dataclass
class Prepared:
    """A claimed run ready to train: its row, its trial, the trainer's context and the reporter."""

    row: QueueRow
    trial: RunTrial
    ctx: RunContext
    trainer: Any
    reporter: Reporter


class Reporter:
    """The report callback a trainer gets: records metrics, feeds the pruner and gates, decides."""

    def __init__(self, worker: Worker, trial: RunTrial, start_step: int, *, in_batch: bool = False, seed_number: int = 0) -> None:
        self.worker = worker
        self.seed_number = seed_number
        # In a batch one run must not end the others: a diverged run is told PRUNE instead of the
        # trainer being interrupted by an exception, and reports after a stop are ignored (masked).
        self.in_batch = in_batch
        self.decided: Decision | None = None
        self.handle = worker.handle
        self.trial = trial
        self.objective = worker.sweep.objective
        self.gates = GateSchedule(worker.sweep.stop)
        self.curve: list[tuple[int, float]] = []
        self.pruned = False
        self.stop_reason: str | None = None
        self.diverged: str | None = None
        self.last_step = start_step
        self.last_time = 0.0  # time.monotonic() of the last report (the idle timeout's clock)
        self.config_pruned: str | None = None  # this run's cut pruned its configuration as a whole
        self.config_id = ""
        self.configs: dict[str, ConfigSeeds] = {}  # every configuration, as read at the last report
        # Min/max gates on these metrics judge the configuration's mean when it has several seeds.
        self.gate_metrics = sorted({g.metric for g in self.gates.gates if g.min is not None or g.max is not None})
        if worker.judges_configs and (worker.pruner is not None or self.gate_metrics):
            from rlsweep.space import config_id

            self.config_id = config_id(worker.handle.decode(trial.params))
        self.tb: Any = None
        self.writes_tb = not worker.trainer_cls.writes_tensorboard

    def __call__(self, step: int, metrics: Mapping[str, float]) -> Decision:
        self.last_time = time.monotonic()
        if self.in_batch and self.decided is not None:
            return self.decided
        decision = self._judge(int(step), {str(k): float(v) for k, v in metrics.items()})
        if decision.should_stop:
            self.decided = decision
        return decision

    def _judge(self, step: int, metrics: dict[str, float]) -> Decision:
        self.last_step = step
        name = self.objective.metric
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        # the metrics, and the objective's value for the pruners unless something diverged
        self.handle.record_evaluation(self.trial, step, metrics, None if bad else metrics.get(name))
        self._tensorboard(step, metrics)
        if bad:
            self.diverged = f"diverged: {', '.join(bad)} not finite at step {step}"
            if self.in_batch:
                return Decision.PRUNE
            raise TrainerError(self.diverged)
        decision = Decision.CONTINUE
        if name in metrics:
            self.curve.append((step, metrics[name]))
        cfg = self._configuration()
        if cfg is not None:
            cut = cfg.pruned_by()
            if cut is not None:  # a sibling's cut pruned the configuration: this seed stops too
                self.pruned = True
                self.stop_reason = str(cut.user_attrs.get(CONFIG_PRUNED_ATTR) or config_pruned_reason(
                    int(cut.user_attrs["seed"]) - self.worker.sweep.seed, max(cut.intermediate_values, default=0)
                ))  # fmt: skip
                return Decision.PRUNE
        if name in metrics and self.worker.pruner is not None:
            if cfg is not None and self._configuration_pruned(cfg, step):
                return Decision.PRUNE
            if cfg is None and self._run_pruned():
                self.pruned = True
                self.stop_reason = f"pruned by {self.worker.sweep.strategy.pruner} at step {step}"
                return Decision.PRUNE
        judged = self._configuration_metrics(cfg, step, metrics) if cfg is not None else None
        gate_decision, reason = self.gates.check(step, metrics, judged)
        if gate_decision is not Decision.CONTINUE:
            self.stop_reason = reason
            self.pruned = gate_decision is Decision.PRUNE
            decision = gate_decision
            if self.pruned and cfg is not None:
                self._mark_configuration_pruned(step)
        return decision

    def _configuration(self) -> ConfigSeeds | None:
        """This run's configuration over its seeds, read from the storage (None: seeds are judged alone)."""
        if not self.config_id:
            return None
        self.configs = read_configs(self.handle, rows=False)
        return self.configs.get(self.config_id)

    def _judge_pruned(self, configs: Mapping[str, ConfigSeeds], judged_id: str) -> bool:
        """The pruner's verdict on `judged_id` among `configs`, its notes kept on this run's trial."""
        every = int(self.worker.sweep.eval.every)
        cut, memo = judge_configuration(self.worker.pruner, self.handle, configs, judged_id, self.objective.mode, every)
        for key, value in memo.items():
            self.handle.set_system_attr(self.trial, key, value)
        return cut

    def _run_pruned(self) -> bool:
        """Seeds judged alone: this run among every run of the study."""
        return self._judge_pruned(runs_as_configs(self.handle.get_trials(deepcopy=False)), str(self.trial.number))

    def _configuration_pruned(self, cfg: ConfigSeeds, step: int) -> bool:
        if not self._judge_pruned(self.configs, cfg.config_id):
            return False
        curve = cfg.curve()
        seeds = sum(step in t.intermediate_values for t in cfg.judged())
        mean = curve.get(step, math.nan)
        self.pruned = True
        self.stop_reason = (
            f"pruned by {self.worker.sweep.strategy.pruner} at step {step} "
            f"(configuration mean {mean:.4g} over {seeds} seed{'' if seeds == 1 else 's'})"
        )
        self._mark_configuration_pruned(step)
        return True

    def _mark_configuration_pruned(self, step: int) -> None:
        self.config_pruned = config_pruned_reason(self.seed_number, step)
        self.handle.set_attr(self.trial, CONFIG_PRUNED_ATTR, self.config_pruned)

    def _configuration_metrics(self, cfg: ConfigSeeds, step: int, metrics: Mapping[str, float]) -> dict[str, tuple[float, int]]:
        """Each gate metric's mean at this step over this seed and its siblings that reached it."""
        others = sibling_metrics(self.handle, cfg, self.trial.number, step, [m for m in self.gate_metrics if m in metrics])
        judged = {}
        for name in self.gate_metrics:
            if name in metrics:
                values = [float(metrics[name]), *others.get(name, [])]
                judged[name] = (sum(values) / len(values), len(values))
        return judged

    def final_value(self) -> float | None:
        if not self.curve:
            return None
        values = [v for _, v in self.curve]
        how = self.objective.reduce
        if how == "last":
            return values[-1]
        if how == "best":
            return max(values) if self.objective.mode == "max" else min(values)
        tail = values[-self.objective.k :]
        return sum(tail) / len(tail)

    def _tensorboard(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self.writes_tb:
            return
        if self.tb is None:
            try:
                from rlsweep.tensorboard import EventWriter

                self.tb = EventWriter(self.handle.artifact_dir(self.trial.number) / "tb")
            except ImportError:
                self.writes_tb = False
                return
        self.tb.add_scalars(step, metrics)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _short(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()) or "no searched values"
