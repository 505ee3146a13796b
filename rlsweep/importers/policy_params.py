"""`rlsweep import policy-params agent.json --env env.json`: an agent JSON whose list values are grid
axes (a list value itself is written as a list of lists) and an environment JSON with the env id
and the step budget, as an SB3 grid sweep. Index i is configuration i mod N with seed number i div N,
so `rlsweep run sweep.yaml --index i` trains what the original's index i trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError

ENV_ID_KEYS = ("env_id", "env", "environment")
STEP_KEYS = ("total_timesteps", "n_timesteps", "timesteps", "steps", "num_timesteps")
SEED_KEYS = ("seeds", "num_seeds", "n_seeds")
AGENT_KEYS = ("algo", "algorithm", "agent")  # which algorithm, not a hyperparameter


def read_json(path: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} ({exc.strerror})", file=path) from None
    except ValueError as exc:
        raise ConfigError(f"not valid JSON: {exc}", file=path) from None
    if not isinstance(data, dict):
        raise ConfigError(f"the {what} must be a JSON object", file=path)
    return data


def import_policy_params(agent_path: str, env_path: str, *, study: str, algo: str | None) -> dict[str, Any]:
    agent, env = read_json(agent_path, "agent JSON"), read_json(env_path, "environment JSON")
    env_id = next((env[k] for k in ENV_ID_KEYS if isinstance(env.get(k), str)), None)
    if env_id is None:
        raise ConfigError(f"needs the environment id under one of {', '.join(ENV_ID_KEYS)}", file=env_path)
    steps = next((env[k] for k in STEP_KEYS if isinstance(env.get(k), int)), None)
    if steps is None:
        raise ConfigError(f"needs the step budget under one of {', '.join(STEP_KEYS)}", file=env_path)
    seeds = next((env[k] for k in SEED_KEYS if isinstance(env.get(k), int)), 1)
    name = algo or next((str(agent[k]) for k in AGENT_KEYS if isinstance(agent.get(k), str)), None)
    if name is None:
        raise ConfigError(f"needs the algorithm (key {AGENT_KEYS[0]!r}) or --algo", file=agent_path)
    params = {k: _axis(v) for k, v in agent.items() if k not in AGENT_KEYS}
    return {
        "study": study,
        "trainer": {"kind": "sb3", "algo": name, "env": env_id, "timesteps": steps},
        "eval": {"every": max(steps // 10, 1)},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "grid", "seeds": seeds},
        "params": params,
    }


def _axis(value: Any) -> Any:
    """A list is a grid axis (its items the values); a mapping's lists are axes too."""
    if isinstance(value, list):
        return {"grid": value}
    if isinstance(value, dict):
        return {k: _axis(v) for k, v in value.items()}
    return value
