"""The PBT paper's toy problem: the function-trainer target, its checkpoints, and the simulation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlsweep.examples import toy_pbt
from rlsweep.strategies.population import explore, truncation
from rlsweep.trainers._base import Decision, RunContext


class Recorder:
    """A hand-built stand-in for the worker: collects reports and records, answers with decisions."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.reports: list[tuple[int, dict[str, float]]] = []
        self.records: dict[str, Any] = {}
        self.stop_at = stop_at

    def report(self, step: int, metrics: Mapping[str, float]) -> Decision:
        self.reports.append((step, dict(metrics)))
        return Decision.STOP if self.stop_at is not None and step >= self.stop_at else Decision.CONTINUE

    def record(self, key: str, value: Any) -> None:
        self.records[key] = value


def context(
    tmp_path: Path,
    number: int,
    recorder: Recorder,
    *,
    h: tuple[float, float] = (1.0, 1.0),
    budget: int = 10,
    eval_every: int = 5,
    start: Path | None = None,
    start_step: int = 0,
) -> RunContext:
    return RunContext(
        study="toy",
        number=number,
        config={"target": "rlsweep.examples.toy_pbt:train", "timesteps": budget},
        hyperparams={"h0": h[0], "h1": h[1]},
        params={"h0": h[0], "h1": h[1]},
        seed=0,
        budget=budget,
        eval_every=eval_every,
        eval_episodes=1,
        objective="Q",
        artifact_dir=tmp_path / str(number),
        report=recorder.report,
        start_checkpoint=start,
        start_step=start_step,
        record=recorder.record,
    )


def test_objective_and_gradient_step() -> None:
    theta = np.array(toy_pbt.THETA0)
    assert toy_pbt.q(theta) == pytest.approx(1.2 - 1.62)
    assert toy_pbt.q(np.zeros(2)) == 1.2
    step = toy_pbt.gradient_step(theta, np.array([1.0, 0.0]), 0.01)
    assert step.tolist() == pytest.approx([0.9 * 0.98, 0.9])  # h1 = 0: the second coordinate never moves


def test_train_reports_saves_and_records(tmp_path: Path) -> None:
    rec = Recorder()
    toy_pbt.train(context(tmp_path, 0, rec, h=(1.0, 0.5), budget=12, eval_every=5, start_step=100))
    assert [s for s, _ in rec.reports] == [105, 110, 112]  # every eval_every steps and at the end
    path = Path(rec.records["checkpoint"])
    assert path == tmp_path / "0" / "theta.npy" and path.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["theta.npy"]  # no temporary file left
    theta, steps = toy_pbt.load_checkpoint(path)
    assert steps == 112
    assert theta.tolist() == pytest.approx([0.9 * 0.98**12, 0.9 * 0.99**12])
    assert rec.reports[-1][1] == {"Q": pytest.approx(toy_pbt.q(theta))}
    assert "restored_hash" not in rec.records


def test_train_stops_when_told_and_still_saves(tmp_path: Path) -> None:
    rec = Recorder(stop_at=10)
    toy_pbt.train(context(tmp_path, 0, rec, budget=100, eval_every=5))
    assert [s for s, _ in rec.reports] == [5, 10]
    assert toy_pbt.load_checkpoint(rec.records["checkpoint"])[1] == 10


def test_continue_from_a_checkpoint(tmp_path: Path) -> None:
    donor = Recorder()
    toy_pbt.train(context(tmp_path, 0, donor, budget=7))
    donor_path = Path(donor.records["checkpoint"])
    target = Recorder()
    toy_pbt.train(context(tmp_path, 1, target, budget=0, start=donor_path, start_step=7))
    assert target.records["restored_hash"] == toy_pbt.checkpoint_hash(donor_path)
    # Zero steps trained: the target's checkpoint is the donor's state exactly.
    assert toy_pbt.checkpoint_hash(target.records["checkpoint"]) == toy_pbt.checkpoint_hash(donor_path)
    resumed = Recorder()
    toy_pbt.train(context(tmp_path, 2, resumed, budget=3, start=donor_path, start_step=7))
    straight = Recorder()
    toy_pbt.train(context(tmp_path, 3, straight, budget=10))
    assert toy_pbt.checkpoint_hash(resumed.records["checkpoint"]) == toy_pbt.checkpoint_hash(
        straight.records["checkpoint"]
    )


def test_100_exploits_restore_the_donor_exactly(tmp_path: Path) -> None:
    """A file-based PBT with the real target: 8 members, up to 4 exploits per generation, until 100."""
    rng = np.random.default_rng(0)
    members = [f"m{i}" for i in range(8)]
    hyper = {m: {p.name: p.sample(rng) for p in toy_pbt.SPACE} for m in members}
    checkpoint: dict[str, Path | None] = dict.fromkeys(members)
    steps = 0
    number = 0
    exploits = restores = mismatches = 0
    while exploits < 100:
        scores = {}
        for m in members:
            rec = Recorder()
            h = (hyper[m]["h0"], hyper[m]["h1"])
            start = checkpoint[m]
            toy_pbt.train(
                context(tmp_path, number, rec, h=h, budget=4, eval_every=4, start=start, start_step=steps)
            )
            if start is not None:
                restores += 1
                mismatches += rec.records["restored_hash"] != toy_pbt.checkpoint_hash(start)
            checkpoint[m] = Path(rec.records["checkpoint"])
            scores[m] = rec.reports[-1][1]["Q"]
            number += 1
        steps += 4
        # Members tied with the best (same h clipped at 1, same theta) are not exploited, so a
        # generation has up to 4 exploits; stop at exactly 100.
        for decision in truncation(scores, rng, fraction=0.5)[: 100 - exploits]:
            checkpoint[decision.target] = checkpoint[decision.donor]
            hyper[decision.target], _ = explore(hyper[decision.donor], toy_pbt.SPACE, rng)
            exploits += 1
    rec = Recorder()  # the last exploited members continue once more, so every exploit is restored
    for m in members:
        start = checkpoint[m]
        toy_pbt.train(context(tmp_path, number, rec, budget=0, start=start, start_step=steps))
        restores += 1
        mismatches += rec.records["restored_hash"] != toy_pbt.checkpoint_hash(start)  # type: ignore[arg-type]
        number += 1
    assert exploits == 100
    assert restores >= 100 and mismatches == 0


def test_simulated_pbt_reaches_the_optimum_in_five_seeds() -> None:
    results = {
        mode: [toy_pbt.simulate(mode, population=10, intervals=40, seed=s) for s in range(5)]
        for mode in ("pbt", "explore", "exploit", "grid")
    }
    best = {mode: np.array([r["best_q"] for r in rs]) for mode, rs in results.items()}
    assert (best["pbt"] >= 1.19).all(), best["pbt"]
    assert best["explore"].mean() < best["pbt"].mean()
    assert best["exploit"].mean() < best["pbt"].mean()
    assert len(set(best["grid"].tolist())) == 1  # the grid has no randomness
    assert all(len(r["curve"]) == 40 for r in results["pbt"])
    assert all(0 < r["exploits"] <= 3 * 39 for r in results["pbt"])  # at most ceil(0.25 * 10) per interval
    # PBT is first to 1.19 (the paper's point: it finds the optimum fastest)
    first = {mode: np.mean([r["steps_to_119"] or 10**9 for r in rs]) for mode, rs in results.items()}
    assert first["pbt"] < min(first["explore"], first["exploit"], first["grid"])


def test_simulate_is_deterministic_and_checks_its_mode() -> None:
    assert toy_pbt.simulate("pbt", intervals=5, seed=3) == toy_pbt.simulate("pbt", intervals=5, seed=3)
    with pytest.raises(ValueError, match="mode must be 'pbt', 'explore', 'exploit' or 'grid', got 'pb3'"):
        toy_pbt.simulate("pb3")  # type: ignore[arg-type]
    assert toy_pbt.grid_h(4).tolist() == [[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]]
