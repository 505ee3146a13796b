"""No training program outlives `rlsweep run`: SIGKILL it, and its workers (which die with it)
take their programs along (each program dies with its worker; one that ignores the stop signal is
killed after the grace period). And when it ends by itself, it leaves its SQLite file closed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

PROG = str(Path(__file__).with_name("command_prog.py"))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def write_sweep(
    tmp_path: Path, study: str, args: list[str], timesteps: int, trainer: dict[str, object] | None = None, **extra: object
) -> Path:
    """A grid sweep of command_prog.py (2 seeds per configuration) in tmp_path; its file's path."""
    sweep = {
        "study": study,
        "trainer": {
            "kind": "command",
            "command": ["{python}", PROG, *args],
            "metrics": {"regex": r"step=(?P<step>\d+) value=(?P<value>\S+)"},
            "timesteps": timesteps,
            **(trainer or {}),
        },
        "objective": {"metric": "value"},
        "strategy": {"name": "grid", "seeds": 2},
        "storage": f"sqlite:///{tmp_path}/study.db",
        "artifacts": str(tmp_path / "artifacts"),
        **extra,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_sigkill_of_rlsweep_run_leaves_no_program_behind(tmp_path: Path) -> None:
    args = ["--steps=100000", "--pause=0.2", "--pid-file={run_dir}/pid", "--ignore=SIGTERM"]
    path = write_sweep(tmp_path, "orphans", args, 10**9, trainer={"grace": 1})
    run = subprocess.Popen(
        [sys.executable, "-m", "rlsweep", "run", str(path), "--workers", "2", "--quiet"],
        cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        pid_files = [tmp_path / "artifacts" / str(n) / "pid" for n in (0, 1)]
        deadline = time.monotonic() + 120
        while not all(p.exists() for p in pid_files):
            assert run.poll() is None and time.monotonic() < deadline, "the programs did not start"
            time.sleep(0.2)
        pids = [int(p.read_text()) for p in pid_files]
        assert all(_alive(pid) for pid in pids)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_rlsweep_run_closes_the_sqlite_file_when_it_exits(tmp_path: Path) -> None:
    """`rlsweep run` skips the interpreter's last garbage collection (it exits faster), so it must
    close its database connections itself: a write-ahead log left beside study.db would hold the
    last commits, and a user who copies study.db alone would lose them."""
    args = ["--steps=3", "--pause=0.01", "--slope={slope}"]
    path = write_sweep(tmp_path, "closed", args, 300, params={"slope": {"choice": [1.0, 2.0]}})
    done = subprocess.run(
        [sys.executable, "-m", "rlsweep", "run", str(path), "--workers", "2", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "study.db-wal").exists()
    with sqlite3.connect(tmp_path / "study.db") as conn:
        states = [s for (s,) in conn.execute("SELECT state FROM trials")]
    assert states == ["COMPLETE"] * 4
