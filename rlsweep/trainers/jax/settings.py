"""Which JAX trainer settings are per-run arrays and which change array shapes, and their validation.

A setting may stand in the trainer section (fixed for the sweep) or in `params` (searched); either way
a run's value is looked up here. Per-run settings (`VMAPPED`) become one array entry per run of a
batch; shape settings (`SHAPE`) split runs into groups, one compilation each. Pure Python: no JAX.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rlsweep.errors import ConfigError, closest

#: Per-run values, vmapped, by algorithm: learning_rate and max_grad_norm live in the optimizer's
#: state (optax's injectable hyperparameters), the others are array fields of the rejax algorithm.
VMAPPED: dict[str, dict[str, str]] = {
    "ppo": {
        "learning_rate": "Adam's step size (per run; PBT's explore changes it in the optimizer state)",
        "gamma": "discount factor",
        "gae_lambda": "GAE's lambda",
        "clip_eps": "PPO's clipping range (policy and value)",
        "ent_coef": "entropy bonus coefficient",
        "vf_coef": "value loss coefficient",
        "max_grad_norm": "clip each network's gradient to this global norm",
    },
    "dqn": {
        "learning_rate": "Adam's step size (per run; PBT's explore changes it in the optimizer state)",
        "gamma": "discount factor",
        "eps_start": "exploration's epsilon at the start",
        "eps_end": "exploration's epsilon after exploration_fraction of the run",
        "polyak": "target network averaging at each target update (0: copy the online network)",
        "max_grad_norm": "clip the Q-network's gradient to this global norm",
    },
    "pqn": {
        "learning_rate": "Adam's step size (per run; PBT's explore changes it in the optimizer state)",
        "gamma": "discount factor",
        "td_lambda": "lambda of the Q(lambda) targets",
        "eps_start": "exploration's epsilon at the start",
        "eps_end": "exploration's epsilon after exploration_fraction of the run",
        "max_grad_norm": "clip the Q-network's gradient to this global norm",
    },
    "sac": {
        "learning_rate": "Adam's step size of actor, critics and temperature (per run; PBT changes it)",
        "gamma": "discount factor",
        "polyak": "target critics' averaging at each target update",
        "target_entropy_ratio": "discrete actions: target entropy as a share of the uniform policy's",
        "max_grad_norm": "clip each network's gradient to this global norm",
    },
    "td3": {
        "learning_rate": "Adam's step size of actor and critics (per run; PBT changes it)",
        "gamma": "discount factor",
        "polyak": "target networks' averaging at each target update",
        "exploration_noise": "std of the Gaussian noise on actions while collecting",
        "target_noise": "std of the smoothing noise on target actions",
        "target_noise_clip": "clip of that smoothing noise",
        "max_grad_norm": "clip each network's gradient to this global norm",
    },
}

_ROLLOUT = {
    "num_envs": "environments stepped in parallel per run",
    "num_steps": "steps per environment per update (rollout length)",
    "num_epochs": "passes over each rollout",
    "num_minibatches": "minibatches per epoch (num_envs * num_steps must divide by it)",
}
_REPLAY = {
    "num_envs": "environments stepped in parallel per run (one step each per iteration)",
    "num_epochs": "gradient steps per iteration",
    "buffer_size": "replay buffer capacity, in transitions",
    "fill_buffer": "environment steps of uniform random actions before learning starts",
    "batch_size": "transitions per gradient step",
    "target_update_freq": "environment steps between target network updates",
}
_EXPLORATION = {"exploration_fraction": "share of trainer.timesteps over which epsilon falls to eps_end"}
_CRITICS = {"num_critics": "critics (the minimum of their values is the target)"}
_ACTIVATION = {"activation": "hidden activation: tanh, relu, swish, gelu, elu"}
_NORMALIZE = {"normalize_observations": "keep running observation statistics and normalise with them"}


def _widths(networks: str) -> dict[str, str]:
    return {"hidden_layer_sizes": f"hidden layer widths of {networks}, e.g. [64, 64]"}


#: Settings that change array shapes or the compiled program, by algorithm: runs differing in one
#: train apart.
SHAPE: dict[str, dict[str, str]] = {
    "ppo": {**_ROLLOUT, **_widths("the actor and the critic"), **_ACTIVATION, **_NORMALIZE},
    "dqn": {
        **_REPLAY, **_EXPLORATION, "ddqn": "double DQN targets", **_widths("the Q-network"), **_ACTIVATION,
        **_NORMALIZE,
    },
    "pqn": {**_ROLLOUT, **_EXPLORATION, **_widths("the Q-network (LayerNorm + ReLU)"), **_NORMALIZE},
    "sac": {**_REPLAY, **_CRITICS, **_widths("the actor and the critics"), **_ACTIVATION, **_NORMALIZE},
    "td3": {
        **_REPLAY, **_CRITICS, "policy_delay": "critic updates per actor (and target) update",
        **_widths("the actor and the critics"), **_ACTIVATION, **_NORMALIZE,
    },
}  # fmt: skip

ALGOS = tuple(VMAPPED)

#: Settings that must be whole numbers >= 1, by algorithm.
WHOLE_NUMBERS: dict[str, tuple[str, ...]] = {
    algo: tuple(k for k in shape if k in (*_ROLLOUT, *_REPLAY, *_CRITICS, "policy_delay"))
    for algo, shape in SHAPE.items()
}

#: Algorithms with a replay buffer (and their checks), and the ones that need discrete or
#: continuous actions.
OFF_POLICY = ("dqn", "sac", "td3")
DISCRETE_ONLY = ("dqn", "pqn")
#: Algorithms whose exploration schedule is compiled in over trainer.timesteps.
SCHEDULED = ("dqn", "pqn")
CONTINUOUS_ONLY = ("td3",)

ACTIVATIONS = ("tanh", "relu", "swish", "gelu", "elu", "leaky_relu", "silu")

#: rejax's defaults, spelled out so a run's recorded configuration says what it trained with (the
#: off-policy algorithms' gradient clip: rejax has none, Stable-Baselines3's DQN uses 10).
DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {
        "learning_rate": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01,
        "vf_coef": 0.5, "max_grad_norm": 0.5, "num_envs": 16, "num_steps": 128, "num_epochs": 4,
        "num_minibatches": 4, "hidden_layer_sizes": [64, 64], "activation": "tanh", "normalize_observations": False,
    },
    "dqn": {
        "learning_rate": 3e-4, "gamma": 0.99, "eps_start": 1.0, "eps_end": 0.05, "polyak": 0.99,
        "max_grad_norm": 10.0, "num_envs": 1, "num_epochs": 1, "buffer_size": 131072, "fill_buffer": 2048,
        "batch_size": 256, "target_update_freq": 1, "exploration_fraction": 0.1, "ddqn": True,
        "hidden_layer_sizes": [64, 64], "activation": "swish", "normalize_observations": False,
    },
    "pqn": {
        "learning_rate": 3e-4, "gamma": 0.99, "td_lambda": 0.9, "eps_start": 1.0, "eps_end": 0.05,
        "max_grad_norm": 10.0, "num_envs": 64, "num_steps": 64, "num_epochs": 1, "num_minibatches": 16,
        "exploration_fraction": 0.1, "hidden_layer_sizes": [64, 64], "normalize_observations": False,
    },
    "sac": {
        "learning_rate": 3e-4, "gamma": 0.99, "polyak": 0.99, "target_entropy_ratio": 0.98, "max_grad_norm": 10.0,
        "num_envs": 1, "num_epochs": 1, "buffer_size": 131072, "fill_buffer": 2048, "batch_size": 256,
        "target_update_freq": 1, "num_critics": 2, "hidden_layer_sizes": [64, 64], "activation": "relu",
        "normalize_observations": False,
    },
    "td3": {
        "learning_rate": 3e-4, "gamma": 0.99, "polyak": 0.99, "exploration_noise": 0.3, "target_noise": 0.2,
        "target_noise_clip": 0.5, "max_grad_norm": 10.0, "num_envs": 1, "num_epochs": 1, "buffer_size": 131072,
        "fill_buffer": 2048, "batch_size": 256, "target_update_freq": 1, "num_critics": 2, "policy_delay": 2,
        "hidden_layer_sizes": [64, 64], "activation": "swish", "normalize_observations": False,
    },
}  # fmt: skip

#: `preset: sb3` (PPO): exactly Stable-Baselines3's PPO defaults (n_steps 2048 on one env, batch 64,
#: 10 epochs, two 64-unit tanh layers per network), so a comparison with the sb3 trainer is equal work.
PRESETS: dict[str, dict[str, Any]] = {
    "sb3": {
        "learning_rate": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.0,
        "vf_coef": 0.5, "max_grad_norm": 0.5, "num_envs": 1, "num_steps": 2048, "num_epochs": 10,
        "num_minibatches": 32, "hidden_layer_sizes": [64, 64], "activation": "tanh", "normalize_observations": False,
    },
}  # fmt: skip


UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_memory(value: Any) -> int | None:
    """`trainer.memory` in bytes; None for `auto` (decided on the device); ValueError if unreadable."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        if match is None or match[2].lower() not in UNITS:
            raise ValueError(f"cannot read {value!r} as a size; give bytes or e.g. 512MiB, 4GiB, or auto")
        number, unit = float(match[1]), match[2].lower()
    size = int(number * UNITS[unit])
    if size < 1:
        raise ValueError(f"must be more than 0 bytes, got {value!r}")
    return size


def algo_of(config: Mapping[str, Any]) -> str:
    return str(config.get("algo", "ppo")).lower()


#: Trainer-section keys that are not algorithm settings.
OWN: dict[str, str] = {
    "kind": "trainer kind (jax)",
    "algo": "the rejax algorithm: " + ", ".join(ALGOS),
    "env": "a gymnax environment id (CartPole-v1, Pendulum-v1, Breakout-MinAtar, ...) or rejax's 'brax/ant' form",
    "timesteps": "environment steps per run",
    "batch": "how many runs one worker trains at once (default 64)",
    "preset": "start from a named set of settings: sb3 (Stable-Baselines3's PPO defaults; ppo only)",
    "env_params": "gymnax environment parameters (a mapping)",
    "compile_cache": "folder of JAX's persistent compilation cache (default ~/.cache/rlsweep/jax; false: off)",
    "shrink": "recompile for a smaller batch when half of its runs have stopped (default true)",
    "memory": "memory one worker's batch may use (bytes, or 512MiB, 4GiB, ...; auto: 3/4 of a GPU's, half the free RAM)",
}

#: The gymnax 0.0.9 registry, so validation needs no JAX import.
GYMNAX_ENVS = (
    "CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar", "Catch-bsuite",
    "DeepSea-bsuite", "MemoryChain-bsuite", "UmbrellaChain-bsuite", "DiscountingChain-bsuite",
    "MNISTBandit-bsuite", "SimpleBandit-bsuite", "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc",
    "BernoulliBandit-misc", "GaussianBandit-misc", "Reacher-misc", "Swimmer-misc", "Pong-misc",
)  # fmt: skip

#: The ones with continuous actions (and every Brax environment).
CONTINUOUS = ("Pendulum-v1", "MountainCarContinuous-v0", "Reacher-misc", "Swimmer-misc")

DEFAULT_BATCH = 64


def algo_settings(config: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """One run's algorithm settings: the defaults (or the preset), then the trainer section, then params."""
    algo = algo_of(config)
    known = {**VMAPPED.get(algo, {}), **SHAPE.get(algo, {})}
    out = dict(PRESETS.get(str(config.get("preset")), DEFAULTS.get(algo, {})))
    out.update({k: v for k, v in config.items() if k in known})
    out.update({k: v for k, v in hyperparams.items() if k in known})
    return out


def shape_key(config: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> tuple[Any, ...]:
    """What must be equal for runs to train in one compiled program (DQN's and PQN's exploration
    schedule is compiled in, over trainer.timesteps)."""
    algo = algo_of(config)
    values = algo_settings(config, hyperparams)
    return (
        algo,
        str(config.get("env")),
        repr(sorted((config.get("env_params") or {}).items())),
        *((k, repr(values[k])) for k in sorted(SHAPE[algo])),
        *((("timesteps", config.get("timesteps")),) if algo in SCHEDULED else ()),
    )


def validate(settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
    """Names and types of every setting, and the rollout/minibatch arithmetic (exit-2 errors)."""
    algo = str(settings.get("algo", "")).lower()
    if algo not in ALGOS:
        raise ConfigError(
            f"unknown algo {settings.get('algo')!r}{closest(algo, ALGOS)}; the jax trainer trains: {', '.join(ALGOS)}",
            file=file,
            key="trainer.algo",
        )
    env = settings.get("env")
    if not isinstance(env, str) or ("/" not in env and env not in GYMNAX_ENVS):
        raise ConfigError(
            f"unknown gymnax environment {env!r}{closest(str(env), GYMNAX_ENVS)}; known: {', '.join(GYMNAX_ENVS[:5])}, ...",
            file=file,
            key="trainer.env",
        )
    continuous = "/" in env or env in CONTINUOUS
    if algo in DISCRETE_ONLY and continuous:
        raise ConfigError(
            f"{algo} needs discrete actions and {env} has continuous ones; use ppo, sac or td3",
            file=file,
            key="trainer.algo",
        )
    if algo in CONTINUOUS_ONLY and not continuous:
        raise ConfigError(
            f"{algo} needs continuous actions and {env} has discrete ones; use ppo, dqn, pqn or sac",
            file=file,
            key="trainer.algo",
        )
    vmapped, shape = VMAPPED[algo], SHAPE[algo]
    known = {**OWN, **vmapped, **shape}

    def hint(key: str, names: Mapping[str, str]) -> str:
        other = [a for a in ALGOS if key in VMAPPED[a] or key in SHAPE[a]]
        owners = " and ".join([", ".join(other[:-1]), other[-1]] if len(other) > 1 else other)
        return f" (a setting of {owners}, not {algo})" if other else closest(key, names)

    for key in settings:
        if key not in known:
            raise ConfigError(f"unknown setting '{key}'{hint(key, known)}", file=file, key=f"trainer.{key}")
    for key in hyperparams:
        if key not in vmapped and key not in shape:
            raise ConfigError(
                f"the jax trainer has no hyperparameter '{key}'{hint(key, {**vmapped, **shape})}",
                file=file,
                key=f"params.{key}",
            )
    for key, value in (
        ("timesteps", settings.get("timesteps")),
        ("batch", settings.get("batch", DEFAULT_BATCH)),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"must be a whole number >= 1, got {value!r}", file=file, key=f"trainer.{key}")
    if "memory" in settings:
        try:
            parse_memory(settings["memory"])
        except ValueError as exc:
            raise ConfigError(str(exc), file=file, key="trainer.memory") from None
    preset = settings.get("preset")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}{closest(str(preset), PRESETS)}; known: {', '.join(PRESETS)}",
            file=file,
            key="trainer.preset",
        )
    if preset is not None and algo != "ppo":
        raise ConfigError(f"preset {preset!r} is for ppo; {algo} has no presets", file=file, key="trainer.preset")
    values = algo_settings(settings, hyperparams)
    where = {k: ("params" if k in hyperparams else "trainer") for k in values}
    for key in vmapped:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"must be a number >= 0, got {value!r}", file=file, key=f"{where[key]}.{key}")
    for key in WHOLE_NUMBERS[algo]:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"must be a whole number >= 1, got {value!r}", file=file, key=f"{where[key]}.{key}"
            )
    shares = ("polyak", "eps_start", "eps_end", "exploration_fraction", "target_entropy_ratio", "td_lambda")
    for key in (k for k in shares if k in values):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"must be between 0 and 1, got {value!r}", file=file, key=f"{where[key]}.{key}")
    if algo not in OFF_POLICY:
        rollout = values["num_envs"] * values["num_steps"]
        if rollout % values["num_minibatches"]:
            raise ConfigError(
                f"num_envs * num_steps = {rollout} does not divide into {values['num_minibatches']} minibatches; "
                "choose num_minibatches among its divisors",
                file=file,
                key=f"{where['num_minibatches']}.num_minibatches",
            )
    else:
        if values["batch_size"] > values["buffer_size"]:
            raise ConfigError(
                f"batch_size {values['batch_size']} is larger than buffer_size {values['buffer_size']}",
                file=file,
                key=f"{where['batch_size']}.batch_size",
            )
        if not isinstance(values.get("ddqn", False), bool):
            raise ConfigError(f"must be true or false, got {values['ddqn']!r}", file=file, key=f"{where['ddqn']}.ddqn")
    sizes = values["hidden_layer_sizes"]
    if (
        not isinstance(sizes, list | tuple)
        or not sizes
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)
    ):
        raise ConfigError(
            f"must be a list of positive whole numbers, e.g. [64, 64], got {sizes!r}",
            file=file,
            key=f"{where['hidden_layer_sizes']}.hidden_layer_sizes",
        )
    if "activation" in values and values["activation"] not in ACTIVATIONS:
        act = values["activation"]
        raise ConfigError(
            f"unknown activation {act!r}{closest(str(act), ACTIVATIONS)}; known: {', '.join(ACTIVATIONS)}",
            file=file,
            key=f"{where['activation']}.activation",
        )
