"""The toy problem of the PBT paper (Jaderberg et al. 2017, Figure 2), as a function-trainer target.

Maximise Q(theta) = 1.2 - (theta0^2 + theta1^2) by gradient ascent on the surrogate
Q_hat(theta | h) = 1.2 - (h0 theta0^2 + h1 theta1^2): the hyperparameters h decide which coordinate
the surrogate pulls towards 0, so only a good schedule of h (or copying theta from members with
other h) reaches the optimum 1.2 quickly. `simulate` runs the paper's comparison in-process.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rlsweep.strategies.population import Param, explore, truncation
from rlsweep.study.attrs import CHECKPOINT_ATTR
from rlsweep.trainers._base import RunContext, atomic_path, commit_file

THETA0 = (0.9, 0.9)
#: The searched space of the toy problem: how strongly the surrogate weights each coordinate.
SPACE = (Param("h0", "float", 0.0, 1.0), Param("h1", "float", 0.0, 1.0))
CHECKPOINT = "theta.npy"


def q(theta: np.ndarray) -> float:
    """The true objective."""
    return float(1.2 - (theta[0] ** 2 + theta[1] ** 2))


def gradient_step(theta: np.ndarray, h: np.ndarray, lr: float) -> np.ndarray:
    """One gradient-ascent step on the surrogate: d Q_hat / d theta_i = -2 h_i theta_i."""
    return theta + lr * (-2.0 * h * theta)


def _state_hash(state: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(state, dtype=np.float64).tobytes()).hexdigest()


def checkpoint_hash(path: str | Path) -> str:
    """Hash of a checkpoint's content (theta0, theta1, steps), independent of the file's header."""
    return _state_hash(np.load(Path(path)))


def save_checkpoint(path: Path, theta: np.ndarray, steps: int) -> Path:
    """Write (theta0, theta1, steps) to `path` atomically."""
    tmp = atomic_path(path)
    # np.save given a file name would append ".npy" to the temporary name; a handle keeps it exact.
    with open(tmp, "wb") as handle:
        np.save(handle, np.array([theta[0], theta[1], float(steps)], dtype=np.float64))
    return commit_file(tmp, path)


def load_checkpoint(path: str | Path) -> tuple[np.ndarray, int]:
    state = np.load(Path(path))
    return state[:2].astype(np.float64), int(state[2])


def _number(run: RunContext, name: str, default: float) -> float:
    return float(run.hyperparams.get(name, run.config.get(name, default)))


def train(run: RunContext) -> None:
    """Train theta for `run.budget` gradient steps (one step = one environment step), reporting Q."""
    h = np.array([_number(run, "h0", 1.0), _number(run, "h1", 1.0)])
    lr = _number(run, "lr", 0.01)
    theta = np.array(THETA0, dtype=np.float64)
    if run.start_checkpoint is not None:
        theta, _ = load_checkpoint(run.start_checkpoint)
        # Recorded so tests (and `lineage`) can check the restored state is exactly the donor's.
        run.record("restored_hash", checkpoint_hash(run.start_checkpoint))
    every = max(int(run.eval_every), 1)
    done = 0
    while done < run.budget:
        theta = gradient_step(theta, h, lr)
        done += 1
        if done % every == 0 or done == run.budget:
            if run.report(run.start_step + done, {"Q": q(theta)}).should_stop:
                break
    path = save_checkpoint(run.artifact_dir / CHECKPOINT, theta, run.start_step + done)
    run.record(CHECKPOINT_ATTR, str(path))


Mode = Literal["pbt", "explore", "exploit", "grid"]


def grid_h(population: int) -> np.ndarray:
    """Fixed h for the grid baseline: centres of a k x k lattice on [0, 1]^2 (k = ceil(sqrt(n))),
    n of them spread evenly over the lattice in row order."""
    k = math.ceil(math.sqrt(population))
    levels = (np.arange(k) + 0.5) / k
    lattice = np.array([(a, b) for a in levels for b in levels])
    index = np.round(np.linspace(0, len(lattice) - 1, population)).astype(int)
    return lattice[index]


def simulate(
    mode: Mode = "pbt",
    population: int = 10,
    intervals: int = 40,
    steps_per_interval: int = 4,
    seed: int = 0,
    *,
    lr: float = 0.01,
    fraction: float = 0.25,
    factors: tuple[float, ...] = (0.8, 1.2),
    resample_probability: float = 0.25,
) -> dict[str, Any]:
    """Run the paper's comparison in-process with the population functions (no storage, no files).

    mode: "pbt" (exploit by truncation, then explore), "explore" (members only perturb their own h),
    "exploit" (copy theta and h from the top, never perturb), "grid" (fixed h on a lattice).
    Every member starts at theta = (0.9, 0.9) with h drawn uniformly from [0, 1]^2 (grid: lattice).
    The defaults (lr 0.01, 4 steps per interval: 160 steps in all, so even h = (1, 1) throughout
    only reaches Q = 1.1975) make the baselines distinguishable; over seeds 0..19 PBT's best Q is
    >= 1.196 in every seed while explore-only averages 1.160, exploit-only 1.189 and the grid 1.194.
    Returns best_q (best final Q), curve (best Q after each interval), steps_to_119 (steps until a
    member first reached Q >= 1.19, or None), exploits and changes (counts), and the final members.
    """
    if mode not in ("pbt", "explore", "exploit", "grid"):
        raise ValueError(f"mode must be 'pbt', 'explore', 'exploit' or 'grid', got {mode!r}")
    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(population)]
    if mode == "grid":
        hs = {
            m: {"h0": float(a), "h1": float(b)} for m, (a, b) in zip(names, grid_h(population), strict=True)
        }
    else:
        hs = {m: {p.name: p.sample(rng) for p in SPACE} for m in names}
    thetas = {m: np.array(THETA0, dtype=np.float64) for m in names}
    curve: list[float] = []
    exploits = changes = 0
    steps_to_119: int | None = None
    for interval in range(intervals):
        for m in names:
            h = np.array([hs[m]["h0"], hs[m]["h1"]])
            for _ in range(steps_per_interval):
                thetas[m] = gradient_step(thetas[m], h, lr)
        scores = {m: q(thetas[m]) for m in names}
        curve.append(max(scores.values()))
        if steps_to_119 is None and curve[-1] >= 1.19:
            steps_to_119 = (interval + 1) * steps_per_interval
        if interval == intervals - 1 or mode == "grid":
            continue  # the last interval is judged but nobody trains after it
        if mode in ("pbt", "exploit"):
            for decision in truncation(scores, rng, fraction=fraction):
                thetas[decision.target] = thetas[decision.donor].copy()
                hs[decision.target] = dict(hs[decision.donor])
                exploits += 1
                if mode == "pbt":
                    hs[decision.target], log = explore(
                        hs[decision.target],
                        SPACE,
                        rng,
                        factors=factors,
                        resample_probability=resample_probability,
                    )
                    changes += len(log)
        else:  # explore only: every member perturbs its own h, nobody copies theta
            for m in names:
                hs[m], log = explore(
                    hs[m], SPACE, rng, factors=factors, resample_probability=resample_probability
                )
                changes += len(log)
    members = [{"member": m, **hs[m], "theta": thetas[m].tolist(), "Q": q(thetas[m])} for m in names]
    return {
        "mode": mode,
        "seed": seed,
        "best_q": max(curve),
        "curve": curve,
        "steps_to_119": steps_to_119,
        "exploits": exploits,
        "changes": changes,
        "members": members,
    }
