"""A population's family tree: who continued from whom, what changed, and the winner's schedule.

Pure functions over finished trials (Optuna `FrozenTrial`s or anything with the same attributes), so
`rlsweep lineage`, `rlsweep replay` and the tests share one reading of the PBT run attributes
(member, generation, start_step, parent, donor, donor_run, changes) without touching the storage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rlsweep import states

Mode = Literal["max", "min"]
# Copies of a run that were cut short by the machinery, not by training; their requeued copy counts.
_REQUEUED = states.REQUEUED_REASONS


@dataclass(frozen=True)
class GenerationRun:
    """One run of a population: one generation of one member."""

    number: int  # Optuna trial number
    member: int
    generation: int
    start_step: int  # environment steps its lineage had trained before it
    end_step: int  # ... and after it
    score: float  # the objective (last intermediate value if pruned; NaN if failed)
    state: str  # "complete", "pruned" or "fail"
    values: dict[str, Any]  # the searched values it trained with
    parent: int | None = None  # trial number it continued from (its own previous run, or the donor's)
    donor: int | None = None  # member copied on exploit
    donor_run: int | None = None  # trial number copied on exploit
    changes: tuple[str, ...] = ()  # readable change lines, exploit line included

    @property
    def exploited(self) -> bool:
        return self.donor_run is not None

    @property
    def explore_changes(self) -> tuple[str, ...]:
        """The change lines without the `exploit: copy member …` line."""
        return tuple(c for c in self.changes if not c.startswith("exploit:"))


def _state(trial: Any) -> str:
    return str(getattr(trial.state, "name", trial.state)).lower()


def trial_score(trial: Any) -> float:
    """A run's score as population strategies judge it: value, else last report if pruned, else NaN."""
    state = _state(trial)
    if state == "complete" and trial.value is not None:
        return float(trial.value)
    if state == "pruned" and trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return math.nan


def population_runs(
    trials: Iterable[Any],
    decode: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    *,
    interval: int | None = None,
) -> list[GenerationRun]:
    """Every finished population run, sorted by (generation, member).

    Runs lost with their worker or interrupted are left out (their requeued copy ran the
    generation); if a generation somehow finished twice, the later copy is kept, as the strategy does.
    `decode` turns Optuna's stored params into plain values (`StudyHandle.decode`); `interval` is the
    fallback length of a run that reported nothing.
    """
    kept: dict[tuple[int, int], GenerationRun] = {}
    for t in sorted(trials, key=lambda t: t.number):
        attrs = t.user_attrs
        if "member" not in attrs or "generation" not in attrs:
            continue
        state = _state(t)
        if state not in ("complete", "pruned", "fail"):
            continue
        if state == "fail" and attrs.get("failure_reason") in _REQUEUED:
            continue
        start = int(attrs.get("start_step", 0))
        end = max(t.intermediate_values) if t.intermediate_values else start + int(interval or 0)
        run = GenerationRun(
            number=int(t.number),
            member=int(attrs["member"]),
            generation=int(attrs["generation"]),
            start_step=start,
            end_step=int(end),
            score=trial_score(t),
            state=state,
            values=decode(t.params) if decode is not None else dict(t.params),
            parent=_int_or_none(attrs.get("parent")),
            donor=_int_or_none(attrs.get("donor")),
            donor_run=_int_or_none(attrs.get("donor_run")),
            changes=tuple(str(c) for c in attrs.get("changes", ())),
        )
        kept[(run.member, run.generation)] = run
    return sorted(kept.values(), key=lambda r: (r.generation, r.member))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _key(run: GenerationRun, mode: Mode) -> tuple[int, float]:
    """Sort key, best first; NaN last."""
    if math.isnan(run.score):
        return (1, 0.0)
    return (0, -run.score if mode == "max" else run.score)


def winner(runs: Sequence[GenerationRun], mode: Mode = "max") -> GenerationRun:
    """The best-scoring run of the newest generation any member reached (ties: lowest member)."""
    if not runs:
        raise ValueError("no finished population runs")
    newest = max(r.generation for r in runs)
    return min((r for r in runs if r.generation == newest), key=lambda r: (*_key(r, mode), r.member))


def latest(runs: Sequence[GenerationRun], member: int) -> GenerationRun:
    """A member's newest finished run."""
    own = [r for r in runs if r.member == member]
    if not own:
        known = sorted({r.member for r in runs})
        raise ValueError(f"member {member} has no finished run; members: {known}")
    return max(own, key=lambda r: r.generation)


def ancestry(runs: Sequence[GenerationRun], last: GenerationRun) -> list[GenerationRun]:
    """`last` and the runs it continued from, oldest first (it passes through donors at exploits)."""
    by_number = {r.number: r for r in runs}
    chain = [last]
    seen = {last.number}
    while chain[-1].parent is not None and chain[-1].parent in by_number and chain[-1].parent not in seen:
        chain.append(by_number[chain[-1].parent])  # type: ignore[index]
        seen.add(chain[-1].number)
    return chain[::-1]


@dataclass(frozen=True)
class Segment:
    """A stretch of training with one configuration: [start, end) environment steps."""

    start: int
    end: int
    values: dict[str, Any]

    @property
    def steps(self) -> int:
        return self.end - self.start


def schedule(chain: Sequence[GenerationRun]) -> list[Segment]:
    """The hyperparameter schedule an ancestry trained with, one segment per generation."""
    return [Segment(r.start_step, r.end_step, dict(r.values)) for r in chain]


def by_member(runs: Iterable[GenerationRun]) -> dict[int, list[GenerationRun]]:
    """Each member's own runs in generation order (what the member slot trained, exploits included)."""
    out: dict[int, list[GenerationRun]] = {}
    for r in sorted(runs, key=lambda r: (r.member, r.generation)):
        out.setdefault(r.member, []).append(r)
    return out


def best_curve(trials: Iterable[Any], mode: Mode = "max") -> list[tuple[int, float]]:
    """(step, best value any run had reported at or before that step), for every reported step.

    Steps are a run's own environment steps (a PBT run reports from its lineage's start_step on), so
    for a population this is "the best member after this much training of each member", comparable
    with a grid or random search's curve on the same axis.
    """
    by_step: dict[int, float] = {}
    for t in trials:
        for step, value in (t.intermediate_values or {}).items():
            if value is None or math.isnan(float(value)):
                continue
            old = by_step.get(int(step))
            if old is None or (value > old if mode == "max" else value < old):
                by_step[int(step)] = float(value)
    curve: list[tuple[int, float]] = []
    best = math.nan
    for step in sorted(by_step):
        value = by_step[step]
        if math.isnan(best) or (value > best if mode == "max" else value < best):
            best = value
        curve.append((step, best))
    return curve


def steps_to(curve: Sequence[tuple[int, float]], threshold: float, mode: Mode = "max") -> int | None:
    """The first step at which the curve reaches `threshold`; None if it never does."""
    for step, value in curve:
        if (value >= threshold) if mode == "max" else (value <= threshold):
            return step
    return None


# ---------------------------------------------------------------------------------------- plot
def plot(
    runs: Sequence[GenerationRun],
    path: str | Path,
    *,
    highlight: Sequence[GenerationRun] = (),
    objective: str = "score",
    title: str | None = None,
) -> Path:
    """Every member's hyperparameters and score over environment steps, one subplot each.

    A member's line is drawn step-wise (one value per run); a triangle marks a run that started by
    copying a donor (an exploit); the winner's ancestry (`highlight`) is drawn thick and black.
    Written with matplotlib's Agg backend, so it works without a display.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({k for r in runs for k in r.values})
    members = by_member(runs)
    fig, axes = plt.subplots(
        len(names) + 1, 1, figsize=(9, 2.2 * (len(names) + 1)), sharex=True, squeeze=False
    )
    cmap = plt.get_cmap("tab20")
    for row, name in enumerate([*names, None]):
        ax = axes[row][0]
        encode, labels = _axis_values(runs, name)
        for i, (member, own) in enumerate(sorted(members.items())):
            color = cmap(i % 20)
            xs, ys = _steps(own, name, encode)
            ax.plot(xs, ys, color=color, lw=1.0, alpha=0.8, label=f"member {member}")
            hits = [r for r in own if r.exploited]
            ax.plot(
                [r.end_step if name is None else r.start_step for r in hits],
                [_y(r, name, encode) for r in hits],
                ls="none",
                marker="^",
                ms=5,
                color=color,
            )
        if highlight:
            xs, ys = _steps(highlight, name, encode)
            ax.plot(xs, ys, color="black", lw=2.2, label="winner's ancestry")
        ax.set_ylabel(name if name is not None else objective)
        if labels:
            ax.set_yticks(range(len(labels)), labels)
        ax.grid(alpha=0.3)
    axes[-1][0].set_xlabel("environment steps (▲ exploit)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(handles) <= 21:  # beyond 20 members a legend hides more than it tells
        fig.subplots_adjust(right=0.8)
        fig.legend(handles, labels, loc="center right", fontsize=7)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _axis_values(
    runs: Sequence[GenerationRun], name: str | None
) -> tuple[dict[str, float] | None, list[str]]:
    """For a non-numeric parameter: value -> index, and the tick labels."""
    if name is None:
        return None, []
    values = [r.values.get(name) for r in runs]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None, []
    labels = sorted({str(v) for v in values})
    return {label: float(i) for i, label in enumerate(labels)}, labels


def _y(run: GenerationRun, name: str | None, encode: dict[str, float] | None) -> float:
    if name is None:
        return run.score
    value = run.values.get(name)
    if encode is not None:
        return encode[str(value)]
    return float(value)  # type: ignore[arg-type]


def _steps(
    runs: Sequence[GenerationRun], name: str | None, encode: dict[str, float] | None
) -> tuple[list[float], list[float]]:
    """Step-wise line: a value holds over its run; a score is a point at the run's end."""
    xs: list[float] = []
    ys: list[float] = []
    for r in runs:
        y = _y(r, name, encode)
        if name is None:
            xs.append(r.end_step)
            ys.append(y)
        else:
            xs.extend([r.start_step, r.end_step])
            ys.extend([y, y])
    return xs, ys
