"""Faults: a worker killed with SIGKILL loses nothing; Ctrl-C stops cleanly and `run` resumes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from rlsweep.examples import synthetic
from rlsweep.study import StudyHandle
from rlsweep.trainers._base import RunContext
from tests.conftest import synthetic_sweep
from tests.faults.helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def hanging(run: RunContext) -> None:
    """The sleepy trainer; in a process started with HANG_FILE set, its first run reports once,
    writes its trial number there and hangs, so the test kills the worker mid-run, not by luck."""
    marker = os.environ.get("HANG_FILE")
    if marker:
        run.report(run.eval_every, {"eval/mean_return": 0.0})
        Path(marker + ".tmp").write_text(str(run.number))
        Path(marker + ".tmp").rename(marker)
        time.sleep(3600)
    synthetic.sleepy(run)


def _sleepy_sweep(name: str, tmp_path: Path, runs: int, url: str | None = None) -> Path:
    sweep = synthetic_sweep(
        name,
        tmp_path,
        trainer={"kind": "function", "target": "tests.test_faults:hanging", "timesteps": 1000, "sleep": 0.3},
        strategy={"name": "grid", "seeds": runs},
        params={},
        storage=url or f"sqlite:///{tmp_path}/study.db",
    )
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def _queued(file: Path, url: str) -> StudyHandle:
    """The study of sweep file `file` at `url`, created with its runs queued and no worker started
    (the way `rlsweep run` queues them)."""
    from rlsweep.config import load_sweep
    from rlsweep.strategies import make_strategy

    loaded = load_sweep(file)
    handle = StudyHandle.create_or_load(loaded, url)
    handle.enqueue(make_strategy(loaded).initial_runs())
    return handle


def _rlsweep(*args: str, cwd: Path, **env_vars: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env_vars)
    return subprocess.Popen([sys.executable, "-m", "rlsweep", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkilled_worker_loses_nothing(tmp_path: Path, study_name: str, storage_url: str) -> None:
    url = storage_url  # SQLite, PostgreSQL and MariaDB
    file = _sleepy_sweep(study_name, tmp_path, runs=4, url=url)
    # Create the study and queue without workers (a --index of a run that does not exist is refused,
    # so queue through the API the same way `rlsweep run` does).
    _queued(file, url)
    marker = tmp_path / "hanging"
    victim = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path, HANG_FILE=str(marker))
    survivor = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path)
    wait_for(marker.exists, timeout=60.0)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out.decode()
    study = optuna.load_study(study_name=study_name, storage=url)
    complete = study.get_trials(states=[TrialState.COMPLETE])
    failed = study.get_trials(states=[TrialState.FAIL])
    assert len(complete) == 4
    assert [t.user_attrs["failure_reason"] for t in failed] == ["worker lost"]
    assert failed[0].number == int(marker.read_text())
    # the lost run was run again with the same seed
    assert failed[0].user_attrs["seed"] in {t.user_attrs["seed"] for t in complete}
    assert sorted(t.user_attrs["seed"] for t in complete) == [0, 1, 2, 3]


@pytest.mark.parametrize("point", ["claimed", "created", "prepared"])
def test_ctrl_c_between_claim_and_training_leaves_nothing_running(tmp_path: Path, study_name: str, point: str) -> None:
    """A Ctrl-C that lands after a claim ("claimed"), after the run's trial was created ("created")
    or once the run is prepared, signals no longer deferred ("prepared"), before training starts,
    settles that run as interrupted at once: no trial or queue row is left running for the next
    `rlsweep run` to reap, and the next run trains it."""
    file = _sleepy_sweep(study_name, tmp_path, runs=2)
    url = f"sqlite:///{tmp_path}/study.db"
    handle = _queued(file, url)
    victim = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path, RLSWEEP_TEST_SIGINT_AT=point)
    out, _ = victim.communicate(timeout=60)
    assert victim.returncode == 130, out.decode()
    assert not handle.rows(["running"])
    study = optuna.load_study(study_name=study_name, storage=url)
    assert not study.get_trials(states=[TrialState.RUNNING])
    [first] = [r for r in handle.rows() if r.state == "interrupted"]
    if point != "claimed":
        assert study.trials[first.trial_number].user_attrs["failure_reason"] == "interrupted"
    survivor = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path)
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out.decode()
    complete = optuna.load_study(study_name=study_name, storage=url).get_trials(states=[TrialState.COMPLETE])
    assert sorted(t.user_attrs["seed"] for t in complete) == [0, 1]


def test_ctrl_c_between_a_batch_claim_and_its_training_leaves_nothing_running(tmp_path: Path, study_name: str) -> None:
    """The batch path (a worker claims 3 runs for one `train_batch` call): a Ctrl-C once the runs
    are prepared, before the batch trains, settles all three as interrupted; the next worker trains
    them with the same seeds."""
    sweep = synthetic_sweep(
        study_name,
        tmp_path,
        trainer={"kind": "function", "target": "rlsweep.examples.batch_synthetic:train_batch", "timesteps": 1000, "batch": 3},
        strategy={"name": "grid", "seeds": 3},
        params={},
        storage=f"sqlite:///{tmp_path}/study.db",
    )
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(sweep))
    url = sweep["storage"]
    handle = _queued(file, url)
    victim = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path, RLSWEEP_TEST_SIGINT_AT="prepared")
    out, _ = victim.communicate(timeout=60)
    assert victim.returncode == 130, out.decode()
    assert not handle.rows(["running"])
    interrupted = handle.rows(["interrupted"])
    assert len(interrupted) == 3
    study = optuna.load_study(study_name=study_name, storage=url)
    assert not study.get_trials(states=[TrialState.RUNNING])
    assert [t.user_attrs["failure_reason"] for t in study.trials] == ["interrupted"] * 3
    survivor = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path)
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out.decode()
    complete = optuna.load_study(study_name=study_name, storage=url).get_trials(states=[TrialState.COMPLETE])
    assert sorted(t.user_attrs["seed"] for t in complete) == [0, 1, 2]


def test_ctrl_c_while_a_finished_run_is_settled_keeps_its_result(tmp_path: Path, study_name: str) -> None:
    """A Ctrl-C that lands after the run's trial was recorded COMPLETE, before its queue row says
    done ("finished"), waits until the run is settled: the row is done, the worker stops (130),
    nothing is left running, and the next worker trains only the other run."""
    file = _sleepy_sweep(study_name, tmp_path, runs=2)
    url = f"sqlite:///{tmp_path}/study.db"
    handle = _queued(file, url)
    victim = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path, RLSWEEP_TEST_SIGINT_AT="finished")
    out, _ = victim.communicate(timeout=60)
    assert victim.returncode == 130, out.decode()
    assert "run 0 complete" in out.decode()
    assert not handle.rows(["running"])
    [done] = handle.rows(["done"])
    study = optuna.load_study(study_name=study_name, storage=url)
    assert not study.get_trials(states=[TrialState.RUNNING])
    assert study.trials[done.trial_number].state == TrialState.COMPLETE
    survivor = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path)
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out.decode()
    study = optuna.load_study(study_name=study_name, storage=url)
    assert sorted(t.user_attrs["seed"] for t in study.get_trials(states=[TrialState.COMPLETE])) == [0, 1]
    assert len(study.trials) == 2  # the finished run was not run again


def test_a_burst_of_stop_signals_stops_the_worker(tmp_path: Path, study_name: str) -> None:
    """SIGTERM and SIGINT arriving together (the launcher's stop, then the parent-death signal as
    `rlsweep run` goes, then more): the worker still settles its run and exits. A stop handler that
    took a lock (threading.Event.set) deadlocked when the next signal landed while it held it: the
    worker hung forever, its heartbeat keeping the run alive."""
    file = _sleepy_sweep(study_name, tmp_path, runs=1)
    url = f"sqlite:///{tmp_path}/study.db"
    handle = _queued(file, url)
    marker = tmp_path / "hanging"
    worker = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path, HANG_FILE=str(marker))
    wait_for(marker.exists, timeout=60.0)
    with contextlib.suppress(ProcessLookupError):
        for _ in range(2000):
            os.kill(worker.pid, signal.SIGTERM)
            os.kill(worker.pid, signal.SIGINT)
    try:
        out, _ = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        pytest.fail(f"the worker hung after a burst of SIGTERM/SIGINT: {worker.communicate()[0].decode()}")
    assert worker.returncode == 130, out.decode()
    # Its run is settled as interrupted and queued again; nothing is left running.
    assert sorted(r.state for r in handle.rows()) == ["interrupted", "waiting"], out.decode()
    assert not optuna.load_study(study_name=study_name, storage=url).get_trials(states=[TrialState.RUNNING])


def test_worker_killed_between_claim_and_trial_is_recorded_as_lost(tmp_path: Path, study_name: str) -> None:
    """A worker that dies after claiming a row, before the run's trial exists, leaves no trial to
    fail: the lost row itself says why, and the retry that runs instead says what it retries."""
    file = _sleepy_sweep(study_name, tmp_path, runs=2)
    url = f"sqlite:///{tmp_path}/study.db"
    handle = _queued(file, url)
    env = dict(os.environ, RLSWEEP_TEST_EXIT_AT="claimed", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    victim = subprocess.run([sys.executable, "-m", "rlsweep", "worker", "--study", study_name, "--storage", url], cwd=tmp_path, env=env, capture_output=True)
    assert victim.returncode == 137, victim.stdout.decode() + victim.stderr.decode()
    [claimed] = handle.rows(["running"])
    assert claimed.trial_number is None
    survivor = _rlsweep("worker", "--study", study_name, "--storage", url, cwd=tmp_path)
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out.decode()
    rows = {r.key: r for r in handle.rows()}
    assert rows[claimed.key].state == "lost"
    assert rows[claimed.key].attrs["lost_reason"] == "worker lost before the run's trial was created"
    retry = rows[f"{claimed.key}/retry:1"]
    assert retry.state == "done" and retry.attrs["retry_reason"] == "worker lost"
    study = optuna.load_study(study_name=study_name, storage=url)
    complete = study.get_trials(states=[TrialState.COMPLETE])
    assert sorted(t.user_attrs["seed"] for t in complete) == [0, 1]  # each run once, the lost one retried
    assert study.trials[retry.trial_number].user_attrs["retry_reason"] == "worker lost"
    assert not study.get_trials(states=[TrialState.FAIL])


def test_ctrl_c_marks_interrupted_and_run_resumes(tmp_path: Path, study_name: str) -> None:
    file = _sleepy_sweep(study_name, tmp_path, runs=6)
    url = f"sqlite:///{tmp_path}/study.db"
    proc = _rlsweep("run", str(file), "--workers", "2", cwd=tmp_path)
    wait_for(lambda: Path(tmp_path / "study.db").exists() and _count(url, study_name, TrialState.COMPLETE) >= 2, timeout=60.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out.decode()
    study = optuna.load_study(study_name=study_name, storage=url)
    finished_before = {t.number: t.user_attrs["seed"] for t in study.get_trials(states=[TrialState.COMPLETE])}
    interrupted = study.get_trials(states=[TrialState.FAIL])
    assert interrupted and all(t.user_attrs["failure_reason"] == "interrupted" for t in interrupted)
    assert not study.get_trials(states=[TrialState.RUNNING])
    resumed = _rlsweep("run", str(file), "--workers", "2", cwd=tmp_path)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out.decode()
    study = optuna.load_study(study_name=study_name, storage=url)
    complete = study.get_trials(states=[TrialState.COMPLETE])
    assert sorted(t.user_attrs["seed"] for t in complete) == [0, 1, 2, 3, 4, 5]  # each run once
    for number, seed in finished_before.items():  # finished results were kept, not repeated
        assert study.trials[number].state == TrialState.COMPLETE
        assert [t.number for t in complete if t.user_attrs["seed"] == seed] == [number]


def _count(url: str, name: str, state: TrialState) -> int:
    try:
        return len(optuna.load_study(study_name=name, storage=url).get_trials(states=[state]))
    except Exception:
        return 0
