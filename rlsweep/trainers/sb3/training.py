"""The SB3 training loop behind SB3Trainer.train: one run = one SB3 model trained for `run.budget`
steps, evaluated every `run.eval_every` steps (on-policy: at the first rollout boundary at or after)
on its own seeded environments, saved atomically (final, best, periodic checkpoints, with the replay
buffer when asked). Importing this module imports torch, SB3 and Gymnasium.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rlsweep.errors import TrainerError
from rlsweep.study.attrs import CHECKPOINTS_ATTR, MODEL_ATTR
from rlsweep.trainers._base import Decision, RunContext, atomic_path, commit_file
from rlsweep.trainers.sb3.algos import OFF_POLICY, algorithm_class, algorithm_kwargs, load_for_continuing
from rlsweep.trainers.sb3.buffer import replay_buffer_path, save_replay_buffer
from rlsweep.trainers.sb3.env import (
    EVAL_SEED_OFFSET,
    EpisodeRunner,
    load_vecnormalize,
    make_vec_env,
    normalize_settings,
    vecnormalize_path,
)
from rlsweep.trainers.sb3.recording import Recordings

__all__ = ["train"]

_TRAIN_METRIC_SKIP = ("train/n_updates",)  # a counter, not a metric worth a curve


def train(run: RunContext) -> None:
    """Train one run (SB3Trainer.train); the settings are in run.config."""
    import torch

    config = run.config
    torch.set_num_threads(int(config.get("threads", 1)))
    algo_cls = algorithm_class(str(config["algo"]))
    hyper = {**(config.get("kwargs") or {}), **run.hyperparams}
    device = _device(str(config.get("device", "auto")))
    with contextlib.ExitStack() as cleanup:  # envs and the event file are closed however the run ends
        venv = make_vec_env(config, int(config.get("n_envs", 1)))
        cleanup.callback(lambda: venv.close())  # venv is rebound below when VecNormalize wraps it
        evaluator = EpisodeRunner(config, run.eval_episodes, run.seed + EVAL_SEED_OFFSET)
        cleanup.callback(evaluator.close)
        writer = _tensorboard(run.artifact_dir / "tb")
        if writer is not None:
            cleanup.callback(writer.close)
        model, venv = _build_model(run, algo_cls, venv, hyper, device)
        from stable_baselines3 import __version__ as sb3_version

        run.record(
            "trainer_info",
            {
                "algo": algo_cls.__name__,
                "sb3": sb3_version,
                "torch": torch.__version__,
                "device": str(model.device),
            },
        )
        session = _Session(run, model, evaluator, writer, deterministic=_deterministic(run))
        session.recordings = Recordings(run, model, global_step=session.global_step)
        cleanup.callback(session.recordings.close)
        callback = _RunCallback(session)
        try:
            model.learn(
                total_timesteps=run.budget,
                callback=callback,
                log_interval=None,  # type: ignore[arg-type]  # no SB3 log dumps: rlsweep reports instead
                reset_num_timesteps=run.start_checkpoint is None,
            )
        except _Stop:
            pass
        except (ValueError, RuntimeError) as exc:
            # NaN weights make torch's distributions raise before any loss is reported
            step = session.global_step()
            if _non_finite_weights(model):
                raise TrainerError(f"diverged: network weights not finite at step {step}") from exc
            if "nan" in str(exc).lower() or "invalid values" in str(exc):
                raise TrainerError(
                    f"diverged: non-finite values in training at step {step} ({_first_line(exc)[:120]})"
                ) from exc
            raise
        if (
            session.decision is Decision.CONTINUE
            and session.last_report_step != session.global_step()
            and session.policy_changed()
        ):
            session.evaluate_and_report()
        session.save_final()


def _build_model(
    run: RunContext, algo_cls: Any, venv: Any, hyper: dict[str, Any], device: str
) -> tuple[Any, Any]:
    """A new model, or the one in run.start_checkpoint with the run's hyperparameters applied."""
    from stable_baselines3.common.vec_env import VecNormalize

    config = run.config
    norm = normalize_settings(config, gamma=float(hyper.get("gamma", 0.99)))
    kwargs = algorithm_kwargs(hyper, venv.action_space)
    if run.start_checkpoint is not None:
        stats = vecnormalize_path(run.start_checkpoint)
        if stats.exists():
            venv = load_vecnormalize(stats, venv, training=True)
            venv.gamma = float(hyper.get("gamma", venv.gamma))
        elif norm is not None:
            raise TrainerError(
                f"cannot continue from {run.start_checkpoint}: its VecNormalize statistics {stats} are missing"
            )
        buffer = replay_buffer_path(run.start_checkpoint) if run.replay_buffer else None
        if buffer is not None and not buffer.exists() and algo_cls.__name__ in OFF_POLICY:
            raise TrainerError(
                f"cannot continue from {run.start_checkpoint} with checkpoint.replay_buffer: its replay buffer "
                f"{buffer} is missing (saved without replay_buffer: true?)"
            )
        model = load_for_continuing(
            algo_cls, str(run.start_checkpoint), venv, device, kwargs, run.seed, replay_buffer=buffer
        )
    else:
        if norm is not None:
            venv = VecNormalize(venv, **norm)
        policy = config.get("policy", "MlpPolicy")
        model = algo_cls(policy, venv, seed=run.seed, device=device, verbose=0, **kwargs)
    from stable_baselines3.common.logger import Logger

    # A logger with no outputs: train() still records its losses, which the callback reads.
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model, venv


class _Stop(Exception):
    """Raised by the callback for algorithms that ignore a False from on_step (ARS)."""


class _Session:
    """The state of one training run: evaluation, reports, files."""

    def __init__(
        self, run: RunContext, model: Any, evaluator: EpisodeRunner, writer: Any, *, deterministic: bool
    ) -> None:
        self.run = run
        self.model = model
        self.evaluator = evaluator
        self.writer = writer
        self.deterministic = deterministic
        self.vecnorm = model.get_vec_normalize_env()
        self.keeps_buffer = run.replay_buffer and getattr(model, "replay_buffer", None) is not None
        # An on-policy algorithm (and ARS) changes its policy only in the update after a rollout, so it
        # is evaluated at rollout boundaries; an off-policy one updates every few steps.
        from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

        self.off_policy = isinstance(model, OffPolicyAlgorithm)
        self.evaluated_updates: int | None = None  # SB3's update counter at the last evaluation
        self.start_timesteps = model.num_timesteps
        self.start_time = time.perf_counter()
        self.decision = Decision.CONTINUE
        self.last_report_step: int | None = None
        self.best = -np.inf
        self.checkpoints: list[str] = []
        self.best_recorded = False
        self.recordings: Recordings  # set by train() once the model exists

    def global_step(self) -> int:
        return self.run.start_step + int(self.model.num_timesteps - self.start_timesteps)

    def _act(self, obs: np.ndarray, state: Any, starts: np.ndarray) -> tuple[np.ndarray, Any]:
        if self.vecnorm is not None:
            obs = self.vecnorm.normalize_obs(obs)
        return self.model.predict(obs, state=state, episode_start=starts, deterministic=self.deterministic)  # type: ignore[no-any-return]

    def policy_changed(self) -> bool:
        """False when the policy has had no update since it was last evaluated (SB3 counts updates in
        `_n_updates`; before learning_starts an off-policy model has none)."""
        updates = getattr(self.model, "_n_updates", None)
        return self.evaluated_updates is None or updates is None or updates != self.evaluated_updates

    def evaluate_and_report(self) -> Decision:
        step = self.global_step()
        self.evaluated_updates = getattr(self.model, "_n_updates", None)
        returns, lengths = self.evaluator.run(self._act, self.recordings.eval_hook(step, len(self.evaluator.envs)))
        metrics: dict[str, float] = {
            "eval/mean_return": float(np.mean(returns)),
            "eval/std_return": float(np.std(returns)),
            "eval/mean_length": float(np.mean(lengths)),
        }
        episodes = self.model.ep_info_buffer
        if episodes:
            metrics["train/episode_return"] = float(np.mean([e["r"] for e in episodes]))
            metrics["train/episode_length"] = float(np.mean([e["l"] for e in episodes]))
        elapsed = time.perf_counter() - self.start_time
        metrics["train/fps"] = (self.model.num_timesteps - self.start_timesteps) / max(elapsed, 1e-9)
        metrics.update(self.losses())
        bad = [k for k, v in metrics.items() if not np.isfinite(v)]
        if bad:
            raise TrainerError(f"diverged: {', '.join(bad)} not finite at step {step}")
        if metrics["eval/mean_return"] > self.best:
            self.best = metrics["eval/mean_return"]
            path = self.save(self.run.artifact_dir / "best_model.zip")
            if not self.best_recorded:
                self.run.record("best_model", str(path))
                self.best_recorded = True
            self.run.record("best_model_step", step)
        if self.writer is not None:
            self.writer.add_scalars(step, metrics)
        self.last_report_step = step
        self.decision = self.run.report(step, metrics)
        return self.decision

    def losses(self) -> dict[str, float]:
        """The algorithm's latest `train/*` values (losses, entropy, learning rate, ...)."""
        out = {}
        for key, value in self.model.logger.name_to_value.items():
            if (
                key.startswith("train/")
                and key not in _TRAIN_METRIC_SKIP
                and isinstance(value, (int, float, np.floating, np.integer))
            ):
                out[key] = float(value)
        return out

    def check_losses(self) -> None:
        bad = [k for k, v in self.losses().items() if not np.isfinite(v)]
        if bad:
            raise TrainerError(f"diverged: {', '.join(bad)} not finite at step {self.global_step()}")

    def save(self, path: Path, *, with_buffer: bool = False) -> Path:
        """Model (and VecNormalize statistics, and with `with_buffer` the replay buffer, beside it)
        under `path`, each file renamed into place only when complete, the model last: once the model
        is there, so is everything a run continuing it loads. SB3 appends '.zip' to a name without it,
        so the temporary name ends in .zip."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if with_buffer and self.keeps_buffer:
            save_replay_buffer(self.model.replay_buffer, replay_buffer_path(path))
        if self.vecnorm is not None:
            stats = vecnormalize_path(path)
            tmp_stats = atomic_path(stats)
            self.vecnorm.save(str(tmp_stats))
            commit_file(tmp_stats, stats)
        tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.zip")
        self.model.save(tmp)
        return commit_file(tmp, path)

    def checkpoint(self) -> None:
        path = self.save(self.run.checkpoint_dir / f"step_{self.global_step()}.zip", with_buffer=True)
        self.checkpoints.append(str(path))
        self.run.record(CHECKPOINTS_ATTR, list(self.checkpoints))

    def save_final(self) -> None:
        path = self.save(self.run.artifact_dir / "model.zip", with_buffer=True)
        self.run.record(MODEL_ATTR, str(path))
        if self.vecnorm is not None:
            self.run.record("vecnormalize", str(vecnormalize_path(path)))
        if self.keeps_buffer:
            self.run.record("replay_buffer", str(replay_buffer_path(path)))


class _RunCallback(BaseCallback):
    """Evaluates, checkpoints and watches for divergence on SB3's step clock."""

    def __init__(self, session: _Session) -> None:
        super().__init__(verbose=0)
        self.session = session
        run = session.run
        self.eval_every = max(int(run.eval_every), 1)
        self.next_eval = self.eval_every
        every = run.checkpoint_every
        self.ckpt_every = int(every) if every else None
        # checkpoints fall on multiples of `every` of the lineage's step, so PBT generations line up
        self.next_ckpt = (run.start_step // every + 1) * every if every else None

    def _on_rollout_start(self) -> None:
        self.session.check_losses()  # train() just ran: a NaN loss stops the run before it acts on it
        # on-policy: the update after the last rollout just ran, so this is the first step at which
        # the new policy exists; the recorded step is the steps it was trained on
        if not self.session.off_policy and self._due() and self._evaluate().should_stop:
            raise _Stop  # on_rollout_start cannot return False

    def _on_step(self) -> bool:
        if self.session.decision.should_stop:
            raise _Stop  # only reached by algorithms that ignored our False (ARS)
        _check_finite(self.locals.get("rewards"), "reward", self.session)
        _check_finite(self.locals.get("new_obs"), "observation", self.session)
        step = self.session.global_step()
        self.session.recordings.on_step(self.session.model, self.locals, step, self.session._act)
        while self.next_ckpt is not None and self.ckpt_every and step >= self.next_ckpt:
            self.session.checkpoint()
            self.next_ckpt += self.ckpt_every
        if self.session.off_policy and self._due():
            return not self._evaluate().should_stop
        return True

    def _due(self) -> bool:
        """eval.every steps have passed since the last due point (moves the next one on)."""
        done = self.session.model.num_timesteps - self.session.start_timesteps
        if done < self.next_eval:
            return False
        while self.next_eval <= done:
            self.next_eval += self.eval_every
        return True

    def _evaluate(self) -> Decision:
        """Evaluate now, unless the policy is the one evaluated last (no update since)."""
        if not self.session.policy_changed():
            return self.session.decision
        return self.session.evaluate_and_report()


def _check_finite(values: Any, what: str, session: _Session) -> None:
    if isinstance(values, np.ndarray) and values.dtype.kind == "f" and not np.isfinite(values).all():
        raise TrainerError(f"diverged: {what} not finite at step {session.global_step()}")


def _non_finite_weights(model: Any) -> bool:
    return any(not bool(p.isfinite().all()) for p in model.policy.parameters())


def _device(value: str) -> str:
    import torch

    if value.startswith("cuda") and not torch.cuda.is_available():
        raise TrainerError(
            f"device '{value}' was asked for but torch sees no GPU here; use device: auto or cpu"
        )
    return value  # 'auto' lets SB3 choose; under CUDA_VISIBLE_DEVICES 'cuda' is this worker's GPU


def _deterministic(run: RunContext) -> bool:
    value = getattr(run, "eval_deterministic", None)
    if value is None:
        value = run.extra.get("eval_deterministic", True)
    return bool(value)


def _tensorboard(logdir: Path) -> Any:
    try:
        from rlsweep.tensorboard import EventWriter

        return EventWriter(logdir)
    except ImportError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
