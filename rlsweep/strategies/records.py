"""A population's state as plain records, read from the storage once per decision.

PBT decides over these values only (no trial objects, no local files), so two workers on two
hosts that read the same storage decide the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlsweep import states
from rlsweep.study.attrs import CHECKPOINT_ATTR, MODEL_ATTR

# PBT continues from the first of these a run recorded (a recorded path is a complete file).
CHECKPOINT_ATTRS = (CHECKPOINT_ATTR, MODEL_ATTR)
# Failures that say nothing about the configuration: the run is queued again, not judged.
NOT_JUDGED = states.REQUEUED_REASONS


@dataclass(frozen=True)
class MemberRun:
    """One finished generation of one member."""

    member: int
    generation: int
    number: int  # the run's trial number
    score: float  # nan: failed or diverged (ranks worst)
    params: dict[str, Any] = field(default_factory=dict)  # decoded values
    checkpoint: str | None = None
    checkpoint_complete: bool = False
    start_step: int = 0  # environment steps the run started from
    parent: int | None = None  # trial number of the run it continued


Population = dict[int, dict[int, MemberRun]]  # member -> generation -> run


def recorded_checkpoint(attrs: Mapping[str, Any]) -> str | None:
    """The checkpoint path a run recorded, if any (recorded only after the atomic rename)."""
    for key in CHECKPOINT_ATTRS:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def score_of(state: str, value: float | None, intermediate: Mapping[int, float]) -> float:
    """A finished run's score: its value; a pruned run's last report; nan for a failure."""
    if state == "COMPLETE" and value is not None:
        return float(value)
    if state == "PRUNED" and intermediate:
        return float(intermediate[max(intermediate)])
    return math.nan


def reduce_curve(values: Sequence[float], how: str, k: int, mode: str) -> float:
    """A curve to one number as the worker does it for a finished run (`objective.reduce`): how a
    pruned seed is valued by the ranking and the seed race alike."""
    if not values:
        return math.nan
    if how == "best":
        return max(values) if mode == "max" else min(values)
    if how == "mean_last":
        tail = values[-k:]
        return sum(tail) / len(tail)
    return float(values[-1])


def member_run(trial: Any, decode: Callable[[Mapping[str, Any]], dict[str, Any]]) -> MemberRun | None:
    """The record of one ended Optuna trial, or None when it is no population run or is not judged."""
    attrs = trial.user_attrs
    if "member" not in attrs or attrs.get("failure_reason") in NOT_JUDGED:
        return None
    checkpoint = recorded_checkpoint(attrs)
    parent = attrs.get("parent")
    return MemberRun(
        member=int(attrs["member"]),
        generation=int(attrs["generation"]),
        number=int(trial.number),
        score=score_of(trial.state.name, trial.value, trial.intermediate_values),
        params=decode(trial.params),
        checkpoint=checkpoint,
        checkpoint_complete=checkpoint is not None,
        start_step=int(attrs.get("start_step", 0)),
        parent=int(parent) if parent is not None else None,
    )


def build_population(runs: Iterable[MemberRun]) -> Population:
    """member -> generation -> run; of two copies of one run the later one (in order given) wins."""
    population: Population = {}
    for run in runs:
        population.setdefault(run.member, {})[run.generation] = run
    return population


def read_population(handle: Any) -> Population:
    """Every ended population run of the study, read from the storage in one query."""
    from optuna.trial import TrialState

    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    trials = handle.study.get_trials(deepcopy=False, states=ended)
    return build_population(r for r in (member_run(t, handle.decode) for t in trials) if r is not None)
