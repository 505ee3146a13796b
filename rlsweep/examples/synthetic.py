"""A synthetic noisy learning curve: a stand-in RL run that takes milliseconds.

The return rises towards a peak that depends on how close the learning rate and gamma are to a
hidden optimum, with noise from the run's seed, so samplers, pruners and seed statistics have
something real to find.
"""

from __future__ import annotations

import math
import time

import numpy as np

from rlsweep.study.attrs import MODEL_ATTR
from rlsweep.trainers._base import RunContext, atomic_path, commit_file


def peak(hyper: dict) -> float:
    lr = float(hyper.get("learning_rate", 1e-3))
    gamma = float(hyper.get("gamma", 0.99))
    width = float(hyper.get("width", 64))
    score = 500.0
    score -= 60.0 * (math.log10(lr) + 3.0) ** 2  # best at 1e-3
    score -= 4000.0 * (gamma - 0.99) ** 2
    score -= 20.0 * abs(math.log2(width / 64.0))
    return max(score, 10.0)


def train(run: RunContext) -> None:
    """Reports eval/mean_return every eval_every steps; honours stop decisions; saves a final 'model'."""
    rng = np.random.default_rng(run.seed)
    target = peak(run.hyperparams)
    speed = float(run.config.get("speed", 3.0))  # how many e-foldings over the budget
    sleep = float(run.config.get("sleep", 0.0))  # seconds per evaluation, to look like real work
    step = 0
    value = 0.0
    while step < run.budget:
        step = min(step + run.eval_every, run.budget)
        value = target * (1.0 - math.exp(-speed * step / run.budget)) + rng.normal(0.0, 10.0)
        if sleep:
            time.sleep(sleep)
        decision = run.report(run.start_step + step, {"eval/mean_return": value, "train/loss": 1.0 / (1.0 + step)})
        if decision.should_stop:
            break
    path = run.artifact_dir / "model.json"
    tmp = atomic_path(path)
    tmp.write_text(f'{{"step": {step}, "value": {value}}}')
    run.record(MODEL_ATTR, str(commit_file(tmp, path)))


def noop(run: RunContext) -> None:
    """Does nothing but report one value: measures the tool's own overhead per run."""
    run.report(run.budget, {"eval/mean_return": float(run.seed % 7)})


def crash(run: RunContext) -> None:
    """Fails on purpose (for tests of failure handling)."""
    raise RuntimeError("this trainer always crashes")


def sleepy(run: RunContext) -> None:
    """Reports slowly so a test can kill or interrupt its worker mid-run."""
    step = 0
    while step < run.budget:
        step += run.eval_every
        time.sleep(float(run.config.get("sleep", 0.5)))
        if run.report(step, {"eval/mean_return": float(step)}).should_stop:
            break
