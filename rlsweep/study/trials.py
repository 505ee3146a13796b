"""The trial store: a run's Optuna trial, driven through Optuna's storage API.

The only module in rlsweep that uses Optuna's private API (`study._storage`, `_study_id`,
`FrozenTrial._trial_id`): going through `optuna.Trial` re-reads the trial several times, most of a
short run's overhead. When Optuna changes those names, this is the one file to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class RunTrial:
    """The Optuna trial of a running run, driven through the storage API (no `optuna.Trial`, whose
    construction and `tell` re-read the trial several times: most of a short run's overhead)."""

    trial_id: int
    number: int
    params: dict[str, Any]  # Optuna's external values (JSON strings for list choices)


def trial_id(trial: Any) -> int:
    """The storage id of a FrozenTrial or `optuna.Trial` (Optuna keeps it private)."""
    return int(trial._trial_id)


def run_trial(trial: Any) -> RunTrial:
    """A RunTrial for an `optuna.Trial` made by `study.ask` (the samplers that need one)."""
    return RunTrial(trial_id(trial), trial.number, dict(trial.params))


class TrialStore:
    """The Optuna trials of one study."""

    def __init__(self, study: Any, space: Any) -> None:
        self.study = study
        self.space = space
        self._shared = False  # whether Optuna's tables are in the database of `_shared_with`
        self._shared_with: Any = None

    def create(self, params: Mapping[str, Any], attrs: Mapping[str, Any]) -> RunTrial:
        """A RUNNING trial with these params and attributes, written in one transaction."""
        import datetime

        from optuna.trial import FrozenTrial, TrialState

        dists = {name: self.space[name].distribution() for name in params}
        if (rdb := self._rdb()) is not None:
            return self._insert(rdb.engine, dists, params, attrs)
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
        new_id = storage_.create_new_trial(self.study._study_id, template_trial=template)
        # Optuna's cached storage has just recorded the new trial's number: reading it back from the
        # database (get_trial_number_from_id) would cost a query per run.
        cached = getattr(storage_, "_trial_id_to_study_id_and_number", {}).get(new_id)
        number = cached[1] if cached else storage_.get_trial_number_from_id(new_id)
        return RunTrial(new_id, number, dict(params))

    def _insert(self, engine: Any, dists: Mapping[str, Any], params: Mapping[str, Any], attrs: Mapping[str, Any]) -> RunTrial:
        """The trial written as Optuna's RDB storage writes one from a template (its models'
        tables, the number counted under a lock on the study's row, as Optuna counts it), in six
        statements instead of Optuna's ORM work: a query per param and attribute to find the trial
        again, check a param's distribution against the study's first and look for an existing
        attribute. Those checks hold here by construction: the params come from the study's one
        search space (a changed space is refused when the study loads) and the trial is new. On
        SQLite the whole transaction holds the database's one write lock, so its length is what
        limits several workers (bench/scale.py)."""
        import datetime
        import json

        import sqlalchemy as sa
        from optuna.distributions import distribution_to_json
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        trials, studies = models.TrialModel.__table__, models.StudyModel.__table__
        study_id = self.study._study_id
        with engine.begin() as con:
            if engine.dialect.name != "sqlite":  # SQLite: the INSERT takes the database's write lock
                con.execute(sa.select(studies.c.study_id).where(studies.c.study_id == study_id).with_for_update())
            insert = trials.insert().values(study_id=study_id, number=None, state=TrialState.RUNNING, datetime_start=datetime.datetime.now())
            new_id = int(con.execute(insert).inserted_primary_key[0])
            past = sa.select(sa.func.count(trials.c.trial_id)).where(trials.c.study_id == study_id, trials.c.trial_id < new_id)
            number = int(con.execute(past).scalar_one())
            con.execute(trials.update().where(trials.c.trial_id == new_id).values(number=number))
            if params:
                rows = [
                    {
                        "trial_id": new_id,
                        "param_name": name,
                        "param_value": dists[name].to_internal_repr(value),
                        "distribution_json": distribution_to_json(dists[name]),
                    }
                    for name, value in params.items()
                ]
                con.execute(models.TrialParamModel.__table__.insert(), rows)
            if attrs:
                rows = [{"trial_id": new_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]
                con.execute(models.TrialUserAttributeModel.__table__.insert(), rows)
        return RunTrial(new_id, number, dict(params))

    def _rdb(self) -> Any | None:
        """Optuna's RDB storage under its cache, or None (a journal file)."""
        from optuna.storages import RDBStorage

        backend = getattr(self.study._storage, "_backend", self.study._storage)
        return backend if isinstance(backend, RDBStorage) else None

    def set_attr(self, trial: RunTrial, key: str, value: Any) -> None:
        self.study._storage.set_trial_user_attr(trial.trial_id, key, value)

    def set_system_attr(self, trial: RunTrial, key: str, value: Any) -> None:
        """rlsweep's own notes on a trial (a pruner's memo for its configuration), kept out of user_attrs."""
        self.study._storage.set_trial_system_attr(trial.trial_id, key, value)

    def intermediate_insert(self, trial: RunTrial, step: int, value: float, engine: Any) -> Any | None:
        """Optuna's intermediate value as one INSERT ... SELECT that writes only while the trial is
        RUNNING, for `engine` (rlsweep's) to run in its own transaction, with the evaluation's metrics:
        half the commits of a report and none of Optuna's ORM work per step, the bulk of a command
        run's supervision. None where Optuna's tables are not in that database (a journal file);
        then `report` is the way. Written as Optuna's RDB storage writes it (its models' tables)."""
        if self._shared_with is not engine:
            rdb = self._rdb()
            self._shared = rdb is not None and rdb.engine.url == engine.url
            self._shared_with = engine
        if not self._shared:
            return None
        import sqlalchemy as sa
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        values, trials = models.TrialIntermediateValueModel.__table__, models.TrialModel.__table__
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(float(value))
        row = sa.select(
            sa.literal(trial.trial_id, sa.Integer),
            sa.literal(int(step), sa.Integer),
            sa.literal(stored, values.c.intermediate_value.type),
            sa.literal(kind, values.c.intermediate_value_type.type),
        ).where(trials.c.trial_id == trial.trial_id, trials.c.state == TrialState.RUNNING)
        return values.insert().from_select(["trial_id", "step", "intermediate_value", "intermediate_value_type"], row)

    def report(self, trial: RunTrial, step: int, value: float) -> None:
        """The objective's learning curve as Optuna intermediate values (pruners and the dashboard read it)."""
        self.study._storage.set_trial_intermediate_value(trial.trial_id, int(step), float(value))

    def finish(self, trial: RunTrial, state: Any, value: float | None = None) -> None:
        """End the trial: COMPLETE with its value, PRUNED or FAIL. Raises if someone else ended it."""
        self.study._storage.set_trial_state_values(trial.trial_id, state, None if value is None else [float(value)])

    def fail_lost(self, trial: Any, reason: str) -> None:
        """Fail a FrozenTrial whose worker is gone; a worker that came back and finished it this
        instant wins (its result stands)."""
        from optuna.trial import TrialState

        try:
            self.study._storage.set_trial_user_attr(trial_id(trial), "failure_reason", reason)
            self.study._storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)
        except Exception:
            pass

    def frozen(self, trial: RunTrial) -> Any:
        return self.study._storage.get_trial(trial.trial_id)

    def trial(self, number: int) -> Any:
        storage_ = self.study._storage
        return storage_.get_trial(storage_.get_trial_id_from_study_id_trial_number(self.study._study_id, number))

    def of_row(self, trial_number: int | None, key: str) -> Any:
        """The trial of a claimed run, or None. A worker records the trial's number on the row just
        after creating the trial, so a worker killed in between leaves a RUNNING trial that only
        its `key` attribute links to the row."""
        from optuna.trial import TrialState

        if trial_number is not None:
            return self.trial(trial_number)
        running = self.study.get_trials(deepcopy=False, states=[TrialState.RUNNING])
        return next((t for t in running if t.user_attrs.get("key") == key), None)
