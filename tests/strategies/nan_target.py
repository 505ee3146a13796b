"""A training function whose objective becomes NaN (a diverged run)."""

from __future__ import annotations

from rlsweep.trainers._base import RunContext


def train(run: RunContext) -> None:
    run.report(250, {"eval/mean_return": 10.0})
    run.report(500, {"eval/mean_return": float("nan")})
