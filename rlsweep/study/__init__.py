"""The study over Optuna's storage: create/load, and `StudyHandle`, the composition of its parts:
`queue` (run states, claims), `trials` (the only user of Optuna's private API), `metrics`, `workers`
(heartbeats) and `view` (read-only, for analysis/render/report). Child studies are made in `api/`.

A run is one Optuna trial. It is created only when a worker has claimed its queue row, so Optuna's
WAITING state (whose claims race) is never used. Every guarantee rlsweep needs rests on a
conditional UPDATE or a unique key in rlsweep's own tables, each inside one transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlsweep import states, storage
from rlsweep.config import LoadedSweep, load_sweep
from rlsweep.errors import ConfigError, StorageError
from rlsweep.study.attrs import CHILDREN_ATTR, FILE_ATTR, PARENT_ATTR, SPACE_ATTR, SWEEP_ATTR
from rlsweep.study.metrics import MetricsStore
from rlsweep.study.queue import QueueRow, RunQueue, RunSpec
from rlsweep.study.trials import RunTrial, TrialStore, trial_id
from rlsweep.study.view import StudyView
from rlsweep.study.workers import WorkerRegistry

REQUEUED_REASONS = states.REQUEUED_REASONS  # kept for callers that import it from here
__all__ = [
    "CHILDREN_ATTR", "FILE_ATTR", "PARENT_ATTR", "REQUEUED_REASONS", "SPACE_ATTR", "SWEEP_ATTR", "FollowUps",
    "QueueRow", "RunSpec", "RunTrial", "StudyHandle", "StudyView", "open_study",
]  # fmt: skip
log = logging.getLogger("rlsweep.study")
LOST_COUNT = "_lost"  # on a queue row: how often this run's worker was lost (carried to its retries)
REAPED = "_reaped"  # on a queue row: settled by a reaper, its worker gone after the run's trial ended
# (row, its ended trial, or None for a run that failed without one) -> the runs to queue after it;
# see `StudyHandle.reap_lost`.
FollowUps = Callable[["QueueRow", Any], Sequence["RunSpec"]]


KNOWN_SHOWN = 10  # study names an error lists; a shared database may hold thousands


def some_names(names: Sequence[str]) -> str:
    """The last `KNOWN_SHOWN` names (the latest studies), and how many more there are."""
    if not names:
        return "none"
    shown = ", ".join(names[-KNOWN_SHOWN:])
    return shown if len(names) <= KNOWN_SHOWN else f"{shown} and {len(names) - KNOWN_SHOWN} more"


class StudyHandle:
    """One study: Optuna's study object plus rlsweep's tables in the same storage."""

    def __init__(self, loaded: LoadedSweep, url: str, study: Any) -> None:
        self.loaded = loaded
        self.sweep = loaded.sweep
        self.space = loaded.space
        self.name = loaded.sweep.study
        self.url = url
        self.study = study
        self.engine = storage.aux_engine(url)
        _, self.runs_table, self.metrics_table, self.workers_table = storage.tables()
        self.queue = RunQueue(self.name, self.engine, self.runs_table)
        self.trials = TrialStore(study, loaded.space)
        self.metrics_store = MetricsStore(self.name, self.engine, self.metrics_table)
        self.workers_registry = WorkerRegistry(self.name, self.engine, self.workers_table)

    # ---------------------------------------------------------------- create / load
    @classmethod
    def create_or_load(cls, loaded: LoadedSweep, url: str, *, force: bool = False) -> StudyHandle:
        """Create the study (tables first, once) or continue it; refuse another search space."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        opt_storage = storage.open_optuna_storage(url, create=True)
        storage.create_tables(url)
        direction = optuna.study.StudyDirection.MAXIMIZE if loaded.sweep.objective.mode == "max" else optuna.study.StudyDirection.MINIMIZE
        study = optuna.create_study(study_name=loaded.sweep.study, storage=opt_storage, direction=direction, load_if_exists=True)
        stored = study.user_attrs.get(SPACE_ATTR)
        if stored is not None and stored != loaded.space.hash() and not force:
            raise ConfigError(
                f"study '{loaded.sweep.study}' exists in {storage.redact(url)} with a different search space; "
                "use --new to start a fresh study beside it, or --force to continue it with this space",
                file=loaded.file,
                key="params",
            )
        if stored is None and study.trials:
            raise ConfigError(
                f"study '{loaded.sweep.study}' exists in {storage.redact(url)} but was not made by rlsweep; choose another study name",
                file=loaded.file,
                key="study",
            )
        if stored is not None and stored != loaded.space.hash():
            _check_compatible(study.user_attrs.get(SWEEP_ATTR), loaded, url)
        sweep_json = json.dumps(loaded.to_dict(), sort_keys=True)
        if study.user_attrs.get(SWEEP_ATTR) != sweep_json:
            study.set_user_attr(SWEEP_ATTR, sweep_json)
            study.set_user_attr(SPACE_ATTR, loaded.space.hash())
            study.set_user_attr(FILE_ATTR, loaded.file)
        return cls(loaded, url, study)

    @classmethod
    def load(cls, name: str, url: str, *, trainer_checks: bool = True) -> StudyHandle:
        """Join an existing study with nothing but its name and storage: the sweep is stored in it.
        It passed every check when the study was made; `trainer_checks=False` skips the trainer's
        own, which import its libraries (SB3: torch, 2-3 s), for commands that only read results."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        opt_storage = storage.open_optuna_storage(url, create=False)
        try:
            study = optuna.load_study(study_name=name, storage=opt_storage)
        except KeyError:
            # Names only: a shared database holds many studies, and their summaries read every trial.
            known = optuna.get_all_study_names(opt_storage)
            from rlsweep.errors import closest

            raise StorageError(
                f"no study '{name}' in {storage.redact(url)}{closest(name, known)}; known: {some_names(known)}"
            ) from None
        raw = study.user_attrs.get(SWEEP_ATTR)
        if raw is None:
            raise StorageError(f"study '{name}' in {storage.redact(url)} was not made by rlsweep")
        loaded = load_sweep(json.loads(raw), file=str(study.user_attrs.get(FILE_ATTR, name)), trainer_checks=trainer_checks)
        return cls(loaded, url, study)

    # ---------------------------------------------------------------- queue
    def enqueue(self, specs: Sequence[RunSpec]) -> int:
        return self.queue.enqueue(specs)

    def claim(self, worker: str, key: str | None = None) -> QueueRow | None:
        return self.queue.claim(worker, key)

    def claim_batch(self, worker: str, n: int) -> list[QueueRow]:
        return self.queue.claim_batch(worker, n)

    def set_row(self, row_id: int, *, only_if_state: str | None = None, **values: Any) -> bool:
        return self.queue.set_row(row_id, only_if_state=only_if_state, **values)

    def rows(self, states: Iterable[str] | None = None) -> list[QueueRow]:
        return self.queue.rows(states)

    def row_counts(self) -> dict[str, int]:
        return self.queue.row_counts()

    def requeue(self, row: QueueRow, reason: str) -> str:
        """Queue a lost or interrupted run again under a new key (same configuration and seed)."""
        return self.queue.requeue(row, reason, params_of=lambda n: dict(self.trial(n).params))

    # ---------------------------------------------------------------- trials
    def create_trial(self, params: Mapping[str, Any], attrs: Mapping[str, Any]) -> RunTrial:
        return self.trials.create(params, attrs)

    def set_attr(self, trial: RunTrial, key: str, value: Any) -> None:
        self.trials.set_attr(trial, key, value)

    def set_system_attr(self, trial: RunTrial, key: str, value: Any) -> None:
        self.trials.set_system_attr(trial, key, value)

    def report(self, trial: RunTrial, step: int, value: float) -> None:
        self.trials.report(trial, step, value)

    def finish(self, trial: RunTrial, state: Any, value: float | None = None) -> None:
        self.trials.finish(trial, state, value)

    def frozen(self, trial: RunTrial) -> Any:
        return self.trials.frozen(trial)

    def trial(self, number: int) -> Any:
        return self.trials.trial(number)

    def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[Any]:
        return self.view().get_trials(deepcopy, states)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self.study.user_attrs)

    def param_importances(self, evaluator: Any, params: list[str]) -> dict[str, float]:
        return self.view().param_importances(evaluator, params)

    def trial_id(self, trial: Any) -> int:
        return trial_id(trial)

    def config_id(self, trial: Any) -> str:
        """The configuration a trial ran: a hash of its searched values, derived, never stored."""
        from rlsweep.space import config_id

        return config_id(self.decode(trial.params))

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna-internal values (JSON strings for list choices) -> the plain values."""
        return {name: self.space[name].decode(value) for name, value in params.items() if name in self.space.names}

    def seed_for(self, seed_number: int) -> int:
        return self.sweep.seed + seed_number

    def artifact_dir(self, number: int) -> Path:
        root = Path(self.sweep.artifacts or f"runs/{self.name}/artifacts")
        path = (root / str(number)).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---------------------------------------------------------------- metrics
    def record_evaluation(self, trial: RunTrial, step: int, metrics: Mapping[str, float], value: float | None) -> None:
        """An evaluation's metrics and, given `value`, the objective's intermediate value (what
        pruners read): one transaction where Optuna's tables share rlsweep's database. Otherwise, or
        when the trial is not running or already has that step, through Optuna's storage, which
        updates the step or raises as it always does. Done again if the server drops the
        connection (a restart): training goes on after an outage the storage waited out."""
        from rlsweep.storage import again_if_dropped

        def record() -> None:
            also = None if value is None else self.trials.intermediate_insert(trial, step, value, self.metrics_store.engine)
            if self.metrics_store.record(trial.trial_id, trial.number, step, metrics, also=also) or value is None:
                return
            self.trials.report(trial, step, value)

        again_if_dropped(record)

    def metrics(self, trial_numbers: Iterable[int] | None = None, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return self.metrics_store.read(trial_numbers, names)

    # ---------------------------------------------------------------- workers
    def register_worker(self, worker: str) -> None:
        self.workers_registry.register(worker)

    def heartbeat(self, worker: str, state: str = "alive") -> None:
        self.workers_registry.heartbeat(worker, state)

    def workers(self) -> list[dict[str, Any]]:
        return self.workers_registry.all()

    def view(self) -> StudyView:
        """The read-only view that analysis/, render/ and report/ get."""
        return StudyView(self)

    def reap_lost(self, lost_after: float | None = None, *, follow_ups: FollowUps | None = None) -> list[str]:
        """Settle the runs of workers silent for `lost_after` s; returns the keys acted on.

        A run whose trial had already ended (its worker died after recording the result, before
        marking the queue row) is settled as done, pruned or failed and never trained again;
        `follow_ups(row, trial)` gives the runs to queue after it (a population's next generation),
        queued before the row leaves "running" so that waiting workers keep seeing work. Any other
        run is marked lost, its trial (if it has one yet) failed as "worker lost", and queued again.
        Any process may call this on its own clock; the conditional UPDATE makes exactly one of
        them act on each row. It spans the queue, the trials and the workers, so it lives here."""
        from optuna.trial import TrialState

        lost_after = self.sweep.worker.lost_after if lost_after is None else lost_after
        # The rows before the workers: a worker registers before it claims, so every worker named
        # by a row read here is in the registry read next (the other order took a worker that
        # registered and claimed in between for an unknown, silent one: its run ran twice).
        running = self.rows([states.RUNNING])
        if not running:
            return []
        registry = self.workers_registry
        workers = registry.all()  # read once per reap: every heartbeat of every worker reaps
        silent = registry.silent(lost_after, workers=workers)
        crashed = registry.crashed(workers)
        stopped = registry.interrupted(workers)
        ended = {TrialState.COMPLETE: states.DONE, TrialState.PRUNED: states.PRUNED, TrialState.FAIL: states.FAILED}
        done: list[str] = []
        for row in running:
            if not silent(row.worker):
                continue
            trial = self._trial_of(row)
            if trial is not None and trial.state in ended:
                self._follow(row, trial, follow_ups)
                attrs = dict(row.attrs, **{REAPED: True})  # its worker died holding it (the supervisor asks)
                if self.set_row(row.id, only_if_state=states.RUNNING, state=ended[trial.state], trial_number=trial.number, attrs=attrs):
                    done.append(row.key)
                continue
            if row.worker in stopped:  # queued again like any interrupted run; spends no requeue
                if self.set_row(row.id, only_if_state=states.RUNNING, state=states.INTERRUPTED):
                    if trial is not None:
                        self.trials.fail_lost(trial, states.INTERRUPTED_REASON)
                        row.trial_number = trial.number
                    self.requeue(row, states.INTERRUPTED_REASON)
                    done.append(row.key)
                continue
            how = crashed.get(row.worker or "")
            if how is not None:  # a crash (segfault, abort) would repeat: the run fails, it is not retried
                reason = str(row.attrs.get("failure_reason") or f"worker crashed ({_describe_signal(how)}) while training this run")
                if trial is not None:
                    self.trials.fail_lost(trial, reason)
                self._follow(row, None, follow_ups)  # None: the run failed
                attrs = dict(row.attrs, failure_reason=reason)
                if self.set_row(row.id, only_if_state=states.RUNNING, state=states.FAILED, attrs=attrs, trial_number=getattr(trial, "number", None)):
                    done.append(row.key)
                continue
            note = states.WORKER_LOST if trial is not None else f"{states.WORKER_LOST} before the run's trial was created"
            if not self.set_row(row.id, only_if_state=states.RUNNING, state=states.LOST, attrs=dict(row.attrs, lost_reason=note)):
                continue
            # Each loss spends one of `worker.requeue`; when none is left the run ends as failed,
            # saying so (it is never dropped). Interruptions (Ctrl-C) spend nothing.
            lost = int(row.attrs.get(LOST_COUNT, 0)) + 1
            row.attrs[LOST_COUNT] = lost
            spent = lost > self.sweep.worker.requeue
            reason = states.WORKER_LOST
            if spent:
                reason = f"{states.WORKER_LOST} {lost} time{'s' if lost != 1 else ''} (worker.requeue: {self.sweep.worker.requeue} spent)"
            if trial is not None:
                self.trials.fail_lost(trial, reason)
                row.trial_number = trial.number
            if not spent:
                self.requeue(row, states.WORKER_LOST)
            else:
                self._follow(row, None, follow_ups)  # None: the run failed
                attrs = dict(row.attrs, lost_reason=note, failure_reason=reason)
                self.set_row(row.id, state=states.FAILED, attrs=attrs, trial_number=row.trial_number)
            done.append(row.key)
        return done

    def _follow(self, row: QueueRow, trial: Any, follow_ups: FollowUps | None) -> None:
        """Queue the runs after a run settled for a dead worker (before its row leaves "running")."""
        if follow_ups is None:
            return
        try:
            self.enqueue(follow_ups(row, trial))
        except Exception as exc:  # the row still ends; `strategy.recover` queues what is missing on resume
            log.warning("run %s: could not queue the runs after it: %s", row.key, exc)

    def _trial_of(self, row: QueueRow) -> Any:
        return self.trials.of_row(row.trial_number, row.key)


def _describe_signal(name: str) -> str:
    """'SIGSEGV' -> 'SIGSEGV: Segmentation fault' (the name alone when the system has no text)."""
    import signal

    try:
        text = signal.strsignal(signal.Signals[name])
    except (KeyError, ValueError):
        text = None
    return f"{name}: {text}" if text else name


def _check_compatible(stored_json: str | None, loaded: LoadedSweep, url: str) -> None:
    """--force may widen or narrow ranges, but Optuna cannot hold two different choice lists (or a
    choice and a range) under one parameter name in one study: refuse those before any run starts."""
    if not stored_json:
        return
    old = load_sweep(json.loads(stored_json), file=loaded.file).space
    for param in loaded.space.params:
        if param.name not in old.names:
            continue
        before = old[param.name]
        if before.kind != param.kind or (param.kind == "choice" and list(before.choices) != list(param.choices)):
            key = param.name if param.name.startswith("trainer.") else f"params.{param.name}"
            raise ConfigError(
                f"changed from {before.describe()} to {param.describe()}, which study '{loaded.sweep.study}' in "
                f"{storage.redact(url)} cannot hold (Optuna keeps one choice list per name); use --new for a fresh study",
                file=loaded.file,
                key=key,
            )


def open_study(name: str, url: str | None) -> StudyHandle:
    return StudyHandle.load(name, url or storage.default_url(name))
