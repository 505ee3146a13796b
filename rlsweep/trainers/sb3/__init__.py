"""The Stable-Baselines3 trainer as a package: `trainer.py` (the class and its hooks, light),
`training.py` (the training loop), `algos.py`, `env.py`, `policy.py`, `spaces.py`, `validate.py`.

Importing the package imports no torch, SB3 or Gymnasium; `make_env` and `load_policy` are loaded
on first use, so `rlsweep.trainers.sb3.spaces` can be read without them.
"""

from __future__ import annotations

from typing import Any

from rlsweep.trainers.sb3.trainer import SB3Trainer

__all__ = ["SB3Trainer", "load_policy", "make_env"]

_LAZY = {"make_env": "rlsweep.trainers.sb3.env", "load_policy": "rlsweep.trainers.sb3.policy"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
