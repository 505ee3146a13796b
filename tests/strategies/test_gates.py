"""Threshold gates: a schedule of minimum lines by step, and success gates that end a run early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from rlsweep.config import Gate, load_sweep
from rlsweep.strategies import make_strategy
from rlsweep.strategies.stopping import GateSchedule
from rlsweep.study import StudyHandle
from rlsweep.trainers._base import Decision
from rlsweep.worker import Worker
from tests.conftest import synthetic_sweep

M = "eval/mean_return"
CONTINUE = (Decision.CONTINUE, None)


def schedule(*gates: dict[str, Any]) -> GateSchedule:
    return GateSchedule([Gate.model_validate(g) for g in gates])


def test_no_gates_always_continue() -> None:
    assert schedule().check(10, {M: -1e9}) == CONTINUE


def test_gate_before_its_after_step_does_nothing() -> None:
    gates = schedule({"metric": M, "after": 50_000, "min": 100})
    assert gates.check(10_000, {M: 5.0}) == CONTINUE
    assert gates.check(49_999, {M: 5.0}) == CONTINUE


def test_below_min_prunes_with_the_reason() -> None:
    gates = schedule({"metric": M, "after": 50_000, "min": 100})
    assert gates.check(50_000, {M: 99.5}) == (
        Decision.PRUNE,
        "gate: eval/mean_return = 99.5 < 100 at step 50000 (after 50000)",
    )
    assert gates.check(60_000, {M: 42.0}) == (
        Decision.PRUNE,
        "gate: eval/mean_return = 42 < 100 at step 60000 (after 50000)",
    )


def test_at_or_above_min_continues() -> None:
    gates = schedule({"metric": M, "after": 50_000, "min": 100})
    assert gates.check(50_000, {M: 100.0}) == CONTINUE
    assert gates.check(70_000, {M: 250.0}) == CONTINUE


def test_above_max_prunes() -> None:
    gates = schedule({"metric": "train/loss", "max": 10})
    assert gates.check(100, {"train/loss": 9.0}) == CONTINUE
    assert gates.check(200, {"train/loss": 12.5}) == (
        Decision.PRUNE,
        "gate: train/loss = 12.5 > 10 at step 200 (after 0)",
    )


def test_gate_on_a_metric_not_reported_does_nothing() -> None:
    gates = schedule({"metric": M, "min": 100})
    assert gates.check(1000, {"train/loss": 0.5}) == CONTINUE


def test_schedule_of_two_gates() -> None:
    # ">= 100 by 200k steps, >= 400 by 1M"
    gates = schedule(
        {"metric": M, "after": 200_000, "min": 100}, {"metric": M, "after": 1_000_000, "min": 400}
    )
    assert gates.check(100_000, {M: 50.0}) == CONTINUE  # before either line
    assert gates.check(200_000, {M: 150.0}) == CONTINUE  # past the first line
    assert gates.check(500_000, {M: 300.0}) == CONTINUE  # the second line does not apply yet
    assert gates.check(1_000_000, {M: 300.0}) == (
        Decision.PRUNE,
        "gate: eval/mean_return = 300 < 400 at step 1000000 (after 1000000)",
    )
    assert gates.check(1_000_000, {M: 450.0}) == CONTINUE


def test_schedule_first_line_still_prunes_late() -> None:
    gates = schedule(
        {"metric": M, "after": 200_000, "min": 100}, {"metric": M, "after": 1_000_000, "min": 400}
    )
    assert gates.check(300_000, {M: 80.0}) == (
        Decision.PRUNE,
        "gate: eval/mean_return = 80 < 100 at step 300000 (after 200000)",
    )


def test_success_gate_stops_after_k_evaluations_in_a_row() -> None:
    gates = schedule({"metric": M, "success": {"min": 475, "for": 3}})
    assert gates.check(1, {M: 480.0}) == CONTINUE
    assert gates.check(2, {M: 490.0}) == CONTINUE
    assert gates.check(3, {M: 476.0}) == (
        Decision.STOP,
        "success: eval/mean_return = 476 for 3 evaluations in a row",
    )


def test_success_streak_is_reset_by_a_dip() -> None:
    gates = schedule({"metric": M, "success": {"min": 475, "for": 3}})
    assert gates.check(1, {M: 480.0}) == CONTINUE
    assert gates.check(2, {M: 490.0}) == CONTINUE
    assert gates.check(3, {M: 470.0}) == CONTINUE  # the dip
    assert gates.check(4, {M: 480.0}) == CONTINUE
    assert gates.check(5, {M: 480.0}) == CONTINUE
    assert gates.check(6, {M: 500.0}) == (
        Decision.STOP,
        "success: eval/mean_return = 500 for 3 evaluations in a row",
    )


def test_success_streak_counts_only_reports_of_its_metric() -> None:
    gates = schedule({"metric": M, "success": {"min": 475, "for": 2}})
    assert gates.check(1, {M: 480.0}) == CONTINUE
    assert gates.check(2, {"train/loss": 1.0}) == CONTINUE  # another metric's report is no dip
    assert gates.check(3, {M: 480.0}) == (
        Decision.STOP,
        "success: eval/mean_return = 480 for 2 evaluations in a row",
    )


def test_success_gate_with_max_for_a_minimised_metric() -> None:
    gates = schedule({"metric": "loss", "success": {"max": 0.1, "for": 2}})
    assert gates.check(1, {"loss": 0.05}) == CONTINUE
    assert gates.check(2, {"loss": 0.2}) == CONTINUE
    assert gates.check(3, {"loss": 0.05}) == CONTINUE
    assert gates.check(4, {"loss": 0.1}) == (Decision.STOP, "success: loss = 0.1 for 2 evaluations in a row")


def test_success_with_for_1_stops_at_once() -> None:
    gates = schedule({"metric": M, "success": {"min": 475}})
    assert gates.check(1, {M: 475.0}) == (
        Decision.STOP,
        "success: eval/mean_return = 475 for 1 evaluation in a row",
    )


def test_each_run_has_its_own_streak() -> None:
    gate = [Gate.model_validate({"metric": M, "success": {"min": 475, "for": 2}})]
    a, b = GateSchedule(gate), GateSchedule(gate)
    assert a.check(1, {M: 480.0}) == CONTINUE
    assert b.check(1, {M: 480.0}) == CONTINUE
    assert a.check(2, {M: 480.0})[0] is Decision.STOP


@pytest.mark.parametrize("gate", [{"metric": M, "min": 100}, {"metric": M, "max": 100}])
def test_nan_fails_a_min_or_max_gate(gate: dict[str, Any]) -> None:
    decision, reason = schedule(gate).check(10, {M: float("nan")})
    assert decision is Decision.PRUNE
    assert reason is not None and reason.startswith("gate: eval/mean_return = nan ")


def test_nan_prune_reason_exact() -> None:
    assert schedule({"metric": M, "after": 5, "min": 100}).check(10, {M: float("nan")}) == (
        Decision.PRUNE,
        "gate: eval/mean_return = nan < 100 at step 10 (after 5)",
    )


def test_nan_breaks_a_success_streak() -> None:
    gates = schedule({"metric": M, "success": {"min": 475, "for": 2}})
    assert gates.check(1, {M: 480.0}) == CONTINUE
    assert gates.check(2, {M: float("nan")}) == CONTINUE
    assert gates.check(3, {M: 480.0}) == CONTINUE
    assert gates.check(4, {M: 480.0})[0] is Decision.STOP


def test_gate_and_success_in_one_schedule() -> None:
    gates = schedule({"metric": M, "after": 100, "min": 10}, {"metric": M, "success": {"min": 475, "for": 2}})
    assert gates.check(50, {M: 0.0}) == CONTINUE
    assert gates.check(100, {M: 480.0}) == CONTINUE
    assert gates.check(150, {M: 480.0}) == (
        Decision.STOP,
        "success: eval/mean_return = 480 for 2 evaluations in a row",
    )


def test_a_success_gate_ends_a_run_as_complete_inside_a_study(tmp_path: Path) -> None:
    # One configuration at the synthetic trainer's optimum: its return passes 350 at step 500
    # (about 390) and stays past it at 750 (about 450), so the gate ends it there, one evaluation
    # before its 1000-step budget, as a success: COMPLETE, with the reason recorded.
    sweep = synthetic_sweep(
        "ok",
        tmp_path,
        strategy={"name": "grid", "seeds": 2},
        params={"learning_rate": {"choice": [1e-3]}, "gamma": {"choice": [0.99]}},
        stop=[{"metric": M, "after": 250, "min": 100}, {"metric": M, "success": {"min": 350, "for": 2}}],
    )
    loaded = load_sweep(sweep)
    handle = StudyHandle.create_or_load(loaded, f"sqlite:///{tmp_path}/ok.db")
    handle.enqueue(make_strategy(loaded).initial_runs())
    Worker(handle).loop()
    trials = handle.study.get_trials()
    assert len(trials) == 2
    for t in trials:
        assert t.state == TrialState.COMPLETE
        assert sorted(t.intermediate_values) == [250, 500, 750]  # stopped early, not pruned
        reason = t.user_attrs["stop_reason"]
        assert reason == f"success: {M} = {t.intermediate_values[750]:g} for 2 evaluations in a row"
        assert t.value == pytest.approx(t.intermediate_values[750])
    assert handle.row_counts() == {"done": 2}
