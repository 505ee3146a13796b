"""Algorithms for the SB3 trainer: find a class by name, check hyperparameters against its
constructor, turn YAML values into what SB3 wants, and apply new values to a loaded model (PBT).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError, TrainerError, closest

# name -> module; sb3-contrib entries are offered only when sb3-contrib is installed.
ALGORITHMS: dict[str, str] = {
    "PPO": "stable_baselines3",
    "A2C": "stable_baselines3",
    "DQN": "stable_baselines3",
    "SAC": "stable_baselines3",
    "TD3": "stable_baselines3",
    "DDPG": "stable_baselines3",
    "TQC": "sb3_contrib",
    "QRDQN": "sb3_contrib",
    "TRPO": "sb3_contrib",
    "ARS": "sb3_contrib",
    "RecurrentPPO": "sb3_contrib",
    "CrossQ": "sb3_contrib",
}

# Action spaces each algorithm can act in (SB3 checks this only once the model is built).
_ANY = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
ACTION_SPACES: dict[str, tuple[str, ...]] = {
    "DQN": ("Discrete",),
    "QRDQN": ("Discrete",),
    "SAC": ("Box",),
    "TD3": ("Box",),
    "DDPG": ("Box",),
    "TQC": ("Box",),
    "CrossQ": ("Box",),
    "ARS": ("Box", "Discrete"),
}
OFF_POLICY = ("DQN", "QRDQN", "SAC", "TD3", "DDPG", "TQC", "CrossQ")

# Constructor arguments rlsweep sets itself; a sweep naming them gets told where they belong.
RESERVED = {
    "policy": "trainer.policy",
    "env": "trainer.env",
    "seed": "the run's seed (sweep 'seed' and strategy.seeds)",
    "device": "trainer.device",
    "verbose": "nothing (rlsweep keeps SB3 quiet)",
    "tensorboard_log": "nothing (rlsweep writes each run's event file under its artifact folder)",
    "_init_setup_model": "nothing",
}

# Values that must keep the network's shape when a run continues from a checkpoint.
FIXED_WHEN_CONTINUING = ("policy_kwargs", "use_sde")

ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "leakyrelu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
    "swish": "SiLU",
    "selu": "SELU",
    "sigmoid": "Sigmoid",
    "softplus": "Softplus",
    "mish": "Mish",
    "identity": "Identity",
}
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "sgd": "SGD"}

# Counts SB3 needs as ints (a default's type is no guide: DQN's max_grad_norm defaults to the int 10).
INT_PARAMS = frozenset(
    "n_steps batch_size n_epochs buffer_size learning_starts gradient_steps target_update_interval "
    "train_freq sde_sample_freq stats_window_size policy_delay n_delta n_top n_eval_episodes n_critics "
    "n_quantiles top_quantiles_to_drop_per_net cg_max_steps n_critic_updates".split()
)


def algorithm_names() -> list[str]:
    import importlib.util

    return [name for name, module in ALGORITHMS.items() if importlib.util.find_spec(module) is not None]


def canonical_algo(name: Any, file: str | None = None) -> str:
    """'ppo' -> 'PPO', 'recurrentppo' -> 'RecurrentPPO'; unknown names suggest the closest."""
    names = algorithm_names()
    if isinstance(name, str):
        by_lower = {n.lower(): n for n in names}
        if name.lower() in by_lower:
            return by_lower[name.lower()]
        if name.lower() in {n.lower() for n in ALGORITHMS}:
            raise ConfigError(
                f"'{name}' is in sb3-contrib, which is not installed: pip install sb3-contrib",
                file=file,
                key="trainer.algo",
            )
    if not isinstance(name, str):
        raise ConfigError(
            f"needs an algorithm name such as PPO, got {name!r}; known: {', '.join(names)}",
            file=file,
            key="trainer.algo",
        )
    # match case-insensitively, suggest in the canonical spelling
    match = closest(name.lower(), [n.lower() for n in names])
    for canon in names:
        match = match.replace(f"'{canon.lower()}'", f"'{canon}'")
    raise ConfigError(
        f"unknown algorithm '{name}'{match}; known: {', '.join(names)}", file=file, key="trainer.algo"
    )


def algorithm_class(name: str) -> Any:
    import importlib

    canon = canonical_algo(name)
    return getattr(importlib.import_module(ALGORITHMS[canon]), canon)


def constructor_defaults(algo_cls: Any) -> dict[str, Any]:
    """Keyword arguments the algorithm accepts and their defaults."""
    params = inspect.signature(algo_cls.__init__).parameters
    return {n: p.default for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD}


def check_hyperparams(
    algo: str, algo_cls: Any, values: Mapping[str, Any], prefix: str, file: str | None, policy: str
) -> None:
    """Every key must be a constructor argument of the right type; policy_kwargs keys must be
    arguments of the policy class. Errors name the key path (`params.learnin_rate`)."""
    defaults = constructor_defaults(algo_cls)
    accepted = [n for n in defaults if n not in RESERVED]
    for name, value in values.items():
        key = f"{prefix}.{name}"
        if name in RESERVED:
            raise ConfigError(f"'{name}' is set by rlsweep; use {RESERVED[name]} instead", file=file, key=key)
        if name not in defaults:
            raise ConfigError(
                f"{algo} does not accept '{name}'{closest(name, accepted)}; see {algo}'s constructor arguments",
                file=file,
                key=key,
            )
        _check_type(algo, name, value, defaults[name], key, file)
        if name == "policy_kwargs":
            _check_policy_kwargs(algo, algo_cls, value, policy, key, file)
        if name == "action_noise" and value is not None:
            action_noise(value, 1, key=key, file=file)  # checks the form; the size comes at build time


def _check_type(algo: str, name: str, value: Any, default: Any, key: str, file: str | None) -> None:
    if name in ("train_freq",) and isinstance(value, list):
        if len(value) != 2 or not isinstance(value[0], int) or value[1] not in ("step", "episode"):
            raise ConfigError(
                f"train_freq takes N or [N, 'step'|'episode'], got {value!r}", file=file, key=key
            )
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{algo}'s {name} takes true or false, got {value!r}", file=file, key=key)
    elif isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, str):
            hint = " (YAML reads 1e-3 as text; write 1.0e-3)" if _looks_numeric(value) else ""
            raise ConfigError(
                f"{algo}'s {name} takes a number, got the text {value!r}{hint}", file=file, key=key
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{algo}'s {name} takes a number, got {value!r}", file=file, key=key)
        if name in INT_PARAMS and not float(value).is_integer():
            raise ConfigError(f"{algo}'s {name} takes a whole number, got {value!r}", file=file, key=key)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_policy_kwargs(
    algo: str, algo_cls: Any, value: Any, policy: str, key: str, file: str | None
) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"policy_kwargs takes a mapping such as {{net_arch: [64, 64]}}, got {value!r}", file=file, key=key
        )
    policy_cls = algo_cls.policy_aliases.get(policy)
    if policy_cls is None:
        return  # reported under trainer.policy
    params = inspect.signature(policy_cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n in params if n not in ("self", "observation_space", "action_space", "lr_schedule")]
    for name, sub in value.items():
        if name not in accepted:
            raise ConfigError(
                f"{policy_cls.__name__} ({algo} {policy}) does not accept '{name}'{closest(name, accepted)}",
                file=file,
                key=f"{key}.{name}",
            )
        if name == "activation_fn":
            activation(sub, key=f"{key}.{name}", file=file)
        if name == "optimizer_class":
            optimizer(sub, key=f"{key}.{name}", file=file)


def check_action_space(algo: str, space: Any, env_id: str, file: str | None) -> None:
    kind = type(space).__name__
    allowed = ACTION_SPACES.get(algo, _ANY)
    if kind not in allowed:
        fits = [a for a in algorithm_names() if kind in ACTION_SPACES.get(a, _ANY)]
        raise ConfigError(
            f"{algo} cannot act in {env_id}'s {kind} action space (it needs {' or '.join(allowed)}); algorithms that can: {', '.join(fits)}",
            file=file,
            key="trainer.algo",
        )


def activation(
    value: Any, *, key: str = "params.policy_kwargs.activation_fn", file: str | None = None
) -> Any:
    """'tanh', 'ReLU', 'nn.ReLU' -> the torch.nn class; classes pass through."""
    if not isinstance(value, str):
        return value
    import torch.nn as nn

    name = value.lower().removeprefix("nn.").removeprefix("torch.nn.")
    if name not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation '{value}'{closest(name, ACTIVATIONS)}; known: {', '.join(ACTIVATIONS)}",
            file=file,
            key=key,
        )
    return getattr(nn, ACTIVATIONS[name])


def optimizer(
    value: Any, *, key: str = "params.policy_kwargs.optimizer_class", file: str | None = None
) -> Any:
    """'adam', 'rmsprop', 'RMSpropTFLike' -> the optimizer class; classes pass through."""
    if not isinstance(value, str):
        return value
    if value.lower() == "rmsproptflike":
        from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

        return RMSpropTFLike
    name = value.lower().removeprefix("torch.optim.")
    if name not in OPTIMIZERS:
        known = [*OPTIMIZERS, "rmsproptflike"]
        raise ConfigError(
            f"unknown optimizer '{value}'{closest(name, known)}; known: {', '.join(known)}",
            file=file,
            key=key,
        )
    import torch.optim

    return getattr(torch.optim, OPTIMIZERS[name])


def action_noise(
    value: Any, n_actions: int, *, key: str = "params.action_noise", file: str | None = None
) -> Any:
    """`{normal: 0.1}` or `{ornstein_uhlenbeck: 0.2}` (sigma per action dimension) -> SB3's noise object."""
    kinds = ("normal", "ornstein_uhlenbeck")
    if not (isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in kinds):
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"action_noise takes {{normal: SIGMA}} or {{ornstein_uhlenbeck: SIGMA}}, got {value!r}",
                file=file,
                key=key,
            )
        name = str(next(iter(value), ""))
        raise ConfigError(
            f"unknown action noise '{name}'{closest(name, kinds)}; use {{normal: SIGMA}} or {{ornstein_uhlenbeck: SIGMA}}",
            file=file,
            key=key,
        )
    kind, sigma = next(iter(value.items()))
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma < 0:
        raise ConfigError(f"action noise sigma must be a number >= 0, got {sigma!r}", file=file, key=key)
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    cls = NormalActionNoise if kind == "normal" else OrnsteinUhlenbeckActionNoise
    return cls(mean=np.zeros(n_actions), sigma=float(sigma) * np.ones(n_actions))


def algorithm_kwargs(values: Mapping[str, Any], action_space: Any) -> dict[str, Any]:
    """YAML values -> constructor keyword arguments (classes for names, tuples for train_freq,
    ints for whole-number floats where SB3 wants an int)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "policy_kwargs" and value is not None:
            value = dict(value)
            if "activation_fn" in value:
                value["activation_fn"] = activation(value["activation_fn"])
            if "optimizer_class" in value:
                value["optimizer_class"] = optimizer(value["optimizer_class"])
        elif name == "train_freq" and isinstance(value, list):
            value = (int(value[0]), str(value[1]))
        elif name == "action_noise" and value is not None and not hasattr(value, "reset"):
            value = action_noise(value, int(action_space.shape[0]))
        elif name in INT_PARAMS and isinstance(value, float):
            value = int(value)
        out[name] = value
    return out


def weights_hash(model: Any) -> str:
    """sha256 over the policy's parameters and buffers: equal hashes mean equal networks."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def optimizers(model: Any) -> list[Any]:
    """Every torch optimizer the model saves (policy.optimizer; SAC's actor, critic and entropy ones)."""
    found = []
    for name in model._get_torch_save_params()[0]:
        if not name.endswith("optimizer"):
            continue
        obj = model
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            found.append(obj)
    return found


def load_for_continuing(
    algo_cls: Any,
    path: str,
    env: Any,
    device: str,
    kwargs: Mapping[str, Any],
    seed: int,
    *,
    replay_buffer: Path | None = None,
) -> Any:
    """The checkpoint's model on `env`, with the run's new hyperparameters really in effect, and
    for an off-policy model the replay buffer saved in `replay_buffer` (see buffer.py), if given.

    SB3's `load(**kwargs)` sets the attributes before rebuilding schedules and buffers, but then
    restores the optimizer's saved state, learning rate included; so the rate is written into the
    optimizer's param groups afterwards. The network's shape cannot change mid-lineage.
    """
    changing = {k: v for k, v in kwargs.items() if k not in FIXED_WHEN_CONTINUING}
    model = algo_cls.load(path, env=env, device=device, **changing)
    for name in FIXED_WHEN_CONTINUING:
        if name in kwargs and not _same_setting(kwargs[name], getattr(model, name, None)):
            raise TrainerError(
                f"cannot continue from {path} with {name}={kwargs[name]!r}: the checkpoint was trained with "
                f"{getattr(model, name, None)!r}; list '{name}' under strategy.fixed so it never changes mid-lineage"
            )
    lr = model.lr_schedule(model._current_progress_remaining)
    for opt in optimizers(model):
        for group in opt.param_groups:
            group["lr"] = lr
    if type(model).__name__ in OFF_POLICY:
        restored = 0
        if replay_buffer is not None:
            from rlsweep.trainers.sb3.buffer import load_replay_buffer

            restored = load_replay_buffer(model.replay_buffer, replay_buffer)
        if restored == 0:
            # An empty replay buffer (none saved with the model): collect a batch before learning again.
            model.learning_starts = model.num_timesteps + max(int(getattr(model, "batch_size", 256)), 1)
    model.set_random_seed(seed)
    return model


def _same_setting(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, Mapping) and isinstance(actual, Mapping):
        # keys SB3 filled in by default are not the sweep's concern; only those the sweep sets
        return all(_same_setting(wanted[k], actual.get(k)) for k in wanted)
    if isinstance(wanted, str) and isinstance(actual, type):
        try:
            return activation(wanted) is actual
        except ConfigError:
            return optimizer(wanted) is actual
    if isinstance(wanted, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(wanted) == len(actual) and all(
            _same_setting(w, a) for w, a in zip(wanted, actual, strict=True)
        )
    if wanted is None and actual in (None, {}, False):
        return True
    return bool(wanted == actual)
