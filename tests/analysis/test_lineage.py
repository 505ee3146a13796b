"""Lineage of a population on hand-made trials: which runs count, the winner, its ancestry and schedule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from rlsweep.analysis import lineage
from rlsweep.analysis.lineage import GenerationRun, Segment


def trial(
    number: int,
    member: int,
    generation: int,
    value: float | None,
    h0: float,
    *,
    parent: int | None = None,
    donor: int | None = None,
    changes: tuple[str, ...] = (),
    state: TrialState = TrialState.COMPLETE,
    reason: str | None = None,
    start: int | None = None,
    act: str | None = None,
) -> FrozenTrial:
    start = 4 * generation if start is None else start
    attrs: dict[str, Any] = {
        "member": member,
        "generation": generation,
        "start_step": start,
        "key": f"pbt:m{member}:g{generation}",
    }
    if parent is not None:
        attrs["parent"] = parent
    if donor is not None:
        attrs.update(donor=donor, donor_run=parent)
    if changes:
        attrs["changes"] = list(changes)
    if reason:
        attrs["failure_reason"] = reason
    params: dict[str, Any] = {"h0": h0}
    dists: dict[str, Any] = {"h0": FloatDistribution(0.0, 1.0)}
    if act is not None:
        params["act"], dists["act"] = act, CategoricalDistribution(["tanh", "relu"])
    return FrozenTrial(
        number=number,
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        datetime_start=None,
        datetime_complete=None,
        params=params,
        distributions=dists,
        user_attrs=attrs,
        system_attrs={},
        intermediate_values={} if value is None else {start + 4: value},
        trial_id=number,
    )


def population(act: bool = False) -> list[FrozenTrial]:
    """3 members x 3 generations. m0 copies m2 at g1, m2 copies m0 at g2 and wins; m1's g2 run was
    lost with its worker and ran again as run 9; run 10 is m1's g2 interrupted copy."""
    a = "tanh" if act else None
    b = "relu" if act else None
    return [
        trial(0, 0, 0, 0.1, 0.2, act=a),
        trial(1, 1, 0, 0.5, 0.6, act=a),
        trial(2, 2, 0, 0.3, 0.4, act=b),
        trial(
            3,
            0,
            1,
            0.9,
            0.48,
            parent=2,
            donor=2,
            changes=("exploit: copy member 2 (run 2)", "h0: 0.4 * 1.2 -> 0.48"),
            act=b,
        ),
        trial(4, 1, 1, 0.7, 0.6, parent=1, act=a),
        trial(5, 2, 1, 0.35, 0.4, parent=2, act=b),
        trial(6, 0, 2, 1.0, 0.48, parent=3, act=b),
        trial(7, 1, 2, None, 0.6, parent=4, state=TrialState.FAIL, reason="worker lost", act=a),
        trial(
            8,
            2,
            2,
            1.1,
            0.384,
            parent=3,
            donor=0,
            changes=("exploit: copy member 0 (run 3)", "h0: 0.48 * 0.8 -> 0.384"),
            act=b,
        ),
        trial(9, 1, 2, 0.8, 0.6, parent=4, act=a),
        trial(10, 1, 2, None, 0.6, parent=4, state=TrialState.FAIL, reason="interrupted", act=a),
    ]


def test_population_runs_skip_lost_and_interrupted_copies() -> None:
    runs = lineage.population_runs(population())
    assert [(r.generation, r.member, r.number) for r in runs] == [
        (0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 0, 3), (1, 1, 4), (1, 2, 5), (2, 0, 6), (2, 1, 9), (2, 2, 8),
    ]  # fmt: skip
    r = {x.number: x for x in runs}
    assert r[3] == GenerationRun(
        number=3, member=0, generation=1, start_step=4, end_step=8, score=0.9, state="complete", values={"h0": 0.48},
        parent=2, donor=2, donor_run=2, changes=("exploit: copy member 2 (run 2)", "h0: 0.4 * 1.2 -> 0.48"),
    )  # fmt: skip
    assert r[3].exploited and r[3].explore_changes == ("h0: 0.4 * 1.2 -> 0.48",)
    assert not r[4].exploited and r[4].explore_changes == ()


def test_a_trainer_failure_counts_with_a_nan_score_and_pruned_runs_with_their_last_report() -> None:
    trials = [
        trial(0, 0, 0, None, 0.2, state=TrialState.FAIL, reason="diverged: Q not finite at step 3"),
        trial(1, 1, 0, 0.5, 0.6, state=TrialState.PRUNED),
        trial(2, 2, 0, None, 0.4, state=TrialState.RUNNING),  # not finished: left out
    ]
    runs = lineage.population_runs(trials, interval=4)
    assert [(r.number, r.state) for r in runs] == [(0, "fail"), (1, "pruned")]
    assert math.isnan(runs[0].score) and runs[0].end_step == 4  # nothing reported: start + interval
    assert runs[1].score == 0.5
    assert lineage.winner(runs).number == 1  # NaN is worst in both modes
    assert lineage.winner(runs, "min").number == 1


def test_a_duplicate_generation_keeps_the_later_copy() -> None:
    trials = [trial(0, 0, 0, 0.1, 0.2), trial(1, 0, 0, 0.3, 0.2)]
    assert [r.number for r in lineage.population_runs(trials)] == [1]


def test_winner_is_the_best_of_the_newest_generation() -> None:
    runs = lineage.population_runs(population())
    assert lineage.winner(runs).number == 8
    assert lineage.winner(runs, "min").number == 9
    # a member ahead of the others (asynchronous PBT) wins by being the only one at the newest generation
    ahead = [*population(), trial(11, 1, 3, 0.2, 0.6, parent=9)]
    assert lineage.winner(lineage.population_runs(ahead)).number == 11
    with pytest.raises(ValueError, match="no finished population runs"):
        lineage.winner([])


def test_ancestry_follows_parents_through_donors() -> None:
    runs = lineage.population_runs(population())
    chain = lineage.ancestry(runs, lineage.winner(runs))
    assert [(r.number, r.member, r.generation) for r in chain] == [(2, 2, 0), (3, 0, 1), (8, 2, 2)]
    assert [r.donor for r in chain] == [None, 2, 0]
    assert lineage.schedule(chain) == [
        Segment(0, 4, {"h0": 0.4}),
        Segment(4, 8, {"h0": 0.48}),
        Segment(8, 12, {"h0": 0.384}),
    ]
    assert [s.steps for s in lineage.schedule(chain)] == [4, 4, 4]
    m1 = lineage.latest(runs, 1)
    assert m1.number == 9
    assert [r.number for r in lineage.ancestry(runs, m1)] == [1, 4, 9]
    with pytest.raises(ValueError, match=r"member 5 has no finished run; members: \[0, 1, 2\]"):
        lineage.latest(runs, 5)


def test_by_member_lists_each_slot_in_generation_order() -> None:
    members = lineage.by_member(lineage.population_runs(population()))
    assert {m: [r.number for r in rs] for m, rs in members.items()} == {
        0: [0, 3, 6],
        1: [1, 4, 9],
        2: [2, 5, 8],
    }


def test_best_curve_and_steps_to_a_threshold() -> None:
    trials = population()
    assert lineage.best_curve(trials) == [(4, 0.5), (8, 0.9), (12, 1.1)]
    assert lineage.best_curve(trials, "min") == [(4, 0.1), (8, 0.1), (12, 0.1)]
    curve = lineage.best_curve(trials)
    assert lineage.steps_to(curve, 0.85) == 8
    assert lineage.steps_to(curve, 1.1) == 12
    assert lineage.steps_to(curve, 1.2) is None
    assert lineage.steps_to(lineage.best_curve(trials, "min"), 0.1, "min") == 4


@pytest.mark.parametrize("act", [False, True], ids=["float", "with-choice"])
def test_plot_writes_a_png(tmp_path: Path, act: bool) -> None:
    runs = lineage.population_runs(population(act))
    chain = lineage.ancestry(runs, lineage.winner(runs))
    path = lineage.plot(runs, tmp_path / "sub" / "lineage.png", highlight=chain, objective="Q", title="toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
