"""The fault-injection suite (issue 12, part 7), through `rlsweep run` as a user starts it: a cold
start of 16 workers, soaks, a storm of SIGKILLs to workers and repeated SIGKILLs of `rlsweep run`
itself. Each test prints its figure (pytest -s shows it) and checks that every run completed
exactly once, with a value, under consecutive trial numbers, with nothing left running."""

from __future__ import annotations

import os
import random
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
from tests.conftest import server_url, synthetic_sweep
from tests.faults.helpers import alive, rlsweep_env, wait_for


def _sweep(name: str, tmp_path: Path, runs: int, url: str, *, sleep: float = 0.0, **worker: Any) -> Path:
    sweep = synthetic_sweep(
        name,
        tmp_path,
        trainer={"kind": "function", "target": "rlsweep.examples.synthetic:sleepy", "timesteps": 250, "sleep": sleep},
        strategy={"name": "grid", "seeds": runs},
        params={},
        storage=url,
        worker={"heartbeat": 1.0, "lost_after": 5.0, "requeue": 1, **worker},
    )
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path




def _start(file: Path, workers: int, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", str(file), "--workers", str(workers), "--quiet"],
        cwd=cwd, env=rlsweep_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip






def _opens(name: str, url: str) -> bool:
    try:
        StudyHandle.load(name, url)
    except Exception:  # not created yet
        return False
    return True


def _complete(name: str, url: str) -> int:
    return len(optuna.load_study(study_name=name, storage=url).get_trials(states=[TrialState.COMPLETE]))


def check_exactly_once(name: str, url: str, runs: int) -> list[Any]:
    """Every seed completed exactly once with a value; trial numbers are 0..n-1; nothing runs."""
    trials = optuna.load_study(study_name=name, storage=url).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["seed"] for t in complete) == list(range(runs)), "a run completed twice or never"
    assert all(t.value is not None for t in complete), "COMPLETE without a value"
    assert [t.number for t in trials] == list(range(len(trials))), "trial numbers are not consecutive"
    assert not [t for t in trials if t.state == TrialState.RUNNING], "a run is still RUNNING"
    return trials


def _locked(tmp_path: Path, name: str, out: str) -> int:
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "runs" / name / "logs").glob("*.log"))
    return (logs + out).count("database is locked")


@pytest.mark.slow
def test_cold_start_of_16_workers_on_a_new_sqlite_file(tmp_path: Path, study_name: str) -> None:
    url = f"sqlite:///{tmp_path}/study.db"
    file = _sweep(study_name, tmp_path, 48, url)
    started = time.monotonic()
    proc = _start(file, 16, tmp_path)
    out = proc.communicate(timeout=300)[0]
    took = time.monotonic() - started
    assert proc.returncode == 0, out
    check_exactly_once(study_name, url, 48)
    assert _locked(tmp_path, study_name, out) == 0
    crashed = [p for p in (tmp_path / "runs" / study_name / "logs").glob("*.log") if "Traceback" in p.read_text()]
    assert not crashed, crashed[0].read_text()
    print(f"\ncold start: 16 workers, 48 runs on a new SQLite file in {took:.1f} s, 0 crashed, 0 locked")


SOAKS = [("sqlite", 2, 200), ("sqlite", 8, 50), ("postgres", 8, 20), ("mysql", 8, 20)]


@pytest.mark.slow
@pytest.mark.parametrize(("storage", "workers", "per_worker"), SOAKS, ids=[f"{s}-{w}x{n}" for s, w, n in SOAKS])
def test_soak(tmp_path: Path, study_name: str, storage: str, workers: int, per_worker: int) -> None:
    url = f"sqlite:///{tmp_path}/study.db" if storage == "sqlite" else server_url(storage)
    runs = workers * per_worker
    file = _sweep(study_name, tmp_path, runs, url)
    started = time.monotonic()
    proc = _start(file, workers, tmp_path)
    out = proc.communicate(timeout=600)[0]
    took = time.monotonic() - started
    assert proc.returncode == 0, out
    check_exactly_once(study_name, url, runs)
    locked = _locked(tmp_path, study_name, out)
    assert locked == 0
    print(f"\nsoak {storage} {workers} x {per_worker}: {runs} runs in {took:.1f} s ({runs / took:.1f} runs/s), each once, {locked} locked")


@pytest.mark.slow
def test_a_storm_of_25_sigkills_loses_and_duplicates_nothing(tmp_path: Path, study_name: str) -> None:
    """25 SIGKILLs to whichever workers are training: each killed run is settled at once and
    re-queued (requeue large enough), a replacement worker starts, every configuration completes
    exactly once."""
    url = f"sqlite:///{tmp_path}/study.db"
    # The 25 pauses between kills add up to 12.6 s (the generator is seeded), plus the waits for a
    # busy worker; the runs alone take about 15 s on 2 workers, so the sweep outlasts the storm
    # however fast replacement workers start (40 runs of 0.15 s once ended after 21 kills).
    runs = 100
    file = _sweep(study_name, tmp_path, runs, url, sleep=0.3, requeue=30)
    proc = _start(file, 2, tmp_path)
    wait_for(lambda: (tmp_path / "study.db").exists(), 60)
    handle: StudyHandle | None = None
    rng = random.Random(0)
    kills = 0
    deadline = time.time() + 300
    while kills < 25 and proc.poll() is None and time.time() < deadline:
        try:
            handle = handle or StudyHandle.load(study_name, url)
            busy = [r.worker for r in handle.rows(["running"]) if r.worker]
            pids = {int(w["pid"]) for w in handle.workers() if w["id"] in busy and w["state"] == "alive"}
        except Exception:  # the study is still being created
            time.sleep(0.1)
            continue
        pids = {p for p in pids if alive(p)}
        if not pids:
            time.sleep(0.05)
            continue
        os.kill(rng.choice(sorted(pids)), signal.SIGKILL)
        kills += 1
        time.sleep(rng.uniform(0.2, 0.8))
    out = proc.communicate(timeout=300)[0]
    assert kills == 25, f"only {kills} kills before the sweep ended:\n{out}"
    assert proc.returncode == 0, out
    trials = check_exactly_once(study_name, url, runs)
    assert handle is not None
    lost = [r for r in handle.rows() if r.state == "lost"]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs["failure_reason"] == "worker lost" for t in failed)
    assert not handle.rows(["running", "waiting"])
    print(f"\nkill storm: {kills} SIGKILLs, {len(lost)} runs lost and re-run, {runs} configurations each complete once")


@pytest.mark.slow
def test_rlsweep_run_killed_five_times_then_resumed(tmp_path: Path, study_name: str) -> None:
    """SIGKILL of `rlsweep run` five times at random moments, then `rlsweep run` to the end:
    finished runs are never re-run, progress only goes forward, no worker outlives its `run`.
    bench/resume.py times the same against an uninterrupted sweep (target x1.5)."""
    runs, sleep = 100, 0.2  # each run: one report after `sleep` s; about 10 s of runs on 2 workers
    url = f"sqlite:///{tmp_path}/study.db"
    file = _sweep(study_name, tmp_path, runs, url, sleep=sleep)
    rng = random.Random(1)
    done_before = 0
    finished: dict[int, int] = {}  # trial number -> seed, of every run seen complete
    for _ in range(5):
        proc = _start(file, 2, tmp_path)
        wait_for(lambda: _opens(study_name, url), 60)
        wait_for(lambda d=done_before: _complete(study_name, url) > d, 120)  # training has begun
        time.sleep(rng.uniform(0.0, 1.5))  # then a random moment
        handle = StudyHandle.load(study_name, url)
        pids = [int(w["pid"]) for w in handle.workers()]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_for(lambda pids=pids: not any(alive(p) for p in pids), 60)  # no orphan worker
        handle.reap_lost()  # a run claimed just as the signal came is settled by whoever looks next
        assert not handle.rows(["running"])
        trials = optuna.load_study(study_name=study_name, storage=url).trials
        for t in trials:
            if t.state == TrialState.COMPLETE:
                assert finished.setdefault(t.number, t.user_attrs["seed"]) == t.user_attrs["seed"]
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        assert done >= done_before, "progress went backwards"
        done_before = done
    assert done_before < runs, "the sweep ended before the last kill"
    last = _start(file, 2, tmp_path)
    out = last.communicate(timeout=600)[0]
    assert last.returncode == 0, out
    trials = check_exactly_once(study_name, url, runs)
    for number, seed in finished.items():  # a finished run was never run again
        assert trials[number].state == TrialState.COMPLETE and trials[number].user_attrs["seed"] == seed
    print(f"\nrun killed 5 times: {done_before} runs done before the last start, every run done once")
