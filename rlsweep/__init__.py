"""rlsweep: tune reinforcement-learning agents and look at what they learned.

Importing the package stays light: the Python API (`rlsweep.Sweep`, `rlsweep.run`, `rlsweep.load`,
the markers) loads on first use, and torch, JAX and Ray only in the modules that use them.
"""

from __future__ import annotations

from typing import Any

from rlsweep.errors import ConfigError, RlsweepError, StorageError, TrainerError

__version__ = "0.1.0"
_API = (
    "RunResult", "Study", "Sweep", "choice", "grid", "int_", "integer", "load", "logint", "loguniform",
    "opt_values", "run", "trainer", "uniform",
)  # fmt: skip
_TRAINER = ("Decision", "RunContext")
__all__ = ["ConfigError", "RlsweepError", "StorageError", "TrainerError", "__version__", *_API, *_TRAINER]


def __getattr__(name: str) -> Any:
    if name in _API:
        from rlsweep import api

        return getattr(api, name)
    if name in _TRAINER:
        from rlsweep.trainers import _base

        return getattr(_base, name)
    raise AttributeError(f"module 'rlsweep' has no attribute {name!r}")
