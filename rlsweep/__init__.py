"""rlsweep: tune reinforcement-learning agents and look at what they learned.

Importing the package stays light: torch, JAX and Ray are imported only by the modules that use them.
"""

from __future__ import annotations

from rlsweep.errors import ConfigError, RlsweepError, StorageError, TrainerError

__version__ = "0.1.0"
__all__ = ["ConfigError", "RlsweepError", "StorageError", "TrainerError", "__version__"]
