"""The study over the storage: exactly-once claims under contention, lost runs, plain-Optuna readability."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import optuna
import pytest

from rlsweep.config import load_sweep
from rlsweep.strategies import make_strategy
from rlsweep.study import RunSpec, StudyHandle
from tests.conftest import synthetic_sweep


def _claimer(url: str, name: str, worker: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    handle = StudyHandle.load(name, url)
    got = []
    while (row := handle.claim(worker)) is not None:
        got.append(row.key)
        handle.set_row(row.id, state="done")
    out.put(got)


def test_eight_processes_claim_every_run_exactly_once(storage_url: str, study_name: str, tmp_path: Path) -> None:
    loaded = load_sweep(synthetic_sweep(study_name, tmp_path))
    handle = StudyHandle.create_or_load(loaded, storage_url)
    keys = [f"job:{i}" for i in range(40)]
    assert handle.enqueue([RunSpec(k, {}) for k in keys]) == 40
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(storage_url, study_name, f"w{i}", out)) for i in range(8)]
    for p in procs:
        p.start()
    claimed = [key for _ in procs for key in out.get(timeout=120)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(claimed) == sorted(keys)  # every run once, none twice, none lost
    assert handle.row_counts() == {"done": 40}


def _batch_claimer(url: str, name: str, worker: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    handle = StudyHandle.load(name, url)
    got = []
    while rows := handle.claim_batch(worker, 3):
        assert 1 <= len(rows) <= 3 and all(r.state == "running" and r.worker == worker for r in rows)
        got.extend(r.key for r in rows)
        for r in rows:
            handle.set_row(r.id, state="done")
    out.put(got)


def test_batch_claims_take_every_run_exactly_once(storage_url: str, study_name: str, tmp_path: Path) -> None:
    loaded = load_sweep(synthetic_sweep(study_name, tmp_path))
    handle = StudyHandle.create_or_load(loaded, storage_url)
    keys = [f"job:{i}" for i in range(40)]
    handle.enqueue([RunSpec(k, {}, priority=0 if i >= 37 else 1) for i, k in enumerate(keys)])
    first = handle.claim_batch("solo", 4)  # lowest priority value first, then queue order
    assert [r.key for r in first] == ["job:37", "job:38", "job:39", "job:0"]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_batch_claimer, args=(storage_url, study_name, f"w{i}", out)) for i in range(6)]
    for p in procs:
        p.start()
    claimed = [key for _ in procs for key in out.get(timeout=120)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(claimed + [r.key for r in first]) == sorted(keys)  # every run once, none twice
    assert handle.row_counts() == {"done": 36, "running": 4}
    assert handle.claim_batch("late", 5) == []


def test_enqueue_is_idempotent_by_key(sqlite_url: str, study_name: str, tmp_path: Path) -> None:
    loaded = load_sweep(synthetic_sweep(study_name, tmp_path))
    handle = StudyHandle.create_or_load(loaded, sqlite_url)
    specs = make_strategy(loaded).initial_runs()
    assert handle.enqueue(specs) == 6
    assert handle.enqueue(specs) == 0
    assert handle.row_counts() == {"waiting": 6}


def test_lost_run_is_failed_and_requeued_once(sqlite_url: str, study_name: str, tmp_path: Path) -> None:
    loaded = load_sweep(synthetic_sweep(study_name, tmp_path, strategy={"name": "grid", "seeds": 1}, params={"x": {"choice": [1, 2]}}))
    handle = StudyHandle.create_or_load(loaded, sqlite_url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    handle.register_worker("dead")
    row = handle.claim("dead")
    assert row is not None
    trial = handle.create_trial(row.params or {}, {"key": row.key})
    handle.set_row(row.id, trial_number=trial.number)
    assert handle.reap_lost() == []  # its heartbeat is fresh
    time.sleep(2.2)
    assert handle.reap_lost() == [row.key]
    assert handle.reap_lost() == []  # exactly one reaper acts
    frozen = handle.trial(trial.number)
    assert frozen.state == optuna.trial.TrialState.FAIL
    assert frozen.user_attrs["failure_reason"] == "worker lost"
    waiting = {r.key: r for r in handle.rows(["waiting"])}
    assert f"{row.key}/retry:1" in waiting
    assert waiting[f"{row.key}/retry:1"].params == row.params
    # the requeued copy is lost too: requeue is 1, so it is not queued a third time
    again = handle.claim("dead", key=f"{row.key}/retry:1")
    assert again is not None
    time.sleep(2.2)
    handle.reap_lost()
    assert f"{row.key}/retry:2" not in {r.key for r in handle.rows()}


def test_study_reads_back_with_plain_optuna(storage_url: str, study_name: str, tmp_path: Path) -> None:
    from rlsweep.worker import Worker

    loaded = load_sweep(synthetic_sweep(study_name, tmp_path, strategy={"name": "tpe", "runs": 4, "seeds": 2}))
    handle = StudyHandle.create_or_load(loaded, storage_url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    assert Worker(handle).loop() == 4
    study = optuna.load_study(study_name=study_name, storage=storage_url)
    trials = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(trials) == 4
    for t in trials:
        assert {"seed", "key"} <= set(t.user_attrs)
        assert set(t.params) == {"learning_rate", "gamma", "policy_kwargs.net_arch"}
        assert len(t.intermediate_values) == 4  # the objective's curve: one value per evaluation
    # two seeds per configuration, seeds 0 and 1, sharing params
    by_config: dict[str, list[int]] = {}
    for t in trials:
        by_config.setdefault(handle.config_id(t), []).append(t.user_attrs["seed"])
    assert sorted(sorted(v) for v in by_config.values()) == [[0, 1], [0, 1]]
    metrics = handle.metrics()
    assert {m["name"] for m in metrics} == {"eval/mean_return", "train/loss"}
    assert len(metrics) == 4 * 4 * 2


def test_password_never_printed() -> None:
    from rlsweep.storage import redact

    assert redact("postgresql+psycopg2://rl:secret@127.0.0.1:5432/optuna") == "postgresql+psycopg2://rl:***@127.0.0.1:5432/optuna"
    assert redact("sqlite:///runs/x/study.db") == "sqlite:///runs/x/study.db"
    # every password character is masked, also '@', ':' and '/' (the old pattern stopped at the first '@')
    assert redact("mysql://root:p@ss:w/rd@db.example:3306/rl") == "mysql://root:***@db.example:3306/rl"
    assert redact("postgresql://u:Sentinel%40Pass:7@127.0.0.1/x") == "postgresql://u:***@127.0.0.1/x"
    assert redact("postgresql://u@host/db") == "postgresql://u@host/db"  # no password: nothing to mask


def test_bare_server_urls_reach_the_installed_drivers(study_name: str, tmp_path: Path) -> None:
    """`postgresql://` and `mysql://` name no driver; SQLAlchemy 2 would pick psycopg 3 and mysqlclient,
    which the extras do not install. They open a study with psycopg2 and PyMySQL."""
    import importlib.util

    from rlsweep.storage import with_driver
    from tests.conftest import server_url

    assert importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("MySQLdb") is None
    for kind, bare in (("postgres", "postgresql://"), ("mysql", "mysql://")):
        full = server_url(kind)
        url = bare + full.split("://", 1)[1]
        assert with_driver(url) == full
        loaded = load_sweep(synthetic_sweep(study_name, tmp_path, strategy__runs=1))
        handle = StudyHandle.create_or_load(loaded, url)
        assert handle.enqueue([RunSpec("job:0", {})]) == 1
        row = handle.claim("w0")
        assert row is not None and row.key == "job:0"  # rlsweep's own tables, through the same URL
        assert optuna.load_study(study_name=study_name, storage=full).study_name == study_name


def test_unreachable_server_error_hides_password(study_name: str) -> None:
    from rlsweep.errors import StorageError
    from rlsweep.storage import open_optuna_storage

    with pytest.raises(StorageError) as excinfo:
        open_optuna_storage("postgresql+psycopg2://rl:hunter2@127.0.0.1:1/optuna", create=True)
    assert "hunter2" not in str(excinfo.value)
    assert "rl:***@127.0.0.1:1" in str(excinfo.value)
    assert "Connection refused" in str(excinfo.value)  # the driver's cause, not Optuna's wrapper


def test_journal_file_storage_with_metrics_beside_it(tmp_path: Path, study_name: str) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from rlsweep.worker import Worker

    url = str(tmp_path / "shared" / "study.log")
    loaded = load_sweep(synthetic_sweep(study_name, tmp_path, strategy={"name": "random", "runs": 3}))
    handle = StudyHandle.create_or_load(loaded, url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    assert Worker(handle).loop() == 3
    study = optuna.load_study(study_name=study_name, storage=JournalStorage(JournalFileBackend(url)))
    assert len(study.get_trials(states=[optuna.trial.TrialState.COMPLETE])) == 3
    assert (tmp_path / "shared" / "study.log.rlsweep.db").exists()  # rlsweep's tables beside the journal
    assert len(StudyHandle.load(study_name, url).metrics(names=["eval/mean_return"])) == 3 * 4


def test_an_evaluation_and_its_intermediate_value_in_one_transaction(storage_url: str, study_name: str, tmp_path: Path) -> None:
    """record_evaluation writes Optuna's intermediate value itself, beside the metrics, where
    Optuna's tables share rlsweep's database: what Optuna reads back must be what Optuna's own
    storage would have written (infinities and NaN included); a repeated step is updated and a
    finished trial refused, as by Optuna."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    loaded = load_sweep(synthetic_sweep(study_name, tmp_path))
    handle = StudyHandle.create_or_load(loaded, storage_url)
    trial = handle.create_trial({}, {"seed": 0})
    assert handle.trials.intermediate_insert(trial, 0, 1.0, handle.metrics_store.engine) is not None  # the one-transaction way
    for step, value in [(100, 1.5), (200, float("inf")), (300, float("-inf")), (400, -2.25)]:
        handle.record_evaluation(trial, step, {"eval/mean_return": value, "train/loss": 0.5}, value)
    handle.record_evaluation(trial, 500, {"eval/mean_return": float("nan")}, float("nan"))
    handle.record_evaluation(trial, 600, {"train/loss": 0.25}, None)  # no objective: metrics only
    handle.record_evaluation(trial, 400, {"eval/mean_return": 7.0}, 7.0)  # a step again: updated
    values = optuna.load_study(study_name=study_name, storage=storage_url).trials[0].intermediate_values
    assert sorted(values) == [100, 200, 300, 400, 500]
    assert (values[100], values[200], values[300], values[400]) == (1.5, float("inf"), float("-inf"), 7.0)
    assert values[500] != values[500]  # NaN
    assert len(handle.metrics()) == 2 * 4 + 1 + 1 + 1
    handle.finish(trial, TrialState.COMPLETE, 7.0)
    with pytest.raises(UpdateFinishedTrialError):
        handle.record_evaluation(trial, 700, {"eval/mean_return": 1.0}, 1.0)
    assert [m["step"] for m in handle.metrics()][-1] == 700  # its metrics are kept all the same


def test_a_journal_storage_reports_through_optuna(tmp_path: Path, study_name: str) -> None:
    url = str(tmp_path / "study.log")
    handle = StudyHandle.create_or_load(load_sweep(synthetic_sweep(study_name, tmp_path)), url)
    trial = handle.create_trial({}, {"seed": 0})
    assert handle.trials.intermediate_insert(trial, 0, 1.0, handle.metrics_store.engine) is None
    handle.record_evaluation(trial, 100, {"eval/mean_return": 3.0}, 3.0)
    assert handle.trial(trial.number).intermediate_values == {100: 3.0}
    assert len(handle.metrics()) == 1


def test_a_missing_study_is_named_from_the_study_names_alone(tmp_path: Path) -> None:
    # A shared database holds many studies with many trials: the error for a mistyped name lists
    # the latest names and suggests the closest, and reads no trial to do so (summaries would read
    # every trial of every study: 16 s on the suite's MariaDB after a few runs of the suite).
    import sqlalchemy as sa

    from rlsweep.errors import StorageError

    url = f"sqlite:///{tmp_path}/many.db"
    names = [f"sweep-{i:02d}" for i in range(12)]
    for name in names:
        study = optuna.create_study(study_name=name, storage=url)
        study.add_trial(optuna.trial.create_trial(value=1.0, intermediate_values={100: 0.5}))
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        with pytest.raises(StorageError) as err:
            StudyHandle.load("sweep-1", url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert str(err.value) == (
        f"no study 'sweep-1' in {url} (did you mean 'sweep-11'?); known: {', '.join(names[2:])} and 2 more"
    )
    assert statements and not [s for s in statements if "trial" in s.lower()], statements
