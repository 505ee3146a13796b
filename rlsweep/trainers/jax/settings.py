"""Which JAX trainer settings are per-run arrays and which change array shapes, and their validation.

A setting may stand in the trainer section (fixed for the sweep) or in `params` (searched); either way
a run's value is looked up here. Per-run settings (`VMAPPED`) become one array entry per run of a
batch; shape settings (`SHAPE`) split runs into groups, one compilation each. Pure Python: no JAX.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlsweep.errors import ConfigError, closest

ALGOS = ("ppo",)

#: Per-run values, vmapped: learning_rate and max_grad_norm live in the optimizer's state (optax's
#: injectable hyperparameters), the others are array fields of the rejax algorithm.
VMAPPED: dict[str, str] = {
    "learning_rate": "Adam's step size (per run; PBT's explore changes it in the optimizer state)",
    "gamma": "discount factor",
    "gae_lambda": "GAE's lambda",
    "clip_eps": "PPO's clipping range (policy and value)",
    "ent_coef": "entropy bonus coefficient",
    "vf_coef": "value loss coefficient",
    "max_grad_norm": "clip each network's gradient to this global norm",
}

#: Settings that change array shapes or the compiled program: runs differing in one train apart.
SHAPE: dict[str, str] = {
    "num_envs": "environments stepped in parallel per run",
    "num_steps": "steps per environment per update (rollout length)",
    "num_epochs": "passes over each rollout",
    "num_minibatches": "minibatches per epoch (num_envs * num_steps must divide by it)",
    "hidden_layer_sizes": "hidden layer widths of the actor and the critic, e.g. [64, 64]",
    "activation": "hidden activation: tanh, relu, swish, gelu, elu",
    "normalize_observations": "keep running observation statistics and normalise with them",
}

ACTIVATIONS = ("tanh", "relu", "swish", "gelu", "elu", "leaky_relu", "silu")

#: rejax's PPO defaults, spelled out so a run's recorded configuration says what it trained with.
DEFAULTS: dict[str, Any] = {
    "learning_rate": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01,
    "vf_coef": 0.5, "max_grad_norm": 0.5, "num_envs": 16, "num_steps": 128, "num_epochs": 4,
    "num_minibatches": 4, "hidden_layer_sizes": [64, 64], "activation": "tanh", "normalize_observations": False,
}  # fmt: skip

#: `preset: sb3`: exactly Stable-Baselines3's PPO defaults (n_steps 2048 on one env, batch 64, 10
#: epochs, two 64-unit tanh layers per network), so a comparison with the sb3 trainer is equal work.
PRESETS: dict[str, dict[str, Any]] = {
    "sb3": {
        "learning_rate": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.0,
        "vf_coef": 0.5, "max_grad_norm": 0.5, "num_envs": 1, "num_steps": 2048, "num_epochs": 10,
        "num_minibatches": 32, "hidden_layer_sizes": [64, 64], "activation": "tanh", "normalize_observations": False,
    },
}  # fmt: skip

#: Trainer-section keys that are not algorithm settings.
OWN: dict[str, str] = {
    "kind": "trainer kind (jax)",
    "algo": "the rejax algorithm: " + ", ".join(ALGOS),
    "env": "a gymnax environment id (CartPole-v1, Pendulum-v1, Breakout-MinAtar, ...) or rejax's 'brax/ant' form",
    "timesteps": "environment steps per run",
    "batch": "how many runs one worker trains at once (default 64)",
    "preset": "start from a named set of settings: sb3 (Stable-Baselines3's PPO defaults)",
    "env_params": "gymnax environment parameters (a mapping)",
    "compile_cache": "folder of JAX's persistent compilation cache (default ~/.cache/rlsweep/jax; false: off)",
    "shrink": "recompile for a smaller batch when half of its runs have stopped (default true)",
}

#: The gymnax 0.0.9 registry, so validation needs no JAX import.
GYMNAX_ENVS = (
    "CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar", "Catch-bsuite",
    "DeepSea-bsuite", "MemoryChain-bsuite", "UmbrellaChain-bsuite", "DiscountingChain-bsuite",
    "MNISTBandit-bsuite", "SimpleBandit-bsuite", "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc",
    "BernoulliBandit-misc", "GaussianBandit-misc", "Reacher-misc", "Swimmer-misc", "Pong-misc",
)  # fmt: skip

DEFAULT_BATCH = 64


def algo_settings(config: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """One run's algorithm settings: the defaults (or the preset), then the trainer section, then params."""
    preset = PRESETS.get(str(config.get("preset")), DEFAULTS)
    out = dict(preset)
    out.update({k: v for k, v in config.items() if k in VMAPPED or k in SHAPE})
    out.update({k: v for k, v in hyperparams.items() if k in VMAPPED or k in SHAPE})
    return out


def shape_key(config: Mapping[str, Any], hyperparams: Mapping[str, Any]) -> tuple[Any, ...]:
    """What must be equal for runs to train in one compiled program."""
    values = algo_settings(config, hyperparams)
    return (
        str(config.get("algo", "ppo")).lower(),
        str(config.get("env")),
        repr(sorted((config.get("env_params") or {}).items())),
        *((k, repr(values[k])) for k in sorted(SHAPE)),
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
    known = {**OWN, **VMAPPED, **SHAPE}
    for key in settings:
        if key not in known:
            raise ConfigError(
                f"unknown setting '{key}'{closest(key, known)}", file=file, key=f"trainer.{key}"
            )
    for key in hyperparams:
        if key not in VMAPPED and key not in SHAPE:
            raise ConfigError(
                f"the jax trainer has no hyperparameter '{key}'{closest(key, {**VMAPPED, **SHAPE})}",
                file=file,
                key=f"params.{key}",
            )
    for key, value in (
        ("timesteps", settings.get("timesteps")),
        ("batch", settings.get("batch", DEFAULT_BATCH)),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"must be a whole number >= 1, got {value!r}", file=file, key=f"trainer.{key}")
    preset = settings.get("preset")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}{closest(str(preset), PRESETS)}; known: {', '.join(PRESETS)}",
            file=file,
            key="trainer.preset",
        )
    values = algo_settings(settings, hyperparams)
    where = {k: ("params" if k in hyperparams else "trainer") for k in values}
    for key in VMAPPED:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"must be a number >= 0, got {value!r}", file=file, key=f"{where[key]}.{key}")
    for key in ("num_envs", "num_steps", "num_epochs", "num_minibatches"):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"must be a whole number >= 1, got {value!r}", file=file, key=f"{where[key]}.{key}"
            )
    rollout = values["num_envs"] * values["num_steps"]
    if rollout % values["num_minibatches"]:
        raise ConfigError(
            f"num_envs * num_steps = {rollout} does not divide into {values['num_minibatches']} minibatches; "
            "choose num_minibatches among its divisors",
            file=file,
            key=f"{where['num_minibatches']}.num_minibatches",
        )
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
    if values["activation"] not in ACTIVATIONS:
        act = values["activation"]
        raise ConfigError(
            f"unknown activation {act!r}{closest(str(act), ACTIVATIONS)}; known: {', '.join(ACTIVATIONS)}",
            file=file,
            key=f"{where['activation']}.activation",
        )
