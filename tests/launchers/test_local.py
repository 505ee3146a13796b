"""The local launcher: workers started in standby before the study exists (forked, or as
`python -m rlsweep worker --standby` where the OS cannot fork) train nothing until launched, exit
quietly when discarded, and once launched claim every run exactly once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from rlsweep.config import load_sweep
from rlsweep.launchers.local import LocalLauncher
from rlsweep.strategies import make_strategy
from rlsweep.study import StudyHandle
from rlsweep.threads import CPUS_VAR, free_slot, worker_cpus
from rlsweep.trainers._base import RunContext
from tests.conftest import synthetic_sweep

WARM = ["rlsweep.trainers.function", "rlsweep.examples.synthetic"]


@pytest.fixture(params=["fork", "subprocess"])
def launcher(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalLauncher:
    if request.param == "subprocess":
        monkeypatch.delattr(os, "fork")
    monkeypatch.chdir(tmp_path)
    return LocalLauncher(tmp_path / "logs")


def _study(tmp_path: Path, name: str, runs: int = 6, **overrides: Any) -> StudyHandle:
    sweep = synthetic_sweep(name, tmp_path, **{"strategy": {"name": "random", "runs": runs}, **overrides})
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, f"sqlite:///{tmp_path}/study.db")
    handle.enqueue(make_strategy(loaded).initial_runs())
    return handle


def test_standby_workers_run_nothing_until_launched(launcher: LocalLauncher, tmp_path: Path, study_name: str) -> None:
    launcher.prestart(2, WARM)
    handle = _study(tmp_path, study_name, runs=6)
    time.sleep(1.0)  # standby workers have imported what they need and wait; nothing is claimed
    assert handle.row_counts() == {"waiting": 6}
    assert all(p.poll() is None for p in launcher._standby)
    launcher.launch(handle.name, handle.url, 2)
    launcher.wait(timeout=120)
    assert launcher.exit_codes() == [0, 0]
    assert handle.row_counts() == {"done": 6}
    rows = handle.rows()
    assert len({r.trial_number for r in rows}) == 6 and all(r.worker for r in rows)  # each run once
    logs = sorted((tmp_path / "logs").glob("worker-*.log"))
    assert [p.name for p in logs] == ["worker-0.log", "worker-1.log"]
    assert all("no more work" in p.read_text() for p in logs)


def test_discarded_standby_workers_exit_without_touching_the_study(
    launcher: LocalLauncher, tmp_path: Path, study_name: str
) -> None:
    handle = _study(tmp_path, study_name, runs=3)
    launcher.prestart(2, WARM)
    standby = list(launcher._standby)
    launcher.discard()
    assert [p.poll() for p in standby] == [0, 0]
    assert handle.row_counts() == {"waiting": 3}
    assert launcher.procs == []
    assert not (tmp_path / "logs").exists()  # the empty logs and the folder it made are gone


def test_launch_more_workers_than_were_prestarted(launcher: LocalLauncher, tmp_path: Path, study_name: str) -> None:
    launcher.prestart(1, WARM)
    handle = _study(tmp_path, study_name, runs=4)
    launcher.launch(handle.name, handle.url, 2)
    launcher.wait(timeout=120)
    assert launcher.exit_codes() == [0, 0]
    assert handle.row_counts() == {"done": 4}


def record_devices(run: RunContext) -> None:
    """A trainer that records the GPU and thread settings its worker process was given."""
    for var in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", CPUS_VAR):
        run.record(var, os.environ.get(var))
    time.sleep(0.3)  # long enough that both workers take runs
    run.report(run.budget, {"eval/mean_return": 1.0})


def test_workers_are_spread_over_the_visible_gpus_and_cpus(
    launcher: LocalLauncher, tmp_path: Path, study_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With GPUs 0 and 1 visible, worker i gets CUDA_VISIBLE_DEVICES=i mod 2; each one BLAS thread,
    and on a machine with 2 or more CPUs its own half of them (RLSWEEP_WORKER_CPUS)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))  # `tests` for subprocesses
    trainer = {"kind": "function", "target": "tests.launchers.test_local:record_devices", "timesteps": 10}
    sweep = synthetic_sweep(study_name, tmp_path, trainer=trainer, strategy={"name": "random", "runs": 6})
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, f"sqlite:///{tmp_path}/study.db")
    handle.enqueue(make_strategy(loaded).initial_runs())
    launcher.prestart(2)
    launcher.launch(handle.name, handle.url, 2)
    launcher.wait(timeout=120)
    assert launcher.exit_codes() == [0, 0]
    by_worker: dict[str, set[str]] = {}
    cpus_of: dict[str, set[str]] = {}
    for row in handle.rows():
        attrs = handle.trial(row.trial_number).user_attrs
        assert attrs["OMP_NUM_THREADS"] == "1"
        by_worker.setdefault(row.worker, set()).add(attrs["CUDA_VISIBLE_DEVICES"])
        cpus_of.setdefault(row.worker, set()).add(attrs[CPUS_VAR])
    assert sorted(devices for workers in by_worker.values() for devices in workers) == ["0", "1"]
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        shares = [{int(c) for c in value.split(",")} for (value,) in cpus_of.values()]
        assert len(shares) == 2 and not shares[0] & shares[1] and len(shares[0]) == len(cpus) // 2


def test_cpu_shares_and_the_slot_a_replacement_takes() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    n = len(cpus)
    assert worker_cpus(0, 1) is None and worker_cpus(0, n + 1) is None  # one worker, or too many
    if n >= 2:
        shares = [worker_cpus(i, n) for i in range(n)]
        assert shares == [[c] for c in cpus]
        assert worker_cpus(0, 2) == cpus[: n // 2] and worker_cpus(1, 2) == cpus[n // 2 : 2 * (n // 2)]
    assert free_slot({0, 2}, 4) == 1 and free_slot({0, 1}, 2) is None and free_slot(set(), 0) is None


class DiesWhileWatched(LocalLauncher):
    """A local launcher whose first worker is SIGKILLed just after the supervisor's second look at
    its workers once that worker holds a run: the look said it was alive, it is dead by the next
    line. The supervisor must still see the death, settle the run and start a replacement."""

    def __init__(self, log_dir: Path, handle: StudyHandle) -> None:
        super().__init__(log_dir)
        self.handle, self.looks, self.killed = handle, 0, False

    def exit_codes(self) -> list[int | None]:
        return self._then_die(super().exit_codes())

    def alive(self) -> int:
        return self._then_die(super().alive())

    def _then_die(self, answer: Any) -> Any:
        if self.killed or not self.handle.rows(["running"]):
            return answer
        self.looks += 1
        if self.looks == 2:
            pid = self.procs[0].pid
            os.kill(pid, signal.SIGKILL)
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: poll() sees it
            self.killed = True
        return answer


def test_a_worker_that_dies_just_after_a_look_is_settled_and_replaced(
    tmp_path: Path, study_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlsweep.api.engine import supervise

    monkeypatch.chdir(tmp_path)
    sleepy = {"kind": "function", "target": "rlsweep.examples.synthetic:sleepy", "timesteps": 1000, "sleep": 0.2}
    handle = _study(tmp_path, study_name, trainer=sleepy, strategy={"name": "grid", "seeds": 2}, params={})
    said: list[str] = []
    launcher = DiesWhileWatched(tmp_path / "logs", handle)
    result = supervise(handle, 1, launcher=launcher, echo=said.append)
    assert launcher.killed
    assert any(line.startswith("worker 0 died (killed by SIGKILL) holding grid:0") for line in said), said
    assert "started 1 worker(s) to replace ones that died" in said
    rows = {r.key: r.state for r in handle.rows()}
    assert rows == {"grid:0": "lost", "grid:0/retry:1": "done", "grid:1": "done"}, rows
    assert result.code == 0, said  # the dead worker's run was saved and every run finished
