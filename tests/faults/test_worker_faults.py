"""Trainer and worker faults (issue 12, part 1): a trainer that exits, raises its own
KeyboardInterrupt, segfaults or hangs fails its run with that reason and the sweep goes on; a
run whose worker is lost more often than `worker.requeue` allows ends as failed, never dropped;
workers die with `rlsweep run`, and SIGTERM interrupts it like Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from rlsweep.study import StudyHandle
from tests.conftest import run_in_process, synthetic_sweep
from tests.faults.helpers import alive, rlsweep_env, wait_for


def _sweep(name: str, tmp_path: Path, fault: str, seeds: int = 3, url: str | None = None, **worker: Any) -> dict[str, Any]:
    return synthetic_sweep(
        name,
        tmp_path,
        trainer={"kind": "function", "target": "tests.faults.faulty:train", "timesteps": 1000, "sleep": 0.05, "fault": fault},
        strategy={"name": "grid", "seeds": seeds},
        params={},
        storage=url or f"sqlite:///{tmp_path}/study.db",
        worker={"heartbeat": 0.5, "lost_after": 4.0, "requeue": 1, **worker},
    )


def _write(sweep: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path




def _run(*args: str, cwd: Path, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlsweep", *args], cwd=cwd, env=rlsweep_env(**extra), capture_output=True, text=True, timeout=timeout
    )


def _trials(sweep: dict[str, Any]) -> list[Any]:
    return optuna.load_study(study_name=sweep["study"], storage=sweep["storage"]).trials






@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("sys_exit", "the trainer called sys.exit(3)"),
        ("system_exit", "the trainer called sys.exit('bye')"),
        ("keyboard_interrupt", "the trainer raised KeyboardInterrupt of its own (no signal reached the worker)"),
        ("segfault", "worker crashed (SIGSEGV: Segmentation fault) while training this run"),
    ],
)
def test_a_trainer_that_exits_or_crashes_fails_its_run_and_the_sweep_goes_on(
    tmp_path: Path, study_name: str, fault: str, reason: str
) -> None:
    sweep = _sweep(study_name, tmp_path, fault)
    done = _run("run", str(_write(sweep, tmp_path)), "--workers", "1", "--quiet", cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    trials = _trials(sweep)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [(t.user_attrs["seed"], t.user_attrs["failure_reason"]) for t in failed] == [(0, reason)]
    assert sorted(t.user_attrs["seed"] for t in trials if t.state == TrialState.COMPLETE) == [1, 2]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    if fault == "segfault":  # the dead worker was replaced, its run not retried
        assert "started 1 worker(s) to replace ones that died" in out
        assert len(trials) == 3


def test_a_run_lost_more_often_than_requeue_allows_fails_and_is_reported(tmp_path: Path, study_name: str, storage_url: str) -> None:
    """The trainer SIGKILLs its own worker every time it trains seed 0: lost once, re-queued
    (worker.requeue: 1), lost again, then failed as such; `run` says so and exits 1, and so does
    the next `run`, which has nothing left to run (nothing waits forever, nothing is dropped).
    On SQLite, PostgreSQL and MariaDB."""
    sweep = _sweep(study_name, tmp_path, "kill_worker", seeds=2, url=storage_url)
    file = _write(sweep, tmp_path)
    first = _run("run", str(file), "--workers", "1", "--quiet", cwd=tmp_path)
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "1 configuration(s) never completed: worker lost 2 times (worker.requeue: 1 spent)" in out
    handle = StudyHandle.load(study_name, sweep["storage"])
    rows = {r.key: r.state for r in handle.rows()}
    assert rows == {"grid:0": "lost", "grid:0/retry:1": "failed", "grid:1": "done"}
    reasons = [t.user_attrs.get("failure_reason") for t in _trials(sweep) if t.state == TrialState.FAIL]
    assert reasons == ["worker lost", "worker lost 2 times (worker.requeue: 1 spent)"]
    again = _run("run", str(file), "--workers", "1", "--quiet", cwd=tmp_path)
    out = again.stdout + again.stderr
    assert again.returncode == 1, out
    assert "nothing left to run (1 done, 1 failed, 1 lost)" in out
    assert "1 configuration(s) never completed" in out


@pytest.mark.parametrize(
    ("fault", "setting", "reason"),
    [
        ("hang", {"run_timeout": 2.0}, "stopped by worker.run_timeout: still training after 2 s"),
        ("hang_after_reports", {"idle_timeout": 1.5}, "stopped by worker.idle_timeout: no report for 1.5 s"),
    ],
)
def test_a_hanging_run_is_stopped_and_failed_by_its_timeout(
    tmp_path: Path, study_name: str, fault: str, setting: dict[str, float], reason: str
) -> None:
    sweep = _sweep(study_name, tmp_path, fault, seeds=2, **setting)
    started = time.monotonic()
    run_in_process(sweep)
    assert time.monotonic() - started < 60
    trials = _trials(sweep)
    assert [(t.user_attrs["seed"], t.user_attrs["failure_reason"]) for t in trials if t.state == TrialState.FAIL] == [(0, reason)]
    assert [t.user_attrs["seed"] for t in trials if t.state == TrialState.COMPLETE] == [1]
    hung = next(t for t in trials if t.state == TrialState.FAIL)
    if fault == "hang_after_reports":  # what it reported before going silent is kept
        assert sorted(hung.intermediate_values) == [250, 500, 750, 1000, 1250]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_do_not_outlive_rlsweep_run(tmp_path: Path, study_name: str, sig: signal.Signals) -> None:
    """SIGKILL of `rlsweep run` (what `timeout -s KILL` or the OOM killer do) ends its workers too;
    SIGTERM interrupts it like Ctrl-C (exit 130). Either way the runs are interrupted and re-queued,
    and the next `run` finishes them."""
    sweep = _sweep(study_name, tmp_path, "hang", seeds=2)
    file = _write(sweep, tmp_path)
    marker = tmp_path / "hanging"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", str(file), "--workers", "1", "--quiet"],
        cwd=tmp_path, env=rlsweep_env(HANG_FILE=str(marker)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_for(marker.exists)
    handle = StudyHandle.load(study_name, sweep["storage"])
    pids = [int(w["pid"]) for w in handle.workers()]
    assert len(pids) == 1 and alive(pids[0])
    proc.send_signal(sig)
    out = proc.communicate(timeout=90)[0].decode()
    if sig == signal.SIGTERM:
        assert proc.returncode == 130, out
    wait_for(lambda: not alive(pids[0]), timeout=60)
    wait_for(lambda: not handle.rows(["running"]), timeout=30)
    hung = next(t for t in _trials(sweep) if t.user_attrs["seed"] == 0)
    assert (hung.state, hung.user_attrs["failure_reason"]) == (TrialState.FAIL, "interrupted")
    finish = _run("run", str(file), "--workers", "1", "--quiet", "--set", "trainer.fault=none", cwd=tmp_path, timeout=120)
    assert finish.returncode == 0, finish.stdout + finish.stderr
    states = {r.key: r.state for r in handle.rows()}
    assert states["grid:0"] == "interrupted" and states["grid:0/retry:1"] == "done" and states["grid:1"] == "done"


def test_a_dead_worker_whose_run_another_reaper_settled_is_replaced(tmp_path: Path, study_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker dies after recording its run's result, before marking its queue row (as one cut
    off by a storage outage does), and another worker's reaper settles that row as done before
    `rlsweep run` looks at the death: the death is still one of a worker holding a run, so a new
    worker takes its place and the sweep ends without error (it was taken for a worker that could
    not start, was not replaced, and made `run` exit 1)."""
    from rlsweep.api.engine import WorkerDeaths
    from rlsweep.config import load_sweep
    from rlsweep.launchers.local import LocalLauncher
    from rlsweep.strategies import make_strategy

    sweep = synthetic_sweep(study_name, tmp_path, storage=f"sqlite:///{tmp_path}/study.db", strategy={"name": "random", "runs": 3})
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, sweep["storage"])
    handle.enqueue(make_strategy(loaded).initial_runs())
    launcher = LocalLauncher(tmp_path / "logs")
    monkeypatch.setenv("RLSWEEP_TEST_EXIT_AT", "finished")  # dies between the trial's COMPLETE and its row's "done"
    monkeypatch.setenv("PYTHONPATH", rlsweep_env()["PYTHONPATH"])
    launcher.launch(study_name, handle.url, 1)
    monkeypatch.delenv("RLSWEEP_TEST_EXIT_AT")  # its replacement trains normally
    wait_for(lambda: launcher.exit_codes() == [137], timeout=60)
    [row] = handle.rows(["running"])
    assert handle.trial(row.trial_number).state == TrialState.COMPLETE
    assert handle.reap_lost(lost_after=0.0) == [row.key]  # the other reaper, first
    said: list[str] = []
    deaths = WorkerDeaths(handle, launcher, 1, said.append)
    try:
        assert deaths.keep_going(), said
        assert deaths.replaced == {0}, said
        assert f"worker 0 died (exit code 137) holding {row.key}: settled" in said, said
        wait_for(lambda: not deaths.keep_going(), timeout=120)
    finally:
        launcher.interrupt()
        launcher.wait(timeout=30)
    assert launcher.exit_codes() == [137, 0]
    rows = {r.key: r.state for r in handle.rows()}
    assert sorted(rows.values()) == ["done"] * 3, rows  # the reaped run kept its result, not trained again
    assert len(handle.get_trials(deepcopy=False)) == 3
