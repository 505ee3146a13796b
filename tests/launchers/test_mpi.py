"""MPI: `mpiexec -n N rlsweep worker --study NAME` with OpenMPI; each rank is an ordinary worker (the
storage coordinates them, MPI itself is not used), so every queued run is trained exactly once, and a
Ctrl-C to mpiexec (which sends each rank SIGTERM) settles the running runs as interrupted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rlsweep.config import load_sweep
from rlsweep.strategies import make_strategy
from rlsweep.study import StudyHandle
from tests.conftest import synthetic_sweep
from tests.launchers.helpers import PATIENT, assert_interrupted, training, wait_for

MPIEXEC = shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec missing (scripts/system-deps.sh installs openmpi-bin)")
ROOT = Path(__file__).resolve().parents[2]


def study(tmp_path: Path, name: str, runs: int, sleep: float) -> StudyHandle:
    loaded = load_sweep(synthetic_sweep(name, tmp_path, strategy__runs=runs, trainer__sleep=sleep, **PATIENT))
    handle = StudyHandle.create_or_load(loaded, f"sqlite:///{tmp_path}/study.db")
    handle.enqueue(make_strategy(loaded).initial_runs())
    return handle


def mpiexec(tmp_path: Path, handle: StudyHandle, n: int) -> subprocess.Popen[str]:
    # The URL goes to the ranks through the environment (-x), not the command line `ps` shows.
    env = {**os.environ, "RLSWEEP_STORAGE": handle.url, "PYTHONPATH": str(ROOT)}
    cmd = [str(MPIEXEC), "--allow-run-as-root", "--oversubscribe", "-n", str(n), "-x", "RLSWEEP_STORAGE", "-x", "PYTHONPATH",
           sys.executable, "-m", "rlsweep", "worker", "--study", handle.name]  # fmt: skip
    return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_each_rank_is_a_worker(tmp_path: Path, study_name: str) -> None:
    handle = study(tmp_path, study_name, runs=8, sleep=0.1)
    run = mpiexec(tmp_path, handle, 3)
    out = run.communicate(timeout=300)[0]
    assert run.returncode == 0, out
    assert out.count("run(s) finished; no more work") == 3, out
    assert handle.row_counts() == {"done": 8}
    rows = handle.rows()
    assert len({r.trial_number for r in rows}) == 8  # each run once
    assert len(handle.workers_registry.all()) == 3  # three ranks, three workers


def test_ctrl_c_to_mpiexec_interrupts_every_rank(tmp_path: Path, study_name: str) -> None:
    handle = study(tmp_path, study_name, runs=6, sleep=3.0)  # 12 s runs: the signal lands inside one
    run = mpiexec(tmp_path, handle, 2)
    wait_for(lambda: len(training(handle.url, handle.name)) == 2, 120, "both ranks training")
    run.send_signal(signal.SIGINT)
    out = run.communicate(timeout=120)[0]
    assert run.returncode != 0, out
    assert_interrupted(handle, configurations=6, workers=2)
