"""`rlsweep import zoo hyperparams/ppo.yml --env CartPole-v1`: one env id's entry of an rl-zoo3
hyperparameters file as a fixed SB3 configuration. `policy_kwargs` strings such as
"dict(net_arch=[64, 64], activation_fn=nn.ReLU)" are parsed with `ast` and never evaluated."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from rlsweep.errors import ConfigError, closest

# rl-zoo3 keys that are trainer settings in rlsweep (the rest are algorithm hyperparameters)
TRAINER_KEYS = {"n_timesteps": "timesteps", "policy": "policy", "n_envs": "n_envs", "normalize": "normalize",
                "frame_stack": "frame_stack", "env_kwargs": "env_kwargs"}  # fmt: skip
UNSUPPORTED = ("env_wrapper", "callback", "vec_env_wrapper", "normalize_kwargs")
SCHEDULES = ("lin_", "linear_")


def import_zoo(path: str, *, env: str, study: str, algo: str | None) -> tuple[dict[str, Any], list[str]]:
    """(the sweep, notes on what could not be carried over as it was)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", file=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {str(exc).splitlines()[0]}", file=path) from None
    if not isinstance(data, dict) or env not in data:
        known = list(data) if isinstance(data, dict) else []
        raise ConfigError(f"has no entry for {env!r}{closest(env, known)}; pass --env with one of its ids", file=path, key=env)
    entry = dict(data[env] or {})
    name = algo or Path(path).stem.split("_")[0].upper()
    notes: list[str] = []
    trainer: dict[str, Any] = {"kind": "sb3", "algo": name, "env": env}
    params: dict[str, Any] = {}
    for key, value in entry.items():
        where = f"{env}.{key}"
        if key in UNSUPPORTED:
            raise ConfigError(f"{key} is not supported by rlsweep's sb3 trainer; remove it or wrap the env yourself", file=path, key=where)
        if key == "policy_kwargs" and isinstance(value, str):
            value = parse_call(value, path, where)
        if key == "normalize" and isinstance(value, str):
            value = parse_call(value, path, where)
        if isinstance(value, str) and value.startswith(SCHEDULES):
            start = float(value.split("_", 1)[1])
            notes.append(f"{key}: {value} is a linear schedule; rlsweep's sb3 trainer takes a constant: imported as {start:g}")
            value = start
        if key in TRAINER_KEYS:
            trainer[TRAINER_KEYS[key]] = int(value) if key == "n_timesteps" else value
        else:
            params[key] = value
    if "timesteps" not in trainer:
        raise ConfigError("has no n_timesteps; add it (rlsweep needs a step budget)", file=path, key=f"{env}.n_timesteps")
    sweep = {
        "study": study,
        "trainer": trainer,
        "eval": {"every": max(int(trainer["timesteps"]) // 20, 1000)},
        "objective": {"metric": "eval/mean_return", "mode": "max"},
        "strategy": {"name": "grid", "seeds": 1},
        "params": params,
    }
    return sweep, notes


def parse_call(text: str, file: str, key: str) -> Any:
    """A Python literal or `dict(...)` call as plain data, without evaluating anything: `nn.ReLU`
    becomes the string "nn.ReLU" (the sb3 trainer resolves activation names)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{text!r} is not a Python expression ({exc.msg})", file=file, key=key) from None
    return _value(tree.body, text, file, key)


def _value(node: ast.AST, text: str, file: str, key: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value  # type: ignore[operator]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item, text, file, key) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {_value(k, text, file, key): _value(v, text, file, key) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _value(kw.value, text, file, key) for kw in node.keywords if kw.arg is not None}
    if isinstance(node, (ast.Attribute, ast.Name)):
        return _dotted(node)
    raise ConfigError(
        f"cannot read {ast.unparse(node)!r} in {text!r} without running code; write plain values, dict(...), lists or names like nn.ReLU",
        file=file,
        key=key,
    )


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise ValueError(ast.dump(node))
