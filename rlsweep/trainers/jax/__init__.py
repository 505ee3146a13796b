"""The batched JAX trainer as a package: `trainer.py` (the class and its hooks, light), `settings.py`
(which settings change array shapes, validation), `build.py` (rejax algorithms with an injectable
optimizer), `batch.py` (the vmapped training loop), `policy.py` (saved parameters as a policy).

Importing the package imports no JAX; only training, loading a policy and validation against
gymnax do.
"""

from __future__ import annotations

from rlsweep.trainers.jax.trainer import JaxTrainer

__all__ = ["JaxTrainer"]
