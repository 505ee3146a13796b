"""Local launcher: worker processes on this machine (the default).

Workers are separate `python -m rlsweep worker` processes, the same entry any shell or cluster
uses, each in its own session so a Ctrl-C reaches them once, forwarded by the parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rlsweep.launchers._base import Launcher


def visible_gpus() -> list[str]:
    """GPU indices to spread workers over (CUDA_VISIBLE_DEVICES or nvidia-smi); empty without GPUs."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]


class LocalLauncher(Launcher):
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def launch(self, study: str, storage_url: str, n_workers: int, resources: dict[str, Any] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        gpus = visible_gpus()
        for i in range(n_workers):
            env = dict(os.environ)
            # The URL travels in the environment, not argv: `ps` would show a password.
            env["RLSWEEP_STORAGE"] = storage_url
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env.setdefault(var, "1")
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
            log = open(self.log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - handed to the child
            cmd = [sys.executable, "-m", "rlsweep", "worker", "--study", study]
            self.procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.procs)

    def interrupt(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.time() + timeout
        for p in self.procs:
            remaining = None if deadline is None else max(0.1, deadline - time.time())
            try:
                p.wait(remaining)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def exit_codes(self) -> list[int | None]:
        return [p.poll() for p in self.procs]
