"""One BLAS/OpenMP thread per worker process unless the user set otherwise: N workers on N cores
beat N workers fighting over them. Light on purpose: `rlsweep run` applies it before numpy loads."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(env: MutableMapping[str, str] | None = None) -> None:
    """Default each thread-count variable to 1 in `env` (this process's environment by default)."""
    target = os.environ if env is None else env
    for var in THREAD_VARS:
        target.setdefault(var, "1")
