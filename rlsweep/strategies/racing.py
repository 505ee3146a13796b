"""Seed racing: which configurations get one more seed. `race` is a pure function over plain values
(each configuration's seed scores, how many of its seeds are still to run, whether it was pruned), so
every worker, the ranking and `bench/racing.py` reach the same decision from the same storage.

A configuration gets another seed while the 95% bootstrap interval of its mean overlaps the leader's
(the leader too, while anything overlaps it), until they separate or it has `max` seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The interval the ranking shows (analysis/ranking.py: summarize(seed=0)): the race decides on the
# very numbers the table prints.
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class RaceEntry:
    """One configuration as the race reads it."""

    config_id: str
    scores: tuple[float, ...]  # its seeds' values (finished, or pruned at their reduced reports)
    started: int  # seed numbers it has used (ended, running or queued; a failed seed counts)
    pending: int = 0  # of them, not ended yet
    pruned: bool = False  # pruned as a whole: out of the race


@dataclass(frozen=True)
class RaceCall:
    """The race's word on one configuration: add a seed now or not, and why (shown in the report)."""

    add: bool
    reason: str


Interval = tuple[float, float]


def interval(scores: Sequence[float]) -> Interval | None:
    """The 95% percentile-bootstrap interval of the mean; None below 2 scores (no interval)."""
    from rlsweep.analysis.stats import bootstrap_ci

    values = [s for s in scores if not math.isnan(s)]
    if len(values) < 2:
        return None
    return bootstrap_ci(values, "mean", confidence=CONFIDENCE, n_resamples=RESAMPLES, seed=SEED)


def overlaps(a: Interval | None, b: Interval | None) -> bool:
    """Two intervals overlap; a missing one (one seed) overlaps everything: it is not separated."""
    if a is None or b is None:
        return True
    return a[0] <= b[1] and b[0] <= a[1]


def _mean(scores: Sequence[float]) -> float:
    values = [s for s in scores if not math.isnan(s)]
    return sum(values) / len(values) if values else math.nan


def _text(iv: Interval | None) -> str:
    return "no interval (1 seed)" if iv is None else f"[{iv[0]:.4g}, {iv[1]:.4g}]"


def leader_of(entries: Sequence[RaceEntry], mode: str) -> RaceEntry | None:
    """The best mean among configurations with a value and not pruned (ties: more seeds, then id)."""
    sign = -1.0 if mode == "max" else 1.0
    alive = [e for e in entries if not e.pruned and not math.isnan(_mean(e.scores))]
    if not alive:
        return None
    return min(alive, key=lambda e: (sign * _mean(e.scores), -len(e.scores), e.config_id))


def race(entries: Sequence[RaceEntry], *, max_seeds: int, mode: str = "max") -> dict[str, RaceCall]:
    """Each configuration's call. Only a configuration whose seeds have all ended is given a seed (so
    each gets one at a time); one still running is told to wait. The leader may itself be running."""
    leader = leader_of(entries, mode)
    lead_iv = interval(leader.scores) if leader is not None else None
    ivs: Mapping[str, Interval | None] = {e.config_id: interval(e.scores) for e in entries}
    calls: dict[str, RaceCall] = {}
    for e in entries:
        if e.pruned:
            calls[e.config_id] = RaceCall(False, "pruned as a whole")
        elif not [s for s in e.scores if not math.isnan(s)]:
            calls[e.config_id] = RaceCall(
                False, "no seed with a value" if not e.pending else "seeds still running"
            )
        elif leader is None:  # unreachable with a value present; kept for the type checker
            calls[e.config_id] = RaceCall(False, "no leader yet")
        elif e.config_id == leader.config_id:
            rivals = [
                r for r in entries
                if r.config_id != e.config_id and not r.pruned and r.scores and overlaps(ivs[r.config_id], lead_iv)
            ]  # fmt: skip
            if not rivals:
                calls[e.config_id] = RaceCall(
                    False, f"leader, separated from every other configuration at {e.started} seeds"
                )
            elif e.started >= max_seeds:
                calls[e.config_id] = RaceCall(
                    False, f"leader, reached max ({max_seeds} seeds); {len(rivals)} still overlap"
                )
            elif e.pending:
                calls[e.config_id] = RaceCall(False, "leader, seeds still running")
            else:
                calls[e.config_id] = RaceCall(
                    True, f"leader, {_text(lead_iv)} still overlapped by {len(rivals)}"
                )
        else:
            iv = ivs[e.config_id]
            versus = f"{_text(iv)} vs the leader's {_text(lead_iv)}"
            if not overlaps(iv, lead_iv):
                calls[e.config_id] = RaceCall(
                    False, f"separated from the leader at {e.started} seeds: {versus}"
                )
            elif e.started >= max_seeds:
                calls[e.config_id] = RaceCall(
                    False, f"reached max ({max_seeds} seeds), still overlaps the leader: {versus}"
                )
            elif e.pending:
                calls[e.config_id] = RaceCall(False, "seeds still running")
            else:
                calls[e.config_id] = RaceCall(True, f"overlaps the leader: {versus}")
    return calls
