"""Stopping: Optuna's pruners, and threshold gates on any reported metric.

A gate schedule such as ">= 100 by 200k steps, >= 400 by 1M" is a list of gates; a success gate
ends a run early when its metric stays past a line for k evaluations in a row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rlsweep.config import Gate, StrategySettings
from rlsweep.trainers._base import Decision


def make_pruner(settings: StrategySettings, eval_every: int, budget: int) -> Any:
    import optuna.pruners as p

    kwargs = dict(settings.pruner_kwargs)
    name = settings.pruner
    if name == "none":
        return p.NopPruner()
    if name == "median":
        return p.MedianPruner(**{"n_startup_trials": 5, "n_warmup_steps": eval_every, **kwargs})
    if name == "percentile":
        return p.PercentilePruner(**{"percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": eval_every, **kwargs})
    if name in ("asha", "successive_halving"):
        return p.SuccessiveHalvingPruner(**{"min_resource": eval_every, **kwargs})
    if name == "hyperband":
        return p.HyperbandPruner(**{"min_resource": eval_every, "max_resource": max(budget, eval_every), **kwargs})
    raise ValueError(name)


class GateSchedule:
    """Judges one run's reports against the sweep's gates; keeps the run's recent history."""

    def __init__(self, gates: Sequence[Gate]) -> None:
        self.gates = list(gates)
        self.streaks = [0] * len(self.gates)

    def check(
        self, step: int, metrics: Mapping[str, float], judged: Mapping[str, tuple[float, int]] | None = None
    ) -> tuple[Decision, str | None]:
        """A success gate reads this run's own metrics; a min/max gate reads `judged[metric]` when
        given: (the configuration's mean at this step, over how many seeds)."""
        for i, gate in enumerate(self.gates):
            if gate.metric not in metrics:
                continue
            value = float(metrics[gate.metric])
            if gate.success is not None:
                ok = not math.isnan(value) and (gate.success.min is None or value >= gate.success.min) and (
                    gate.success.max is None or value <= gate.success.max
                )
                self.streaks[i] = self.streaks[i] + 1 if ok else 0
                if self.streaks[i] >= gate.success.for_:
                    n = self.streaks[i]
                    return Decision.STOP, f"success: {gate.metric} = {value:g} for {n} evaluation{'' if n == 1 else 's'} in a row"
            if step < gate.after:
                continue
            where = f"after {gate.after}"
            if judged is not None and gate.metric in judged:
                value, n = judged[gate.metric]
                where += f"; configuration mean over {n} seed{'' if n == 1 else 's'}"
            if gate.min is not None and not value >= gate.min:
                return Decision.PRUNE, f"gate: {gate.metric} = {value:g} < {gate.min:g} at step {step} ({where})"
            if gate.max is not None and not value <= gate.max:
                return Decision.PRUNE, f"gate: {gate.metric} = {value:g} > {gate.max:g} at step {step} ({where})"
        return Decision.CONTINUE, None
