"""Child processes that die with their parent.

A worker forked by `rlsweep run`, or a training program started by a command trainer, must not
outlive the process that started it, even when that process is SIGKILLed (what `timeout -s KILL`,
the OOM killer and a SLURM time limit do). Linux delivers a chosen signal to a child when its
parent dies (prctl PR_SET_PDEATHSIG); where that is missing, a thread polls for the parent.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Arrange for this process to get `sig` when its parent exits. Call it in the child, first
    thing after fork (or as a Popen `preexec_fn`). `parent` is the pid expected as parent: if it
    has already died (a race between fork and this call), `sig` is raised at once."""
    expected = os.getppid() if parent is None else parent
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
                if os.getppid() != expected:
                    os.kill(os.getpid(), sig)
                return
        except (OSError, AttributeError):
            pass
    _watch_parent(sig, expected)


def _watch_parent(sig: int, parent: int) -> None:
    """Fallback: a daemon thread that sends `sig` to this process once the parent is gone."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), sig)
                return
            threading.Event().wait(0.5)

    threading.Thread(target=watch, daemon=True, name="rlsweep-parent-watch").start()


def preexec_die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A Popen `preexec_fn` that makes the child die with the process that starts it. Linux ties
    the signal to the thread that forks: start such children from a thread that lives as long as
    the process (the main thread, or the worker's own thread)."""
    parent = os.getpid()

    def preexec() -> None:
        die_with_parent(sig, parent)

    return preexec
