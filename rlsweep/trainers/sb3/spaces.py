"""Default search spaces for the SB3 trainer, in the sweep file's marker syntax.

Used when a sweep has no `params:` (`rlsweep run --algo ppo --env ...`), shown by
`rlsweep space ppo`, and overridable key by key (`merge_space`). The ranges follow common practice
for these algorithms (learning rates on a log scale around the libraries' defaults, discount
factors from short to long horizons, small to medium networks) and are chosen so that every
combination is valid: PPO's batch sizes (at most 256) never exceed a rollout (n_steps >= 256
times n_envs >= 1) and always divide it, so no minibatch is ever truncated.

Plain data only: importing this module must not import torch or SB3.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rlsweep.errors import ConfigError, closest

_GAMMAS = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
_NETS = [[64, 64], [128, 128], [256, 256]]
_OFF_POLICY_NETS = [[64, 64], [256, 256], [400, 300]]

SPACES: dict[str, dict[str, Any]] = {
    "PPO": {
        "learning_rate": {"loguniform": [1.0e-5, 3.0e-3]},
        "n_steps": {"choice": [256, 512, 1024, 2048]},
        "batch_size": {"choice": [32, 64, 128, 256]},
        "n_epochs": {"choice": [3, 5, 10, 20]},
        "gamma": {"choice": _GAMMAS},
        "gae_lambda": {"choice": [0.8, 0.9, 0.95, 0.98, 1.0]},
        "clip_range": {"choice": [0.1, 0.2, 0.3]},
        "ent_coef": {"loguniform": [1.0e-8, 1.0e-2]},
        "vf_coef": {"uniform": [0.25, 1.0]},
        "max_grad_norm": {"choice": [0.3, 0.5, 1.0, 2.0]},
        "policy_kwargs": {
            "net_arch": {"choice": _NETS},
            "activation_fn": {"choice": ["tanh", "relu"]},
        },
    },
    "A2C": {
        "learning_rate": {"loguniform": [1.0e-5, 3.0e-3]},
        "n_steps": {"choice": [5, 8, 16, 32, 64, 128]},
        "gamma": {"choice": _GAMMAS},
        "gae_lambda": {"choice": [0.9, 0.95, 0.98, 1.0]},
        "ent_coef": {"loguniform": [1.0e-8, 1.0e-2]},
        "vf_coef": {"uniform": [0.25, 1.0]},
        "max_grad_norm": {"choice": [0.3, 0.5, 1.0, 5.0]},
        "normalize_advantage": {"choice": [False, True]},
        "use_rms_prop": {"choice": [True, False]},
        "policy_kwargs": {
            "net_arch": {"choice": _NETS},
            "activation_fn": {"choice": ["tanh", "relu"]},
        },
    },
    "DQN": {
        "learning_rate": {"loguniform": [1.0e-5, 1.0e-2]},
        "batch_size": {"choice": [32, 64, 128, 256]},
        "buffer_size": {"choice": [10_000, 50_000, 100_000, 1_000_000]},
        "learning_starts": {"choice": [0, 1_000, 5_000, 10_000]},
        "train_freq": {"choice": [1, 4, 8, 16]},
        "target_update_interval": {"choice": [250, 1_000, 5_000, 10_000]},
        "exploration_fraction": {"uniform": [0.05, 0.5]},
        "exploration_final_eps": {"uniform": [0.0, 0.2]},
        "gamma": {"choice": _GAMMAS},
        "policy_kwargs": {"net_arch": {"choice": [[64], [64, 64], [256, 256]]}},
    },
    "SAC": {
        "learning_rate": {"loguniform": [1.0e-5, 3.0e-3]},
        "batch_size": {"choice": [64, 128, 256, 512]},
        "buffer_size": {"choice": [10_000, 100_000, 1_000_000]},
        "learning_starts": {"choice": [0, 1_000, 10_000]},
        "train_freq": {"choice": [1, 4, 16, 64]},
        "gradient_steps": -1,  # as many gradient steps as environment steps collected
        "tau": {"choice": [0.001, 0.005, 0.01, 0.02, 0.05]},
        "gamma": {"choice": _GAMMAS},
        "ent_coef": {"choice": ["auto", 0.01, 0.1]},  # learned, or fixed
        "policy_kwargs": {"net_arch": {"choice": _OFF_POLICY_NETS}},
    },
    "TD3": {
        "learning_rate": {"loguniform": [1.0e-5, 3.0e-3]},
        "batch_size": {"choice": [64, 128, 256, 512]},
        "buffer_size": {"choice": [10_000, 100_000, 1_000_000]},
        "learning_starts": {"choice": [100, 1_000, 10_000]},
        "train_freq": {"choice": [1, 4, 16, 64]},
        "gradient_steps": -1,
        "tau": {"choice": [0.001, 0.005, 0.01, 0.02, 0.05]},
        "gamma": {"choice": _GAMMAS},
        "action_noise": {"normal": {"uniform": [0.05, 0.5]}},  # sigma of Gaussian exploration noise
        "policy_kwargs": {"net_arch": {"choice": _OFF_POLICY_NETS}},
    },
}


def default_space(algo: str) -> dict[str, Any]:
    """The default search space of `algo` (case-insensitive), a fresh copy the caller may change."""
    by_lower = {name.lower(): name for name in SPACES}
    name = by_lower.get(str(algo).lower())
    if name is None:
        raise ConfigError(
            f"no default search space for '{algo}'{closest(str(algo).upper(), SPACES)}; "
            f"defaults exist for {', '.join(SPACES)}; write a params: section for other algorithms",
            key="trainer.algo",
        )
    return copy.deepcopy(SPACES[name])


def merge_space(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` on top of `defaults`, key by key: a key given in both takes the override whole,
    except `policy_kwargs`, whose keys merge one by one (override `net_arch`, keep the activation)."""
    out = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        base = out.get(key)
        if key == "policy_kwargs" and isinstance(base, Mapping) and _is_section(base) and _is_section(value):
            out[key] = {**base, **copy.deepcopy(dict(value))}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_section(value: Any) -> bool:
    from rlsweep.space import is_marker

    return isinstance(value, Mapping) and not is_marker(value)
