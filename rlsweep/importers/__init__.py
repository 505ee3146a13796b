"""Importers: another tool's sweep or hyperparameter format -> an rlsweep sweep (a plain dict, written
as YAML by `rlsweep import`). Each keeps the original's run count, index order and stop conditions.

- `ml-agents`: an ML-Agents trainer config with opt_values / opt_stop markers (mlagents.py)
- `policy-params`: an agent JSON whose lists are grid axes and an environment JSON (policy_params.py)
- `zoo`: one env id's entry of an rl-zoo3 hyperparameters YAML, as a fixed configuration (zoo.py)
"""

from __future__ import annotations

FORMATS = ("ml-agents", "policy-params", "zoo")

__all__ = ["FORMATS"]
