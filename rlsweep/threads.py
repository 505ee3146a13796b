"""One BLAS/OpenMP thread per worker process unless the user set otherwise: N workers on N cores
beat N workers fighting over them. Light on purpose: `rlsweep run` applies it before numpy loads."""

from __future__ import annotations

import contextlib
import os
from collections.abc import MutableMapping

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(env: MutableMapping[str, str] | None = None) -> None:
    """Default each thread-count variable to 1 in `env` (this process's environment by default)."""
    target = os.environ if env is None else env
    for var in THREAD_VARS:
        target.setdefault(var, "1")


#: The CPUs the local launcher gives one worker ("0,1"): set only when the machine has at least as
#: many CPUs as workers. Trainers whose library sizes a thread pool by the CPUs it may use (XLA, for
#: the JAX trainer) keep to them; others ignore it. Set it to "" before `rlsweep run` to turn it off.
CPUS_VAR = "RLSWEEP_WORKER_CPUS"


def worker_cpus(slot: int, workers: int) -> list[int] | None:
    """Local worker `slot`'s share of the CPUs this process may use: `workers` equal, disjoint
    shares, or None with one worker, more workers than CPUs, or no affinity on this platform."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if workers < 2 or workers > len(cpus) or not 0 <= slot < workers:
        return None
    share = len(cpus) // workers
    return cpus[slot * share : (slot + 1) * share]


def free_slot(taken: set[int], workers: int) -> int | None:
    """The lowest of `workers` slots not in `taken` (a replacement takes a dead worker's CPUs)."""
    return min((s for s in range(workers) if s not in taken), default=None)


def keep_to_worker_cpus() -> list[int] | None:
    """Restrict this process to the CPUs its launcher gave it (CPUS_VAR), and return them; None when
    it gave none. Must run before a library starts its thread pool: threads started earlier keep
    their CPUs, and XLA sizes its pool by the CPUs allowed when its backend starts."""
    value = os.environ.get(CPUS_VAR, "").strip()
    if not value or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        cpus = {int(c) for c in value.split(",")} & set(os.sched_getaffinity(0))
    except ValueError:  # not a list of CPU numbers: not the launcher's
        return None
    if not cpus:
        return None
    # every thread so far (an import may have started some), so that the threads they start later
    # inherit it too; /proc lists them on Linux, elsewhere only this thread is restricted
    tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
    for task in tasks:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task), cpus)
    return sorted(cpus)
