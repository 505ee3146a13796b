"""Several synthetic learning curves advanced together in one process: a stand-in for a batched
trainer (the JAX trainer's contract at the cost of milliseconds).

`trainer: {kind: function, target: "rlsweep.examples.batch_synthetic:train_batch", batch: 8}` makes a
worker claim up to 8 runs at once and call `train_batch` with their contexts. Every curve is the one
`rlsweep.examples.synthetic.train` draws for the same configuration and seed (each run keeps its own
random stream), so batching changes how runs are scheduled, never what they measure. A learning rate
of 1 or more diverges (its return becomes NaN), as a real run would.
"""

from __future__ import annotations

import math
import os
import time
import uuid

import numpy as np

from rlsweep.examples.synthetic import peak
from rlsweep.study.attrs import MODEL_ATTR
from rlsweep.trainers._base import RunContext, atomic_path, commit_file


def train_batch(runs: list[RunContext]) -> None:
    """Advances every run one evaluation interval at a time, all runs in one step; a run told to stop
    is masked out and costs nothing more, the others go on. Records `batch` (an id shared by the
    runs trained together, the batch's size and this process) and a final `model` for each run."""
    n = len(runs)
    batch = {"id": uuid.uuid4().hex[:8], "size": n, "pid": os.getpid()}
    rngs = [np.random.default_rng(run.seed) for run in runs]
    targets = np.array([peak(run.hyperparams) for run in runs])
    diverges = np.array([float(run.hyperparams.get("learning_rate", 1e-3)) >= 1.0 for run in runs])
    budgets = np.array([run.budget for run in runs])
    every = np.array([run.eval_every for run in runs])
    speed = np.array([float(run.config.get("speed", 3.0)) for run in runs])
    sleep = max(float(run.config.get("sleep", 0.0)) for run in runs)
    steps = np.zeros(n, dtype=np.int64)
    values = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        steps = np.where(active, np.minimum(steps + every, budgets), steps)
        noise = np.array([rngs[i].normal(0.0, 10.0) if active[i] else 0.0 for i in range(n)])
        curve = targets * (1.0 - np.exp(-speed * steps / budgets)) + noise
        values = np.where(active, np.where(diverges, math.nan, curve), values)
        if sleep:
            time.sleep(sleep)
        for i in map(int, np.flatnonzero(active)):
            step = int(steps[i])
            metrics = {"eval/mean_return": float(values[i]), "train/loss": 1.0 / (1.0 + step)}
            if runs[i].report(runs[i].start_step + step, metrics).should_stop or step >= budgets[i]:
                active[i] = False
    for i, run in enumerate(runs):
        run.record("batch", batch)
        path = run.artifact_dir / "model.json"
        tmp = atomic_path(path)
        tmp.write_text(f'{{"step": {int(steps[i])}, "value": {float(values[i]) if math.isfinite(values[i]) else "null"}}}')
        run.record(MODEL_ATTR, str(commit_file(tmp, path)))


def crash_batch(runs: list[RunContext]) -> None:
    """Reports one evaluation for every run, then raises (tests of a batch that crashes: the runs a
    gate had already stopped keep their result, the others fail, each with its error log)."""
    for run in runs:
        run.report(run.eval_every, {"eval/mean_return": float(run.hyperparams.get("learning_rate", 0.0))})
    raise RuntimeError("this batch trainer crashes after its first evaluation")
