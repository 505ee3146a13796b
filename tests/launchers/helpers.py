"""What the launcher tests share: bounded waits, the runs a worker is training, the processes still
working for a study, and the state a study must be in after an interrupt."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Heartbeats for the launcher tests: a worker is lost only after 60 s of silence (a loaded 2-core machine
# can stall a busy worker for seconds), while a worker process that died on this host is noticed at once.
PATIENT = {"worker__heartbeat": 1.0, "worker__lost_after": 60.0}


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def handle_at(url: str, name: str) -> Any:
    from rlsweep.study import StudyHandle

    return StudyHandle.load(name, url)


def training(url: str, name: str) -> list[Any]:
    """Running rows whose trainer has reported: a worker signalled now is inside its trainer. [] while
    the study is still being created."""
    try:
        h = handle_at(url, name)
        return [r for r in h.rows(["running"]) if r.trial_number is not None and h.trial(r.trial_number).intermediate_values]
    except Exception:
        return []


def processes_of(*needles: str) -> list[str]:
    """Command lines of live processes (other than this one) that mention any of `needles`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(n in line for n in needles):
                found.append(line)
    return found


def assert_interrupted(handle: Any, configurations: int, workers: int) -> None:
    """After an interrupt while every worker trained: each held run is interrupted with its retry
    queued, nothing is left running or lost, every configuration is done or queued. (A run may end
    between the look and the signal, and the worker begin another: which runs is not fixed.)"""
    counts = handle.row_counts()
    assert counts.get("interrupted") == workers and "running" not in counts and "lost" not in counts, counts
    rows = handle.rows()
    queued = {r.key.partition("/retry:")[0] for r in rows if r.state == "waiting" and "/retry:" in r.key}
    assert all(r.key.partition("/retry:")[0] in queued for r in rows if r.state == "interrupted"), rows
    assert counts.get("done", 0) + counts["waiting"] == configurations, counts
