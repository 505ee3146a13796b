"""Checks of an sb3 trainer section and its hyperparameters, run once before any run starts.

Every problem is a ConfigError naming the file and the key path, quoting the bad value and
suggesting the closest known name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from rlsweep.errors import ConfigError, closest
from rlsweep.trainers.sb3.algos import (
    OFF_POLICY,
    algorithm_class,
    algorithm_names,
    canonical_algo,
    check_action_space,
    check_hyperparams,
)
from rlsweep.trainers.sb3.env import NORMALIZE_KEYS, VEC_ENVS, build_env, check_env_id

# The trainer section's keys and what each means (used in the unknown-key error).
SETTINGS: dict[str, str] = {
    "kind": "sb3",
    "algo": "algorithm name: PPO, A2C, DQN, SAC, TD3, DDPG, TQC, QRDQN, TRPO, ARS, RecurrentPPO, CrossQ",
    "env": "Gymnasium id; 'module:Env-v0' imports module first",
    "timesteps": "environment steps per run",
    "steps": "same as timesteps",
    "n_envs": "parallel training environments (default 1)",
    "vec_env": "dummy (one process) or subproc",
    "policy": "policy name, e.g. MlpPolicy or CnnPolicy (default MlpPolicy)",
    "env_kwargs": "keyword arguments for gymnasium.make",
    "normalize": "VecNormalize: false, true, or {norm_obs, norm_reward, clip_obs, ...}",
    "frame_stack": "stack this many frames (0: none)",
    "atari": "Atari preprocessing (SB3's AtariWrapper)",
    "device": "auto, cpu or cuda",
    "threads": "torch threads per run (default 1)",
    "kwargs": "fixed algorithm keyword arguments",
    "monitor": "GIFs of the training env while it trains: {after: steps, every: steps, max_steps, fps}",
}
MONITOR_KEYS = ("after", "every", "max_steps", "fps")


def validate_settings(settings: Mapping[str, Any], hyperparams: Mapping[str, Any], file: str) -> None:
    """Raise ConfigError for anything the trainer could not run; builds one env to check it."""
    for key in settings:
        if key not in SETTINGS:
            raise ConfigError(
                f"unknown key '{key}'{closest(str(key), SETTINGS)} for the sb3 trainer",
                file=file,
                key=f"trainer.{key}",
            )
    algo = canonical_algo(settings.get("algo"), file)
    algo_cls = algorithm_class(algo)
    env_id = check_env_id(settings.get("env"), file)
    budget = settings.get("timesteps", settings.get("steps"))
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ConfigError(
            f"needs a positive whole number of environment steps, got {budget!r}",
            file=file,
            key="trainer.timesteps",
        )
    for key, low in (("n_envs", 1), ("threads", 1), ("frame_stack", 0)):
        _check_whole(settings.get(key, low), low, f"trainer.{key}", file)
    vec = settings.get("vec_env", "dummy")
    if vec not in VEC_ENVS:
        raise ConfigError(
            f"unknown vec_env '{vec}'{closest(str(vec), VEC_ENVS)}; use dummy or subproc",
            file=file,
            key="trainer.vec_env",
        )
    device = settings.get("device", "auto")
    if not (isinstance(device, str) and (device in ("auto", "cpu", "cuda") or device.startswith("cuda:"))):
        raise ConfigError(f"device takes auto, cpu or cuda, got {device!r}", file=file, key="trainer.device")
    if not isinstance(settings.get("atari", False), bool):
        raise ConfigError(f"takes true or false, got {settings['atari']!r}", file=file, key="trainer.atari")
    if settings.get("atari") and importlib.util.find_spec("cv2") is None:
        raise ConfigError(
            "Atari preprocessing needs OpenCV: pip install 'rlsweep[atari]'", file=file, key="trainer.atari"
        )
    _check_normalize(settings.get("normalize", False), file)
    _check_monitor(settings.get("monitor"), file)
    policy = settings.get("policy", "MlpPolicy")
    if policy not in algo_cls.policy_aliases:
        names = list(algo_cls.policy_aliases)
        raise ConfigError(
            f"{algo} has no policy '{policy}'{closest(str(policy), names)}; known: {', '.join(names)}",
            file=file,
            key="trainer.policy",
        )
    fixed = settings.get("kwargs") or {}
    if not isinstance(fixed, Mapping):
        raise ConfigError(
            f"takes a mapping of algorithm arguments, got {fixed!r}", file=file, key="trainer.kwargs"
        )
    check_hyperparams(algo, algo_cls, fixed, "trainer.kwargs", file, policy)
    check_hyperparams(algo, algo_cls, hyperparams, "params", file, policy)
    both = sorted(set(fixed) & set(hyperparams))
    if both:
        raise ConfigError(
            f"'{both[0]}' is set in both trainer.kwargs and params; keep one",
            file=file,
            key=f"params.{both[0]}",
        )
    env_kwargs = settings.get("env_kwargs") or {}
    if not isinstance(env_kwargs, Mapping):
        raise ConfigError(
            f"takes a mapping of gymnasium.make arguments, got {env_kwargs!r}",
            file=file,
            key="trainer.env_kwargs",
        )
    # Building one env catches bad env_kwargs, missing extras (MuJoCo, Box2D) and an algorithm
    # that cannot act in the env's action space, all before any run starts.
    try:
        env = build_env(settings)
    except ConfigError as exc:
        raise ConfigError(str(exc).split(": ", 1)[-1], file=file, key=exc.key) from None
    except TypeError as exc:
        raise ConfigError(
            f"{env_id} rejects these arguments: {_first_line(exc).split(' was raised from')[0]}",
            file=file,
            key="trainer.env_kwargs",
        ) from None
    except Exception as exc:  # gymnasium's DependencyNotInstalled, removed versions, ...
        raise ConfigError(
            f"cannot create '{env_id}': {_first_line(exc)}", file=file, key="trainer.env"
        ) from None
    try:
        check_action_space(algo, env.action_space, env_id, file)
    finally:
        env.close()


def validate_checkpoint(settings: Mapping[str, Any], checkpoint: Mapping[str, Any], file: str) -> None:
    """`checkpoint.replay_buffer: true` needs an algorithm that keeps a replay buffer."""
    if not checkpoint.get("replay_buffer"):
        return
    algo = canonical_algo(settings.get("algo"), file)
    if algo not in OFF_POLICY:
        off = [a for a in algorithm_names() if a in OFF_POLICY]
        raise ConfigError(
            f"{algo} keeps no replay buffer (it learns on-policy); replay_buffer: true is for off-policy "
            f"algorithms ({', '.join(off)}): remove it or set it to false",
            file=file,
            key="checkpoint.replay_buffer",
        )


def validate_record(settings: Mapping[str, Any], record: Mapping[str, Any], file: str) -> None:
    """`record.batches: true` needs an algorithm that samples its updates from a replay buffer."""
    if not record.get("batches"):
        return
    algo = canonical_algo(settings.get("algo"), file)
    if algo not in OFF_POLICY:
        raise ConfigError(
            f"{algo} samples no update batches (it learns on-policy from its rollouts); batches: true is "
            "for off-policy algorithms: remove it, or record trajectories: train",
            file=file,
            key="record.batches",
        )


def _check_monitor(value: Any, file: str) -> None:
    if value is None:
        return
    from rlsweep.render.gif import MAX_GIF_FPS  # the monitor writes its videos with the GIF writer

    if not isinstance(value, Mapping):
        raise ConfigError(
            f"takes a mapping such as {{after: 10000, every: 20000}}, got {value!r}", file=file, key="trainer.monitor"
        )
    for key in value:
        if key not in MONITOR_KEYS:
            raise ConfigError(
                f"unknown key '{key}'{closest(str(key), MONITOR_KEYS)}; known: {', '.join(MONITOR_KEYS)}",
                file=file,
                key=f"trainer.monitor.{key}",
            )
    if "after" not in value:
        raise ConfigError(
            "needs 'after': the environment steps after which the first video is recorded",
            file=file,
            key="trainer.monitor.after",
        )
    for key, low in (("after", 0), ("every", 1), ("max_steps", 1)):
        if key in value and not (key == "every" and value[key] is None):  # every: null is one video
            _check_whole(value[key], low, f"trainer.monitor.{key}", file)
    fps = value.get("fps", 30)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= MAX_GIF_FPS:
        raise ConfigError(
            f"takes frames per second in (0, {MAX_GIF_FPS}], got {fps!r}", file=file, key="trainer.monitor.fps"
        )


def _check_whole(value: Any, low: int, key: str, file: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"takes a whole number >= {low}, got {value!r}", file=file, key=key)


def _check_normalize(value: Any, file: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"takes false, true or a mapping of VecNormalize settings, got {value!r}",
            file=file,
            key="trainer.normalize",
        )
    for key in value:
        if key not in NORMALIZE_KEYS:
            raise ConfigError(
                f"VecNormalize has no setting '{key}'{closest(str(key), NORMALIZE_KEYS)}",
                file=file,
                key=f"trainer.normalize.{key}",
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
