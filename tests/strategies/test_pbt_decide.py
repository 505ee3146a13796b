"""PBT's decision as a pure function over plain records (no study, no files)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from rlsweep.strategies.pbt import NextRun, decide, make_explorer, observations, select
from rlsweep.strategies.population import Param
from rlsweep.strategies.records import MemberRun, build_population, recorded_checkpoint, score_of
from rlsweep.strategies.settings import PopulationSettings

PARAMS = [Param(name="lr", kind="float", low=1e-4, high=1e-1, log=True)]


def run(member: int, generation: int, score: float, lr: float = 1e-2, *, checkpoint: str | None = "ck", start: int = 0, parent: int | None = None) -> MemberRun:
    return MemberRun(
        member=member, generation=generation, number=10 * generation + member, score=score, params={"lr": lr},
        checkpoint=checkpoint, checkpoint_complete=checkpoint is not None, start_step=start, parent=parent,
    )  # fmt: skip


def decide_for(member: int, runs: list[MemberRun], **settings: Any) -> NextRun:
    s = PopulationSettings(name=settings.pop("name", "pbt"), interval=4, **settings)
    population = build_population(runs)
    latest = {m: r[max(r)] for m, r in population.items()}
    return decide(
        member, max(population[member]), population, latest, settings=s, params=PARAMS,
        explorer=make_explorer(s, PARAMS), mode="max", seed=0, interval=4,
    )  # fmt: skip


def test_a_bottom_member_copies_a_better_one_and_explores() -> None:
    runs = [run(0, 0, 1.0, 0.001), run(1, 0, 9.0, 0.01, checkpoint="m1.zip", start=8)]
    nxt = decide_for(0, runs, selection="winner_takes_all")
    assert (nxt.member, nxt.generation, nxt.donor, nxt.start_step) == (0, 1, 1, 12)
    assert nxt.parent is not None and nxt.parent.checkpoint == "m1.zip"
    assert nxt.changes[0] == "exploit: copy member 1 (run 1)"
    assert nxt.values["lr"] != 0.01 and len(nxt.changes) == 2 and nxt.changes[1].startswith("lr: 0.01")


def test_a_donor_without_a_recorded_checkpoint_is_not_copied() -> None:
    # Completeness is what the storage says; no file is looked at (the paths here exist nowhere).
    runs = [run(0, 0, 1.0, 0.001, checkpoint="own.zip"), run(1, 0, 9.0, checkpoint=None)]
    nxt = decide_for(0, runs, selection="winner_takes_all")
    assert nxt.donor is None and nxt.parent is not None and nxt.parent.member == 0
    assert nxt.values == {"lr": 0.001} and nxt.changes == [] and nxt.start_step == 4


def test_a_failed_member_without_checkpoint_restarts() -> None:
    runs = [run(0, 0, math.nan, checkpoint=None), run(1, 0, 5.0, checkpoint=None)]
    nxt = decide_for(0, runs, selection="winner_takes_all")
    assert nxt.parent is None and nxt.start_step == 0
    assert nxt.changes == ["restart: no checkpoint to continue from"]
    assert 1e-4 <= nxt.values["lr"] <= 1e-1


def test_exploit_only_copies_without_changes_and_explore_only_perturbs_its_own() -> None:
    runs = [run(0, 0, 1.0, 0.001), run(1, 0, 9.0, 0.01)]
    copy = decide_for(0, runs, selection="winner_takes_all", explore=False)
    assert copy.values == {"lr": 0.01} and copy.changes == ["exploit: copy member 1 (run 1)"]
    own = decide_for(0, runs, exploit=False)
    assert own.donor is None and own.parent is not None and own.parent.member == 0
    assert own.values["lr"] != 0.001 and own.changes[0].startswith("lr: 0.001")


def test_the_best_member_continues_unchanged() -> None:
    runs = [run(0, 0, 1.0, 0.001), run(1, 0, 9.0, 0.01)]
    nxt = decide_for(1, runs, selection="winner_takes_all")
    assert nxt == NextRun(1, 1, {"lr": 0.01}, runs[1], None, [], 4)


def test_the_same_records_give_the_same_decision() -> None:
    runs = [run(m, 0, float(m), 10 ** -(m % 3 + 2)) for m in range(8)]
    assert decide_for(0, runs) == decide_for(0, runs)


def test_select_truncation_and_winner_takes_all() -> None:
    scores = {"0": 1.0, "1": 2.0, "2": 3.0, "3": 4.0}
    rng = np.random.default_rng(0)
    wta = PopulationSettings(name="pbt", interval=4, selection="winner_takes_all")
    assert select(0, scores, rng, wta, "max") is not None and select(0, scores, rng, wta, "max").donor == "3"  # type: ignore[union-attr]
    assert select(3, scores, rng, wta, "max") is None
    sync = PopulationSettings(name="pbt", interval=4, synchronous=True, fraction=0.25)
    exploit = select(0, scores, rng, sync, "max")
    assert exploit is not None and exploit.donor == "3"
    assert select(1, scores, rng, sync, "max") is None  # not in the bottom quarter


def test_observations_are_score_changes_from_the_parent() -> None:
    population = build_population([run(0, 0, 1.0), run(0, 1, 4.0, 0.02, parent=0), run(1, 0, 2.0)])
    (obs,) = observations(population, "max")
    assert (obs.time, dict(obs.config), obs.change) == (1.0, {"lr": 0.02}, 3.0)
    (low,) = observations(population, "min")
    assert low.change == -3.0


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [({"checkpoint": "a.zip", "model": "b.zip"}, "a.zip"), ({"model": "b.zip"}, "b.zip"), ({}, None), ({"checkpoint": ""}, None)],
)
def test_recorded_checkpoint(attrs: dict[str, Any], expected: str | None) -> None:
    assert recorded_checkpoint(attrs) == expected


def test_score_of() -> None:
    assert score_of("COMPLETE", 3.0, {}) == 3.0
    assert score_of("PRUNED", None, {4: 1.0, 8: 2.5}) == 2.5
    assert math.isnan(score_of("FAIL", None, {4: 1.0}))
