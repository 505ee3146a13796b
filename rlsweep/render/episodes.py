"""Record seeded episodes of a policy and write them as GIF/MP4 with a JSON sidecar.

`record_episode` works on any Gymnasium env with render_mode="rgb_array"; `render_policy` builds the
env and the policy through the hooks of the run's trainer (`Trainer.make_env`, `Trainer.load_policy`,
chosen by the trainer section's `kind`), so a rendered episode is the same environment the run was trained and evaluated on. Rendering is headless: SDL's dummy video
driver for classic control and Box2D, EGL for MuJoCo, unless the user chose otherwise.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rlsweep.errors import ConfigError

# Set before pygame or MuJoCo are first imported (both read these once, at import).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

Policy = Callable[[Any], Any]

#: Observations with more entries than this (images) are not kept per step: too big for descriptors.
MAX_OBS_DIM = 1024

#: None: build the env and load the policy through the hooks of the trainer named by `config["kind"]`.
DEFAULT_MAKE_ENV: str | Callable[..., Any] | None = None
DEFAULT_LOAD_POLICY: str | Callable[..., Any] | None = None


@dataclass
class Episode:
    """One recorded episode. `frames` has length + 1 images (the reset state, then one per step);
    `observations[t]` is what the policy saw before taking `actions[t]`."""

    frames: list[np.ndarray]
    episode_return: float
    length: int
    observations: np.ndarray
    actions: np.ndarray
    seed: int
    terminated: bool = False
    truncated: bool = False


@dataclass
class RenderResult:
    """One written file and what it shows; the same data is in the JSON sidecar beside it."""

    path: Path
    sidecar: Path
    seed: int
    episode_return: float
    length: int
    frames: int
    run: int | None = None
    config_id: str | None = None
    behaviour: list[float] = field(default_factory=list)


def _flat_observation(env: Any, obs: Any) -> np.ndarray | None:
    import gymnasium

    space = env.observation_space
    if isinstance(space, gymnasium.spaces.Box):
        flat = np.asarray(obs, dtype=float).ravel()
    else:
        flat = np.asarray(gymnasium.spaces.flatten(space, obs), dtype=float)
    return flat if flat.size <= MAX_OBS_DIM else None


def _font(height: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=max(10, height // 28))
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def draw_overlay(frame: np.ndarray, lines: list[str], font: Any = None) -> np.ndarray:
    """A copy of `frame` with `lines` written top-left in white on a translucent dark box (the scene
    stays visible under it, which matters on small frames)."""
    from PIL import Image, ImageDraw

    rgb = np.array(frame[:, :, :3], dtype=np.uint8)
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    font = font or _font(im.height)
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((4, 2), text, font=font, spacing=1)
    x1, y1 = min(right + 4, rgb.shape[1]), min(bottom + 3, rgb.shape[0])
    rgb[:y1, :x1] = (rgb[:y1, :x1] * 0.35 + 12).astype(np.uint8)
    im = Image.fromarray(rgb)
    ImageDraw.Draw(im).multiline_text((4, 2), text, fill=(255, 255, 255), font=font, spacing=1)
    return np.asarray(im)


def record_episode(
    env: Any,
    policy: Policy,
    seed: int,
    *,
    max_steps: int = 1000,
    overlay: str | None = None,
    frame_size: tuple[int, int] | None = None,
) -> Episode:
    """Run one episode from `env.reset(seed=seed)` and keep every rendered frame.

    The same env, policy and seed give the same frames. With `overlay`, its lines plus the step and
    the return so far are drawn on each frame. `frame_size` (width, height) shrinks frames as they
    are captured, which bounds memory for long episodes.
    """
    if getattr(env, "render_mode", None) != "rgb_array":
        raise ConfigError(
            f"recording needs an env made with render_mode='rgb_array', got {getattr(env, 'render_mode', None)!r}"
        )
    if callable(getattr(policy, "reset", None)):
        policy.reset()  # type: ignore[attr-defined]  # recurrent policies start each episode fresh
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)  # policies that sample from the action space stay reproducible
    lines = overlay.splitlines() if overlay else []
    font = None

    def capture(step: int, ret: float) -> np.ndarray:
        nonlocal font
        frame = np.asarray(env.render())
        if frame_size is not None and (frame.shape[1], frame.shape[0]) != tuple(frame_size):
            from PIL import Image

            frame = np.asarray(Image.fromarray(frame[:, :, :3]).resize(frame_size, Image.Resampling.BILINEAR))
        if overlay is not None:
            font = font or _font(frame.shape[0])
            frame = draw_overlay(frame, [*lines, f"step {step}  return {ret:.1f}"], font)
        return frame

    frames = [capture(0, 0.0)]
    observations: list[np.ndarray] = []
    keep_obs = True
    actions: list[np.ndarray] = []
    total = 0.0
    terminated = truncated = False
    step = 0
    while step < max_steps and not (terminated or truncated):
        flat = _flat_observation(env, obs) if keep_obs else None
        keep_obs = flat is not None
        if flat is not None:
            observations.append(flat)
        action = policy(obs)
        actions.append(np.asarray(action))
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        step += 1
        frames.append(capture(step, total))
    obs_array = np.stack(observations) if keep_obs and observations else np.empty((step, 0))
    act_array = np.stack(actions) if actions else np.empty((0,))
    return Episode(
        frames=frames,
        episode_return=total,
        length=step,
        observations=obs_array,
        actions=act_array,
        seed=seed,
        terminated=bool(terminated),
        truncated=bool(truncated or (step >= max_steps and not terminated)),
    )


def _resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """'package.module:function' -> the function (a callable passes through)."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {target!r} ({exc}); expected 'package.module:function'") from None


def _env_and_policy(
    config: Mapping[str, Any],
    model_path: str | os.PathLike[str],
    seed: int,
    make_env: str | Callable[..., Any] | None,
    load_policy: str | Callable[..., Any] | None,
    study: str | None,
) -> tuple[Any, Policy]:
    # given functions are resolved first, so a bad name is reported as such
    make = _resolve(make_env) if make_env is not None else None
    load = _resolve(load_policy) if load_policy is not None else None
    trainer: Any = None
    if make is None or load is None:
        from rlsweep.trainers import policy_trainer

        trainer = policy_trainer(config, "render", study)
    env = make(config, seed, render_mode="rgb_array") if make else trainer.make_env(config, seed, render_mode="rgb_array")
    policy = load(model_path, config) if load else trainer.load_policy(config, model_path)
    return env, policy


def _out_paths(out_path: Path, fmt: str, seeds: list[int]) -> list[Path]:
    suffix = "." + fmt
    base = out_path.with_suffix(suffix) if out_path.suffix.lower() != suffix else out_path
    if len(seeds) == 1:
        return [base]
    return [base.with_name(f"{base.stem}-seed{s}{suffix}") for s in seeds]


def _write_sidecar(path: Path, data: dict[str, Any]) -> Path:
    sidecar = path.with_name(path.name + ".json")
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, sidecar)
    return sidecar


def behaviour_names(episode: Episode, n_actions: int | None) -> list[str]:
    """The names of the entries of the episode's behaviour descriptor (obs0_mean, ..., length)."""
    from rlsweep.analysis.behaviour import descriptor_names

    obs = np.asarray(episode.observations, dtype=float)
    obs_dim = int(obs.reshape(obs.shape[0], -1).shape[1]) if obs.ndim else 0
    acts = np.asarray(episode.actions)
    if n_actions is None and np.issubdtype(acts.dtype, np.integer) and acts.ndim <= 1:
        n_actions = int(acts.max()) + 1 if acts.size else 0  # as describe_episode counts them
    if n_actions is not None:
        return descriptor_names(obs_dim, n_actions=int(n_actions))
    return descriptor_names(obs_dim, action_dim=int(acts.reshape(acts.shape[0], -1).shape[1]))


def render_policy(
    model_path: str | os.PathLike[str],
    config: dict[str, Any],
    out_path: str | os.PathLike[str],
    *,
    episodes: int = 1,
    seed: int = 0,
    fmt: Literal["gif", "mp4"] = "gif",
    fps: float = 30,
    size: tuple[int, int] | None = None,
    overlay: bool = True,
    run: int | None = None,
    config_id: str | None = None,
    max_steps: int = 1000,
    make_env: str | Callable[..., Any] | None = DEFAULT_MAKE_ENV,
    load_policy: str | Callable[..., Any] | None = DEFAULT_LOAD_POLICY,
    extra: Mapping[str, Any] | None = None,
) -> list[RenderResult]:
    """Record `episodes` episodes (seeds seed, seed+1, ...) of the policy saved at `model_path`.

    Writes one file per episode (`out_path`, or `<stem>-seed<s>.<fmt>` when there are several) and a
    `<file>.json` sidecar with the run, configuration, seed, return, length, frame count and the
    episode's behaviour descriptor. The env and the policy come from the hooks of the trainer named
    by `config["kind"]`, unless `make_env(config, seed, render_mode=...)` or
    `load_policy(model_path, config)` are given ('module:function' or callables).
    `extra` entries (study name, checkpoint step, ...) are written into every sidecar as well.
    """
    from rlsweep.analysis.behaviour import describe_episode
    from rlsweep.render.gif import write_gif, write_mp4

    if fmt not in ("gif", "mp4"):
        raise ConfigError(f"format must be 'gif' or 'mp4', got {fmt!r}")
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    seeds = [seed + i for i in range(episodes)]
    paths = _out_paths(Path(out_path), fmt, seeds)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    study = (extra or {}).get("study")
    env, policy = _env_and_policy(config, model_path, seed, make_env, load_policy, study)
    extra = dict(extra or {})
    # The file may travel alone: name the study (a reseed child's run 0 is not its parent's run 0).
    who = f"{extra['study']} " if extra.get("study") else ""
    label = [f"{who}run {run}" if run is not None else Path(model_path).stem]
    if config_id is not None:
        label.append(f"config {config_id}")
    if extra.get("step") is not None:
        label.append(f"{'final model' if extra.get('final') else 'checkpoint'} at step {extra['step']}")
    n_actions = getattr(env.action_space, "n", None)
    results = []
    try:
        for path, ep_seed in zip(paths, seeds, strict=True):
            episode = record_episode(
                env,
                policy,
                ep_seed,
                max_steps=max_steps,
                overlay="\n".join(label) if overlay else None,
                frame_size=size,
            )
            writer = write_gif if fmt == "gif" else write_mp4
            writer(episode.frames, path, fps, size=size)
            behaviour = describe_episode(episode.observations, episode.actions, n_actions=n_actions).tolist()
            names = behaviour_names(episode, n_actions)
            sidecar = _write_sidecar(
                path,
                {
                    "run": run,
                    "config_id": config_id,
                    "configuration": config,
                    "model": str(model_path),
                    "seed": ep_seed,
                    "return": episode.episode_return,
                    "length": episode.length,
                    "frames": len(episode.frames),
                    "terminated": episode.terminated,
                    "truncated": episode.truncated,
                    "format": fmt,
                    "fps": fps,
                    "size": list(np.asarray(episode.frames[0]).shape[1::-1]),
                    "behaviour": behaviour,
                    "behaviour_names": names,
                    **extra,
                },
            )
            results.append(
                RenderResult(
                    path=path,
                    sidecar=sidecar,
                    seed=ep_seed,
                    episode_return=episode.episode_return,
                    length=episode.length,
                    frames=len(episode.frames),
                    run=run,
                    config_id=config_id,
                    behaviour=behaviour,
                )
            )
    finally:
        env.close()
    return results
