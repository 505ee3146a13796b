"""The SLURM launcher: the exact sbatch script of an array of workers (`--dry-run`), its options
checked before anything starts, and real arrays run by submitit's local executor (real processes):
a sweep completes while a preempted task settles its run (queued again) and requeues itself, and
Ctrl-C stops the array."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlsweep.cli import main
from rlsweep.launchers import slurm
from rlsweep.launchers.slurm import duration_minutes
from tests.conftest import synthetic_sweep
from tests.launchers.helpers import PATIENT, assert_interrupted, handle_at, processes_of, training, wait_for

pytest.importorskip("submitit")

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def write_sweep(tmp_path: Path, name: str, **overrides: Any) -> None:
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(synthetic_sweep(name, tmp_path, **{**PATIENT, **overrides})))


def test_dry_run_prints_the_exact_sbatch_script(
    tmp_path: Path, study_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sweep(tmp_path, study_name)
    monkeypatch.chdir(tmp_path)
    argv = ["run", "sweep.yaml", "--launcher", "slurm", "--workers", "200", "--dry-run",
            "--slurm", "partition=gpu,time=4:00:00,gpus_per_task=1", "--resources", "cpu=4"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    folder = tmp_path / "runs" / study_name / "slurm"
    assert out == f"""#!/bin/bash

# Parameters
#SBATCH --array=0-199%200
#SBATCH --cpus-per-task=4
#SBATCH --gpus-per-task=1
#SBATCH --job-name=rlsweep-{study_name}
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output={folder}/%A_%a/%A_%a_0_log.out
#SBATCH --partition=gpu
#SBATCH --signal=USR2@90
#SBATCH --time=240
#SBATCH --wckey=submitit

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output {folder}/%A_%a/%A_%a_%t_log.out {sys.executable} -u -m submitit.core._submit {folder}/%j
"""
    assert err == (
        f"dry run: nothing submitted. Submitting pickles the job beside the script in {folder}; the workers read "
        "the storage URL from RLSWEEP_STORAGE, which sbatch exports from the submitting shell\n"
    )
    assert not (tmp_path / "runs").exists()  # no study, no folder: nothing started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slurm", "partiton=gpu,time=10"],
         "--slurm: unknown key 'partiton' (did you mean 'partition'?); known: partition, time, gpus_per_task, "
         "gpus_per_node, cpus_per_task, mem, mem_per_cpu, mem_per_gpu, account, qos, constraint, exclude, comment, "
         "job_name, array_parallelism, signal_delay_s, max_timeouts, cluster"),
        (["--slurm", "partition=gpu"], "--slurm: give time=HH:MM:SS (each task's time limit; workers requeue before it)"),
        (["--slurm", "time=4h"], "--slurm time: expected MM, HH:MM:SS or D-HH:MM:SS, got '4h'"),
        (["--slurm", "time=10,gpus_per_task=one"], "--slurm gpus_per_task: needs a whole number >= 1, got 'one'"),
        (["--slurm", "time=10,mem=lots"], "--slurm mem: expected a size such as 16G or 4000M, got 'lots'"),
        (["--slurm", "time=10,cluster=aws"], "--slurm cluster: slurm or local, got 'aws'"),
        (["--slurm", "time=10", "--slurm", "time=20"], "--slurm: 'time' given twice"),
        (["--slurm", "time=10", "--resources", "gpu=0.5"],
         "--resources gpu=0.5: SLURM allocates whole GPUs; to share a GPU use --launcher ray"),
        (["--slurm", "time=10,gpus_per_task=2", "--resources", "gpu=1"],
         "--resources gpu=1 and --slurm gpus_per_task=2 disagree; give one"),
        (["--slurm", "time=10", "--resources", "memory=1e9"],
         "--resources: the slurm launcher knows cpu and gpu, got 'memory' (memory: --slurm mem=16G)"),
        (["--slurm", "time=10", "--address", "h:1"], "--address is for --launcher ray, not --launcher slurm"),
        (["--slurm", "time", "--dry-run"], "--slurm: expected KEY=VALUE[,KEY=VALUE...], got 'time' in 'time'"),
    ],
)  # fmt: skip
def test_bad_slurm_options_are_exit_2_before_anything(
    tmp_path: Path, study_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:  # fmt: skip
    write_sweep(tmp_path, study_name)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "sweep.yaml", "--launcher", "slurm", *args]) == 2
    assert capsys.readouterr().err == f"rlsweep: error: {message}\n"
    assert not (tmp_path / "runs").exists()


def test_launcher_flags_belong_to_their_launcher(
    tmp_path: Path, study_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sweep(tmp_path, study_name)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "sweep.yaml", "--dry-run"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: --dry-run is for --launcher slurm, not --launcher local\n"
    assert main(["run", "sweep.yaml", "--launcher", "ray", "--slurm", "time=1"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: --slurm is for --launcher slurm, not --launcher ray\n"
    assert main(["run", "sweep.yaml", "--launcher", "slurm", "--slurm", "time=1", "--index", "0"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: --index trains one run in this process; it takes no --launcher slurm\n"
    assert main(["run", "sweep.yaml", "--resources", "cpu=x"]) == 2
    assert capsys.readouterr().err == "rlsweep: error: --resources: cpu needs a number, got 'x'\n"


def test_slurm_durations() -> None:
    assert duration_minutes("90") == 90
    assert duration_minutes("0:30") == 0.5
    assert duration_minutes("4:00:00") == 240
    assert duration_minutes("1-0") == 1440
    assert duration_minutes("2-03:30") == 2 * 1440 + 3 * 60 + 30
    assert duration_minutes("1-00:00:30") == 1440.5


def rlsweep_run(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", "sweep.yaml", "--quiet", "--launcher", "slurm", *args],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def url_of(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path}/runs/{name}/study.db"


def handle(tmp_path: Path, name: str) -> Any:
    return handle_at(url_of(tmp_path, name), name)


def signal_a_training_task(tmp_path: Path, study_name: str, sig: int, **overrides: Any) -> tuple[Any, Any, Any, str]:
    """An array of two workers on the local executor, far from its time limit; `sig` to the worker
    of a task that is training; then wait for `rlsweep run` to end: (its process, the study, the
    victim's queue row, its output)."""
    write_sweep(tmp_path, study_name, strategy__runs=6, **overrides)
    run = rlsweep_run(tmp_path, "--workers", "2", "--slurm", "cluster=local,time=60")
    wait_for(lambda: bool(training(url_of(tmp_path, study_name), study_name)), 120, "a task training")
    victim = training(url_of(tmp_path, study_name), study_name)[0]
    h = handle(tmp_path, study_name)
    pid = int(next(w["pid"] for w in h.workers_registry.all() if w["id"] == victim.worker))
    os.kill(pid, sig)
    return run, h, victim, run.communicate(timeout=300)[0]


def test_an_array_runs_the_sweep_and_a_preempted_task_requeues_itself(tmp_path: Path, study_name: str) -> None:
    """An array of two workers on the local executor trains the sweep. USR2 (SLURM's signal before
    preemption or the time limit) to one task: its run is settled as interrupted and queued again,
    submitit requeues the task (a new process), and the sweep completes."""
    # Far from its time limit, submitit calls this a preemption (a timeout counts against max_timeouts).
    run, h, victim, out = signal_a_training_task(tmp_path, study_name, signal.SIGUSR2, trainer__sleep=0.3)
    assert run.returncode == 0, out
    assert "finished: 6/6 finished (done 6, pruned 0, failed 0)" in out, out
    rows = {r.key: r for r in h.rows()}
    assert rows[victim.key].state == "interrupted", out
    assert rows[f"{victim.key}/retry:1"].state == "done", out
    assert h.row_counts() == {"done": 6, "interrupted": 1}
    assert all(r.worker.startswith("slurm") for r in rows.values())
    logs = sorted((tmp_path / "runs" / study_name / "slurm").rglob("*_log.out"))
    assert len(logs) == 2 and all(p.read_text().rstrip().endswith("Exiting after successful completion") for p in logs)
    text = "\n".join(p.read_text() for p in logs)
    assert "this job is preempted" in text and "Requeued job" in text, text
    assert text.count("Starting with JobEnvironment") == 3, text  # two tasks, one of them twice
    wait_for(lambda: not processes_of(study_name), 30, "no task left")


def test_a_killed_task_is_settled_and_replaced(tmp_path: Path, study_name: str) -> None:
    """A task that dies without a word (SIGKILL, as when its node fails or it runs out of memory):
    when submitit reports the task failed, the supervisor settles its run at once (lost, queued
    again; `lost_after` is far beyond the sweep) and submits a task in its place, and the sweep
    completes and exits 0."""
    run, h, victim, out = signal_a_training_task(tmp_path, study_name, signal.SIGKILL, trainer__sleep=0.4, worker__lost_after=600)
    rows = {r.key: r for r in h.rows()}
    assert rows[victim.key].state == "lost", out
    assert rows[f"{victim.key}/retry:1"].state == "done", out
    assert h.row_counts() == {"done": 6, "lost": 1}, out
    assert "finished: 6/6 finished (done 6, pruned 0, failed 0)" in out, out
    assert f"died (exit code 1) holding {victim.key}: settled" in out, out
    assert "started 1 worker(s) to replace ones that died" in out, out
    assert run.returncode == 0, out
    # The replacement ran as a job of its own (it may have found nothing left to claim).
    logs = sorted((tmp_path / "runs" / study_name / "slurm").rglob("*_log.out"))
    assert len(logs) == 3, logs
    wait_for(lambda: not processes_of(study_name), 30, "no task left")


def _killed_job(folder: Path) -> Any:
    """A real submitit local job whose task was SIGKILLed (it writes no result file)."""
    import submitit

    executor = submitit.LocalExecutor(folder)
    executor.update_parameters(timeout_min=1)
    job = executor.submit(_kill_self)
    deadline = time.monotonic() + 60
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.done() and not job.paths.result_pickle.exists()
    return job


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("cluster", ["local", "slurm"])
def test_a_task_killed_without_a_result_is_seen_without_waiting_for_the_file(
    tmp_path: Path, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submitit's result() waits 15 s for a result file that a killed task never writes, and the
    supervisor asks in its watch loop: a killed local task is reported dead (exit code 1) on the
    first look; a SLURM task (whose file may show late on a shared file system) once the grace has
    passed, the look before that saying it still runs."""
    monkeypatch.setattr(slurm, "RESULT_GRACE_S", 2.0)
    launcher = slurm.SlurmLauncher("t", {"cluster": cluster, "time": "10"}, folder=tmp_path)
    launcher.jobs = [_killed_job(tmp_path / "%j")]
    began = time.monotonic()
    first = launcher.exit_codes()
    assert time.monotonic() - began < 5.0  # not submitit's 15 s wait
    if cluster == "local":
        assert first == [1]
        return
    assert first == [None]
    time.sleep(2.1)
    assert launcher.exit_codes() == [1]


def test_ctrl_c_stops_the_array(tmp_path: Path, study_name: str) -> None:
    write_sweep(tmp_path, study_name, strategy__runs=6, trainer__sleep=3.0)  # 12 s runs: the signal lands inside one
    run = rlsweep_run(tmp_path, "--workers", "2", "--slurm", "cluster=local,time=10")
    wait_for(lambda: len(training(url_of(tmp_path, study_name), study_name)) == 2, 120, "both tasks training")
    run.send_signal(signal.SIGINT)
    out = run.communicate(timeout=120)[0]
    assert run.returncode == 130, out
    assert_interrupted(handle(tmp_path, study_name), configurations=6, workers=2)
    wait_for(lambda: not processes_of(study_name), 30, "no task left")
