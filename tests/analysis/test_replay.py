"""Replay without storage: the plan from a hand-made population, the child sweep, and the segment-by-
segment training of the function-trainer target on the toy problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlsweep.analysis import lineage, replay
from rlsweep.config import load_sweep
from rlsweep.errors import ConfigError, TrainerError
from rlsweep.examples import toy_pbt
from rlsweep.trainers._base import Decision, RunContext
from tests.analysis.test_lineage import population

PARENT: dict[str, Any] = {
    "study": "toy",
    "seed": 0,
    "trainer": {"kind": "function", "target": "rlsweep.examples.toy_pbt:train", "timesteps": 12, "lr": 0.01},
    "eval": {"every": 2, "episodes": 1},
    "objective": {"metric": "Q", "mode": "max"},
    "strategy": {"name": "pbt", "population": 3, "interval": 4, "workers": 2},
    "params": {"h0": {"uniform": [0.0, 1.0]}, "h1": {"uniform": [0.0, 1.0]}},
    "stop": [{"metric": "Q", "after": 4, "min": -5.0}, {"metric": "Q", "success": {"min": 1.19}}],
}


def test_plan_follows_the_winners_ancestry_and_picks_the_static_arm() -> None:
    runs = lineage.population_runs(population())
    plan = replay.plan_replay(runs, "toy")
    assert plan.last.number == 8 and [r.number for r in plan.chain] == [2, 3, 8]
    assert [(s.start, s.end, s.values) for s in plan.arms["schedule"]] == [
        (0, 4, {"h0": 0.4}),
        (4, 8, {"h0": 0.48}),
        (8, 12, {"h0": 0.384}),
    ]
    assert plan.steps == 12
    assert plan.static_from.number == 2 and plan.arms["static"] == [lineage.Segment(0, 12, {"h0": 0.4})]
    best0 = replay.plan_replay(runs, "toy", static="best0")
    assert best0.static_from.number == 1 and best0.static_values == {"h0": 0.6}  # best generation-0 score
    member = replay.plan_replay(runs, "toy", member=1)
    assert [r.number for r in member.chain] == [1, 4, 9]
    with pytest.raises(ConfigError, match="no finished population runs to replay"):
        replay.plan_replay([], "toy")


def test_fresh_seed_is_past_every_seed_the_parent_used() -> None:
    class T:
        def __init__(self, attrs: dict[str, Any]) -> None:
            self.user_attrs = attrs

    assert replay.fresh_seed([T({"seed": 3}), T({"seed": 9}), T({})], default=0) == 10
    assert replay.fresh_seed([], default=5) == 5


def test_child_sweep_is_a_valid_grid_over_the_two_arms() -> None:
    plan = replay.plan_replay(lineage.population_runs(population()), "toy")
    data = replay.child_sweep(PARENT, plan, 3, first_seed=10)
    loaded = load_sweep(data)
    sweep = loaded.sweep
    assert sweep.study == "toy-replay" and sweep.seed == 10
    assert sweep.strategy.name == "grid" and sweep.strategy.seeds == 3 and sweep.strategy.workers == 2
    assert loaded.space.names == ["arm"] and loaded.space.grid() == [{"arm": "schedule"}, {"arm": "static"}]
    assert [g.success is not None for g in sweep.stop] == [True]  # pruning gates dropped, success kept
    payload = json.loads(sweep.trainer["plan"])
    assert (
        payload["trainer"] == PARENT["trainer"] and payload["params"] == PARENT["params"]
    )  # markers kept, not searched
    assert payload["arms"]["schedule"] == [
        {"steps": 4, "values": {"h0": 0.4}},
        {"steps": 4, "values": {"h0": 0.48}},
        {"steps": 4, "values": {"h0": 0.384}},
    ]
    assert sweep.trainer["timesteps"] == 12
    assert replay.child_sweep(PARENT, plan, 1, name="other", first_seed=10)["study"] == "other"
    with pytest.raises(ConfigError, match="--seeds must be at least 1, got 0"):
        replay.child_sweep(PARENT, plan, 0, first_seed=10)


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[int, float]] = []
        self.records: dict[str, Any] = {}

    def report(self, step: int, metrics: Mapping[str, float]) -> Decision:
        self.reports.append((step, metrics.get("Q", float("nan"))))
        return Decision.CONTINUE

    def record(self, key: str, value: Any) -> None:
        self.records[key] = value


def _context(
    tmp_path: Path, arms: dict[str, Any], arm: str, rec: Recorder, trainer: dict[str, Any] | None = None
) -> RunContext:
    payload = {
        "study": "toy",
        "run": 8,
        "trainer": trainer or PARENT["trainer"],
        "params": PARENT["params"],
        "arms": arms,
    }
    return RunContext(
        study="toy-replay",
        number=0,
        config={"kind": "function", "target": replay.TARGET, "timesteps": 12, "plan": json.dumps(payload)},
        hyperparams={"arm": arm},
        params={"arm": arm},
        seed=10,
        budget=12,
        eval_every=2,
        eval_episodes=1,
        objective="Q",
        artifact_dir=tmp_path,
        report=rec.report,
        record=rec.record,
    )


def test_train_replays_each_segment_from_the_previous_checkpoint(tmp_path: Path) -> None:
    arms = {
        "schedule": [
            {"steps": 4, "values": {"h0": 1.0, "h1": 0.0}},
            {"steps": 6, "values": {"h0": 0.0, "h1": 1.0}},
        ],
        "static": [{"steps": 10, "values": {"h0": 0.5, "h1": 0.5}}],
    }
    rec = Recorder()
    replay.train(_context(tmp_path / "a", arms, "schedule", rec))
    assert [s for s, _ in rec.reports] == [2, 4, 6, 8, 10]  # one clock across segments
    # h0 = 1 for 4 steps, then h1 = 1 for 6: theta = 0.9 * (0.98^4, 0.98^6)
    theta, steps = toy_pbt.load_checkpoint(rec.records["checkpoint"])
    assert steps == 10 and theta.tolist() == pytest.approx([0.9 * 0.98**4, 0.9 * 0.98**6])
    assert rec.reports[-1][1] == pytest.approx(toy_pbt.q(np.array([0.9 * 0.98**4, 0.9 * 0.98**6])))
    assert Path(rec.records["checkpoint"]).parent == tmp_path / "a" / "segment-1"
    assert rec.records["restored_hash"] == toy_pbt.checkpoint_hash(
        tmp_path / "a" / "segment-0" / toy_pbt.CHECKPOINT
    )
    assert rec.records["replay"] == {"study": "toy", "run": 8, "arm": "schedule", "segments": 2}

    rec = Recorder()
    replay.train(_context(tmp_path / "b", arms, "static", rec))
    theta, _ = toy_pbt.load_checkpoint(rec.records["checkpoint"])
    assert theta.tolist() == pytest.approx([0.9 * 0.99**10, 0.9 * 0.99**10])


def test_train_needs_a_trainer_that_continues_from_checkpoints(tmp_path: Path) -> None:
    arms = {"schedule": [{"steps": 4, "values": {"h0": 1.0, "h1": 0.0}}] * 2, "static": []}
    noop = {"kind": "function", "target": "rlsweep.examples.synthetic:noop", "timesteps": 12}
    with pytest.raises(
        TrainerError, match="replay segment 0: the 'function' trainer recorded no 'checkpoint' or 'model'"
    ):
        replay.train(_context(tmp_path, arms, "schedule", Recorder(), trainer=noop))
    with pytest.raises(TrainerError, match="replay arm 'other' is not in the plan"):
        replay.train(_context(tmp_path, arms, "other", Recorder()))
