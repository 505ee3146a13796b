"""Trainers that misbehave the way real ones do, for the fault tests: the run with seed 0 exits,
raises its own KeyboardInterrupt, segfaults, kills its worker or hangs (`trainer.fault`); every
other run trains normally. `HANG_FILE`, when set, is written once a hanging run has reported."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

from rlsweep.examples import synthetic
from rlsweep.trainers._base import RunContext


def train(run: RunContext) -> None:
    fault = str(run.config.get("fault", ""))
    if run.seed != 0 or fault in ("", "none"):
        synthetic.sleepy(run)
        return
    run.report(run.eval_every, {"eval/mean_return": 1.0})
    if fault == "sys_exit":
        sys.exit(3)
    if fault == "system_exit":
        raise SystemExit("bye")
    if fault == "keyboard_interrupt":
        raise KeyboardInterrupt
    if fault == "segfault":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    if fault == "kill_worker":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault in ("hang", "hang_after_reports"):
        if fault == "hang_after_reports":  # reports for a while, then goes silent
            for step in range(2, 6):
                time.sleep(0.3)
                run.report(step * run.eval_every, {"eval/mean_return": float(step)})
        marker = os.environ.get("HANG_FILE")
        if marker:
            Path(marker + ".tmp").write_text(str(run.number))
            Path(marker + ".tmp").rename(marker)
        time.sleep(3600)
    raise ValueError(f"unknown fault {fault!r}")
