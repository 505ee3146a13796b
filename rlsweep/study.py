"""The study over Optuna's storage: create/load, the run queue and its claims, metrics, heartbeats.

A run is one Optuna trial. It is created only when a worker has claimed its queue row, so Optuna's
WAITING state (whose claims race) is never used. Every guarantee rlsweep needs rests on a
conditional UPDATE or a unique key in rlsweep's own tables, each inside one transaction.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsweep import states, storage
from rlsweep.config import LoadedSweep, load_sweep
from rlsweep.errors import ConfigError, StorageError

SWEEP_ATTR = "rlsweep:sweep"
SPACE_ATTR = "rlsweep:space_hash"
FILE_ATTR = "rlsweep:file"
PARENT_ATTR = "rlsweep:parent"  # a child study (reseed, replay) names its parent
CHILDREN_ATTR = "rlsweep:children"
REQUEUED_REASONS = states.REQUEUED_REASONS  # kept for callers that import it from here
log = logging.getLogger("rlsweep.study")
# (lost row, its ended trial) -> the runs to queue after it; see `StudyHandle.reap_lost`.
FollowUps = Callable[["QueueRow", Any], Sequence["RunSpec"]]


@dataclass(frozen=True)
class RunSpec:
    """A run to queue: its key names it uniquely within the study."""

    key: str
    params: dict[str, Any] | None = None  # Optuna-internal values; None: the strategy proposes them
    seed_number: int = 0
    priority: int = 1  # lower is claimed first
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueueRow:
    id: int
    key: str
    state: str
    params: dict[str, Any] | None
    seed_number: int
    attrs: dict[str, Any]
    trial_number: int | None
    worker: str | None
    priority: int = 1


@dataclass
class RunTrial:
    """The Optuna trial of a running run, driven through the storage API (no `optuna.Trial`, whose
    construction and `tell` re-read the trial several times: most of a short run's overhead)."""

    trial_id: int
    number: int
    params: dict[str, Any]  # Optuna's external values (JSON strings for list choices)


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
    def load(cls, name: str, url: str) -> StudyHandle:
        """Join an existing study with nothing but its name and storage: the sweep is stored in it."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        opt_storage = storage.open_optuna_storage(url, create=False)
        try:
            study = optuna.load_study(study_name=name, storage=opt_storage)
        except KeyError:
            known = [s.study_name for s in optuna.get_all_study_summaries(opt_storage)]
            from rlsweep.errors import closest

            raise StorageError(
                f"no study '{name}' in {storage.redact(url)}{closest(name, known)}; known: {', '.join(known) or 'none'}"
            ) from None
        raw = study.user_attrs.get(SWEEP_ATTR)
        if raw is None:
            raise StorageError(f"study '{name}' in {storage.redact(url)} was not made by rlsweep")
        loaded = load_sweep(json.loads(raw), file=str(study.user_attrs.get(FILE_ATTR, name)))
        return cls(loaded, url, study)

    # ---------------------------------------------------------------- queue
    def enqueue(self, specs: Sequence[RunSpec]) -> int:
        """Queue runs whose keys are new; a key already queued (by anyone) is skipped. Returns how many were added."""
        import sqlalchemy as sa

        if not specs:
            return 0
        t = self.runs_table
        keys = [s.key for s in specs]
        with self.engine.connect() as con:
            existing: set[str] = set()
            for chunk in _chunks(keys, 500):
                existing.update(r[0] for r in con.execute(sa.select(t.c.key).where(t.c.study == self.name, t.c.key.in_(chunk))))
        now = time.time()
        rows = [
            {
                "study": self.name,
                "key": s.key,
                "state": states.WAITING,
                "priority": s.priority,
                "params": None if s.params is None else json.dumps(s.params),
                "seed_number": s.seed_number,
                "attrs": json.dumps(s.attrs),
                "updated": now,
            }
            for s in specs
            if s.key not in existing
        ]
        if not rows:
            return 0
        try:
            with self.engine.begin() as con:
                con.execute(t.insert(), rows)
            return len(rows)
        except sa.exc.IntegrityError:
            # Another worker queued some of these at the same moment: insert one by one, losers skip.
            added = 0
            for row in rows:
                try:
                    with self.engine.begin() as con:
                        con.execute(t.insert(), [row])
                    added += 1
                except sa.exc.IntegrityError:
                    pass
            return added

    def claim(self, worker: str, key: str | None = None) -> QueueRow | None:
        """Move exactly one waiting run to running for this worker; None when none is waiting.

        The UPDATE is conditional on the row still waiting, so of two workers racing for one row,
        one updates one row and the other updates none and looks again."""
        import sqlalchemy as sa

        t = self.runs_table
        for _ in range(1000):
            query = sa.select(t).where(t.c.study == self.name, t.c.state == states.WAITING)
            query = query.where(t.c.key == key) if key is not None else query.order_by(t.c.priority, t.c.id).limit(1)
            with self.engine.connect() as con:
                row = con.execute(query).mappings().first()
            if row is None:
                return None
            with self.engine.begin() as con:
                result = con.execute(
                    t.update()
                    .where(t.c.id == row["id"], t.c.state == states.WAITING)
                    .values(state=states.RUNNING, worker=worker, updated=time.time())
                )
            if result.rowcount == 1:
                return _row(dict(row, state=states.RUNNING, worker=worker))
        raise StorageError("could not claim a run after 1000 tries; is the storage overloaded?")

    def claim_batch(self, worker: str, n: int) -> list[QueueRow]:
        """Move up to `n` waiting runs of this study to running for this worker, in one transaction
        (for trainers that train several runs at once); [] when none is waiting.

        Candidates are read first, then each is taken by an UPDATE conditional on it still waiting,
        all in one transaction that begins with a write (so SQLite takes its write lock at once and
        never has to upgrade a stale read). Rows another worker won in between are skipped; if it
        won all of them, look again."""
        import sqlalchemy as sa

        t = self.runs_table
        for _ in range(1000):
            query = sa.select(t).where(t.c.study == self.name, t.c.state == states.WAITING).order_by(t.c.priority, t.c.id).limit(max(1, n))
            with self.engine.connect() as con:
                candidates = [dict(r) for r in con.execute(query).mappings()]
            if not candidates:
                return []
            now = time.time()
            claimed: list[QueueRow] = []
            with self.engine.begin() as con:
                for row in candidates:
                    result = con.execute(
                        t.update().where(t.c.id == row["id"], t.c.state == states.WAITING).values(state=states.RUNNING, worker=worker, updated=now)
                    )
                    if result.rowcount == 1:
                        claimed.append(_row(dict(row, state=states.RUNNING, worker=worker)))
            if claimed:
                return claimed
        raise StorageError("could not claim runs after 1000 tries; is the storage overloaded?")

    def set_row(self, row_id: int, *, only_if_state: str | None = None, **values: Any) -> bool:
        t = self.runs_table
        stmt = t.update().where(t.c.id == row_id)
        if only_if_state is not None:
            stmt = stmt.where(t.c.state == only_if_state)
        if "attrs" in values:
            values["attrs"] = json.dumps(values["attrs"])
        with self.engine.begin() as con:
            return bool(con.execute(stmt.values(updated=time.time(), **values)).rowcount == 1)

    def rows(self, states: Iterable[str] | None = None) -> list[QueueRow]:
        import sqlalchemy as sa

        t = self.runs_table
        query = sa.select(t).where(t.c.study == self.name).order_by(t.c.id)
        if states is not None:
            query = query.where(t.c.state.in_(list(states)))
        with self.engine.connect() as con:
            return [_row(dict(r)) for r in con.execute(query).mappings()]

    def row_counts(self) -> dict[str, int]:
        import sqlalchemy as sa

        t = self.runs_table
        with self.engine.connect() as con:
            result = con.execute(sa.select(t.c.state, sa.func.count()).where(t.c.study == self.name).group_by(t.c.state))
            return {state: int(n) for state, n in result}

    def requeue(self, row: QueueRow, reason: str) -> str | None:
        """Queue a lost or interrupted run again under a new key (same configuration and seed)."""
        base, _, tail = row.key.partition("/retry:")
        retries = int(tail) + 1 if tail.isdigit() else 1
        if reason == states.WORKER_LOST and retries > self.sweep.worker.requeue:
            return None
        if reason == states.INTERRUPTED_REASON:
            retries = _next_retry(base, {r.key for r in self.rows()})
        key = f"{base}/retry:{retries}"
        attrs = dict(row.attrs, retry_of=row.trial_number, retry_reason=reason)
        params = row.params
        if params is None and row.trial_number is not None:
            params = self.trial(row.trial_number).params
        self.enqueue([RunSpec(key, params, row.seed_number, priority=0, attrs=attrs)])
        return key

    # ---------------------------------------------------------------- trials
    def create_trial(self, params: Mapping[str, Any], attrs: Mapping[str, Any]) -> RunTrial:
        """A RUNNING trial with these params and attributes, written in one transaction."""
        import datetime

        from optuna.trial import FrozenTrial, TrialState

        dists = {name: self.space[name].distribution() for name in params}
        template = FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params=dict(params),
            distributions=dists,
            user_attrs=dict(attrs),
            system_attrs={},
            intermediate_values={},
            trial_id=-1,
        )
        storage_ = self.study._storage
        trial_id = storage_.create_new_trial(self.study._study_id, template_trial=template)
        # Optuna's cached storage has just recorded the new trial's number: reading it back from the
        # database (get_trial_number_from_id) would cost a query per run.
        cached = getattr(storage_, "_trial_id_to_study_id_and_number", {}).get(trial_id)
        number = cached[1] if cached else storage_.get_trial_number_from_id(trial_id)
        return RunTrial(trial_id, number, dict(params))

    def set_attr(self, trial: RunTrial, key: str, value: Any) -> None:
        self.study._storage.set_trial_user_attr(trial.trial_id, key, value)

    def report(self, trial: RunTrial, step: int, value: float) -> None:
        """The objective's learning curve as Optuna intermediate values (pruners and the dashboard read it)."""
        self.study._storage.set_trial_intermediate_value(trial.trial_id, int(step), float(value))

    def finish(self, trial: RunTrial, state: Any, value: float | None = None) -> None:
        """End the trial: COMPLETE with its value, PRUNED or FAIL. Raises if someone else ended it."""
        self.study._storage.set_trial_state_values(trial.trial_id, state, None if value is None else [float(value)])

    def frozen(self, trial: RunTrial) -> Any:
        return self.study._storage.get_trial(trial.trial_id)

    def trial(self, number: int) -> Any:
        storage_ = self.study._storage
        return storage_.get_trial(storage_.get_trial_id_from_study_id_trial_number(self.study._study_id, number))

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
    def record_metrics(self, trial_id: int, trial_number: int, step: int, metrics: Mapping[str, float]) -> None:
        """One transaction per evaluation, however many metrics it has."""
        now = time.time()
        rows = [
            {
                "study": self.name,
                "trial_id": trial_id,
                "trial_number": trial_number,
                "step": int(step),
                "name": str(name),
                "value": _finite_or_none(value),
                "wall_time": now,
            }
            for name, value in metrics.items()
        ]
        if rows:
            with self.engine.begin() as con:
                con.execute(self.metrics_table.insert(), rows)

    def metrics(self, trial_numbers: Iterable[int] | None = None, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        m = self.metrics_table
        query = sa.select(m.c.trial_number, m.c.step, m.c.name, m.c.value, m.c.wall_time).where(m.c.study == self.name)
        if trial_numbers is not None:
            query = query.where(m.c.trial_number.in_(list(trial_numbers)))
        if names is not None:
            query = query.where(m.c.name.in_(list(names)))
        with self.engine.connect() as con:
            return [dict(r) for r in con.execute(query.order_by(m.c.trial_number, m.c.step, m.c.id)).mappings()]

    # ---------------------------------------------------------------- workers
    def register_worker(self, worker: str) -> None:
        now = time.time()
        w = self.workers_table
        with self.engine.begin() as con:
            con.execute(w.delete().where(w.c.id == worker))
            con.execute(
                w.insert(),
                [{"id": worker, "study": self.name, "host": socket.gethostname(), "pid": os.getpid(), "started": now, "heartbeat": now, "state": "alive"}],
            )

    def heartbeat(self, worker: str, state: str = "alive") -> None:
        w = self.workers_table
        with self.engine.begin() as con:
            con.execute(w.update().where(w.c.id == worker).values(heartbeat=time.time(), state=state))

    def workers(self) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        w = self.workers_table
        with self.engine.connect() as con:
            return [dict(r) for r in con.execute(sa.select(w).where(w.c.study == self.name)).mappings()]

    def reap_lost(self, lost_after: float | None = None, *, follow_ups: FollowUps | None = None) -> list[str]:
        """Settle the runs of workers silent for `lost_after` s; returns the keys acted on.

        A run whose trial had already ended (its worker died after recording the result, before
        marking the queue row) is settled as done, pruned or failed and never trained again;
        `follow_ups(row, trial)` gives the runs to queue after it (a population's next generation),
        queued before the row leaves "running" so that waiting workers keep seeing work. Any other
        run is marked lost, its trial (if it has one yet) failed as "worker lost", and queued again.
        Any process may call this on its own clock; the conditional UPDATE makes exactly one of
        them act on each row."""
        from optuna.trial import TrialState

        lost_after = self.sweep.worker.lost_after if lost_after is None else lost_after
        now = time.time()
        beats = {w["id"]: (w["heartbeat"], w["state"]) for w in self.workers()}
        ended = {TrialState.COMPLETE: states.DONE, TrialState.PRUNED: states.PRUNED, TrialState.FAIL: states.FAILED}
        done: list[str] = []
        for row in self.rows([states.RUNNING]):
            beat, state = beats.get(row.worker or "", (0.0, "lost"))
            if state == "alive" and now - beat < lost_after:
                continue
            trial = self._trial_of(row)
            if trial is not None and trial.state in ended:
                if follow_ups is not None:
                    try:
                        self.enqueue(follow_ups(row, trial))
                    except Exception as exc:  # the row still ends; `strategy.recover` queues what is missing on resume
                        log.warning("run %s: could not queue the runs after it: %s", row.key, exc)
                if self.set_row(row.id, only_if_state=states.RUNNING, state=ended[trial.state], trial_number=trial.number):
                    done.append(row.key)
                continue
            note = states.WORKER_LOST if trial is not None else f"{states.WORKER_LOST} before the run's trial was created"
            if not self.set_row(row.id, only_if_state=states.RUNNING, state=states.LOST, attrs=dict(row.attrs, lost_reason=note)):
                continue
            if trial is not None:
                try:
                    self.study._storage.set_trial_user_attr(trial._trial_id, "failure_reason", states.WORKER_LOST)
                    self.study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                except Exception:  # finished this instant by a worker that came back: its result stands
                    pass
                row.trial_number = trial.number
            self.requeue(row, states.WORKER_LOST)
            done.append(row.key)
        return done

    def _trial_of(self, row: QueueRow) -> Any:
        """The trial of a claimed run, or None. A worker records the trial's number on the row just
        after creating the trial, so a worker killed in between leaves a RUNNING trial that only
        its `key` attribute links to the row."""
        from optuna.trial import TrialState

        if row.trial_number is not None:
            return self.trial(row.trial_number)
        running = self.study.get_trials(deepcopy=False, states=[TrialState.RUNNING])
        return next((t for t in running if t.user_attrs.get("key") == row.key), None)

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


def _row(r: Mapping[str, Any]) -> QueueRow:
    return QueueRow(
        id=int(r["id"]),
        key=str(r["key"]),
        state=str(r["state"]),
        params=None if r["params"] is None else json.loads(r["params"]),
        seed_number=int(r["seed_number"]),
        attrs=json.loads(r["attrs"] or "{}"),
        trial_number=r["trial_number"],
        worker=r["worker"],
        priority=int(r.get("priority", 1)),
    )


def _next_retry(base: str, keys: set[str]) -> int:
    n = 1
    while f"{base}/retry:{n}" in keys:
        n += 1
    return n


def _finite_or_none(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _chunks(items: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
