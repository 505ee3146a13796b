"""Seed racing against fixed seeds, at the same number of runs: how often each picks the truly best
configuration.

    python bench/racing.py [--reps 50] [--configs 20] [--noise 10] [--fixed 5] [--min 2] [--max 10 20]

20 configurations of the synthetic trainer (rlsweep/examples/synthetic.py) whose learning rates lie
0.3 decades apart around its optimum: their true values (its `peak` at the end of training) are
known, the best two 3.4 apart, a third of the seed noise; most of the others are far worse. A run's
value is its true value plus seed noise. The synthetic trainer draws a run's noise from its seed alone (every configuration on seed 3
gets the same noise), which would hand fixed seeds the answer; here each (configuration, seed) gets
its own draw, as a real environment would. Fixed seeds trains every configuration on `--fixed` seeds
and picks the best mean. Racing starts each on `--min` seeds and adds seeds in rounds through
`rlsweep.strategies.racing.race`, the function a racing sweep's workers call, until no configuration
is added to or the fixed arm's number of runs is spent, then picks the best mean (as `rlsweep top`).
One racing arm per `--max`: with max 10 the race usually ends well inside the budget (the close
configurations reach 10 seeds), with max 20 it spends more of it where the race is close.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from rlsweep.examples.synthetic import peak
from rlsweep.strategies.racing import RaceEntry, leader_of, race

SPEED = 3.0  # the synthetic trainer's default: its curve ends at peak * (1 - exp(-3))


def true_values(n: int, spacing: float) -> np.ndarray:
    """`n` configurations of the synthetic trainer, learning rates `spacing` decades apart around its
    optimum (1e-3, not hit exactly, so no two are tied), valued as it values them at the end."""
    exponents = -3.0 + spacing * (np.arange(n) - (n // 4)) - 0.05
    return np.array(
        [peak({"learning_rate": 10.0**e, "gamma": 0.99}) * (1.0 - math.exp(-SPEED)) for e in exponents]
    )


def fixed_pick(truth: np.ndarray, seeds: int, noise: float, rng: np.random.Generator) -> tuple[int, int]:
    draws = truth[:, None] + rng.normal(0.0, noise, (truth.size, seeds))
    return int(np.argmax(draws.mean(axis=1))), truth.size * seeds


def racing_pick(
    truth: np.ndarray, low: int, high: int, budget: int, noise: float, rng: np.random.Generator
) -> tuple[int, int]:
    scores: list[list[float]] = [list(truth[c] + rng.normal(0.0, noise, low)) for c in range(truth.size)]
    runs = truth.size * low
    while runs < budget:
        entries = [RaceEntry(str(c), tuple(s), len(s)) for c, s in enumerate(scores)]
        calls = race(entries, max_seeds=high, mode="max")
        adds = [c for c in range(truth.size) if calls[str(c)].add]
        if not adds:
            break
        # More adds than runs left: the leader first, then the closest to it.
        adds.sort(key=lambda c: -float(np.mean(scores[c])))
        for c in adds[: budget - runs]:
            scores[c].append(float(truth[c] + rng.normal(0.0, noise)))
            runs += 1
    best = leader_of([RaceEntry(str(c), tuple(s), len(s)) for c, s in enumerate(scores)], "max")
    assert best is not None
    return int(best.config_id), runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--noise", type=float, default=10.0, help="seed noise (std), as the synthetic trainer's")
    ap.add_argument("--fixed", type=int, default=5, help="seeds per configuration for the fixed arm")
    ap.add_argument("--min", type=int, default=2)
    ap.add_argument("--max", type=int, nargs="+", default=[10, 20], help="one racing arm per value")
    ap.add_argument("--spacing", type=float, default=0.3, help="decades between learning rates")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    arms = ["fixed", *(f"racing {m}" for m in args.max)]
    right = dict.fromkeys(arms, 0)
    runs = dict.fromkeys(arms, 0)
    regret = dict.fromkeys(arms, 0.0)
    truth = true_values(args.configs, args.spacing)
    best = int(np.argmax(truth))
    top = np.sort(truth)[::-1][:3]
    for _ in range(args.reps):
        pick, used = fixed_pick(truth, args.fixed, args.noise, rng)
        right["fixed"] += pick == best
        runs["fixed"] += used
        regret["fixed"] += float(truth[best] - truth[pick])
        for high in args.max:
            pick, used = racing_pick(truth, args.min, high, args.configs * args.fixed, args.noise, rng)
            right[f"racing {high}"] += pick == best
            runs[f"racing {high}"] += used
            regret[f"racing {high}"] += float(truth[best] - truth[pick])
    n = args.reps
    print(
        f"{args.configs} configurations (best true values {', '.join(f'{v:.1f}' for v in top)}), "
        f"seed noise std {args.noise:g}, {n} repetitions"
    )
    labels = {
        "fixed": f"fixed seeds: {args.fixed}",
        **{f"racing {m}": f"racing (min {args.min}, max {m})" for m in args.max},
    }
    width = max(len(label) for label in labels.values())
    for arm in arms:
        print(
            f"{labels[arm]:<{width}}  picked the truly best {right[arm]}/{n} ({100 * right[arm] / n:.0f}%), "
            f"mean runs {runs[arm] / n:.1f} (at most {args.configs * args.fixed}), mean regret {regret[arm] / n:.2f}"
        )
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
