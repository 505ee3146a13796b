"""Replay: re-train a population winner's hyperparameter schedule from scratch on fresh seeds.

Design. A replay is an ordinary child study `<study>-replay` in the parent's storage, so the normal
workers and launchers run it, a crash loses at most one run, and `top`/`report` read it:

- strategy `grid` over one searched value, `arm` in {"schedule", "static"}, times M seeds: run i is
  arm i mod 2 with seed number i div 2, so both arms train on the same seeds. The child's sweep seed
  is one past the largest seed the parent used, so every replay seed is unused by the population;
- trainer: the function trainer with target `rlsweep.analysis.replay:train` and one setting,
  `plan`, a JSON string (a string, so the parent's search markers inside it are not searched again)
  holding the parent's trainer and params sections and, per arm, a list of segments
  (steps, searched values);
- `train` replays an arm inside one run: for each segment it builds the parent's own trainer with
  that segment's values and trains `steps` more environment steps from the previous segment's
  checkpoint, the same hand-over a PBT generation uses (`start_checkpoint`, `start_step`). The
  schedule arm follows the winner's ancestry generation by generation (its values only: weights are
  never copied, the run continues its own); the static arm trains the same number of steps with one
  configuration (the winner's initial one, or the best generation-0 one).

Every evaluation lands in the child's metrics table and intermediate values; the final objective is
the trial's value, so mean, IQM and the bootstrap CI per arm come from `rlsweep.analysis.stats`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rlsweep import states
from rlsweep.analysis.lineage import (
    GenerationRun,
    Segment,
    ancestry,
    latest,
    population_runs,
    schedule,
    winner,
)
from rlsweep.analysis.stats import Summary, summarize
from rlsweep.errors import ConfigError, TrainerError
from rlsweep.study.attrs import CHECKPOINT_ATTR, MODEL_ATTR
from rlsweep.trainers._base import Decision, RunContext

TARGET = "rlsweep.analysis.replay:train"
ARMS = ("schedule", "static")
Static = Literal["initial", "best0"]


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay trains: the winner's schedule and one static configuration, same total steps."""

    study: str
    last: GenerationRun  # the run whose ancestry is replayed (the winner, or --member's newest)
    chain: list[GenerationRun]
    segments: list[Segment]  # the schedule arm
    static_values: dict[str, Any]
    static_from: GenerationRun  # the run the static configuration comes from
    static: Static = "initial"
    arms: dict[str, list[Segment]] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.segments)


def plan_replay(
    runs: Sequence[GenerationRun],
    study: str,
    *,
    mode: Literal["max", "min"] = "max",
    member: int | None = None,
    static: Static = "initial",
) -> ReplayPlan:
    """The schedule of the winner's (or `member`'s) ancestry and the static configuration to compare with.

    static "initial": the configuration the ancestry started with (the schedule without its changes);
    "best0": the generation-0 run with the best score (the best a static random search of the same
    population found after one interval).
    """
    if not runs:
        raise ConfigError(f"study '{study}' has no finished population runs to replay; run it first")
    last = winner(runs, mode) if member is None else latest(runs, member)
    chain = ancestry(runs, last)
    segments = schedule(chain)
    if any(s.steps <= 0 for s in segments):
        raise ConfigError(f"run {last.number}'s ancestry has a run that trained no steps; cannot replay it")
    if static == "initial":
        source = chain[0]
    elif static == "best0":
        first = [r for r in runs if r.generation == 0]
        source = winner(first, mode) if first else chain[0]
    else:
        raise ConfigError(f"--static must be 'initial' or 'best0', got {static!r}")
    total = sum(s.steps for s in segments)
    arms = {"schedule": segments, "static": [Segment(0, total, dict(source.values))]}
    return ReplayPlan(study, last, chain, segments, dict(source.values), source, static, arms)


def fresh_seed(trials: Sequence[Any], default: int) -> int:
    """One past the largest seed any run of the parent used (requeued copies included)."""
    seeds = [int(t.user_attrs["seed"]) for t in trials if "seed" in t.user_attrs]
    return max(seeds, default=default - 1) + 1


def child_sweep(
    parent: Mapping[str, Any], plan: ReplayPlan, seeds: int, *, name: str | None = None, first_seed: int
) -> dict[str, Any]:
    """The child study's sweep (plain data, validated by `load_sweep`)."""
    if seeds <= 0:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    payload = {
        "study": plan.study,
        "run": plan.last.number,
        "static": plan.static,
        "static_run": plan.static_from.number,
        "trainer": parent["trainer"],
        "params": parent.get("params", {}),
        "arms": {
            arm: [{"steps": s.steps, "values": s.values} for s in segs] for arm, segs in plan.arms.items()
        },
    }
    strategy = parent.get("strategy", {})
    return {
        "study": name or f"{plan.study}-replay",
        "seed": first_seed,
        "trainer": {
            "kind": "function",
            "target": TARGET,
            "timesteps": plan.steps,
            "plan": json.dumps(payload, sort_keys=True),
        },
        "eval": parent.get("eval", {}),
        "objective": parent.get("objective", {}),
        "strategy": {
            "name": "grid",
            "seeds": seeds,
            **({"workers": strategy["workers"]} if strategy.get("workers") else {}),
        },
        "params": {"arm": {"choice": list(ARMS)}},
        # Retrain fully: pruning gates would cut the comparison; success gates still end a run early.
        "stop": [g for g in parent.get("stop", []) if g.get("success")],
        "storage": parent.get("storage"),
        "checkpoint": parent.get("checkpoint", {}),
        "worker": parent.get("worker", {}),
    }


def train(run: RunContext) -> None:
    """Function-trainer target: train one arm of a replay, segment by segment, with the parent's trainer."""
    from rlsweep.space import build_space
    from rlsweep.trainers import get_trainer_class

    plan = json.loads(run.config["plan"])
    arm = run.params.get("arm", run.hyperparams.get("arm"))
    if arm not in plan["arms"]:
        raise TrainerError(f"replay arm {arm!r} is not in the plan ({', '.join(plan['arms'])})")
    segments = plan["arms"][arm]
    space = build_space(plan["trainer"], plan["params"])
    inner_cls = get_trainer_class(str(plan["trainer"]["kind"]))
    stopped = False

    def report(step: int, metrics: Mapping[str, float]) -> Decision:
        nonlocal stopped
        decision = run.report(step, metrics)
        stopped = stopped or decision.should_stop
        return decision

    run.record("replay", {"study": plan["study"], "run": plan["run"], "arm": arm, "segments": len(segments)})
    checkpoint: str | None = None
    step = 0
    records: dict[str, Any] = {}
    for k, segment in enumerate(segments):
        config, hyper = space.fill(segment["values"])
        records = {}
        ctx = replace(
            run,
            config=config,
            hyperparams=hyper,
            params=dict(segment["values"]),
            budget=int(segment["steps"]),
            artifact_dir=run.artifact_dir / f"segment-{k}",
            report=report,
            start_checkpoint=None if checkpoint is None else Path(checkpoint),
            start_step=step,
            extra={**run.extra, "segment": k, "generation": k},
            record=records.__setitem__,
        )
        inner_cls(config).train(ctx)
        step += int(segment["steps"])
        if stopped:
            break
        checkpoint = records.get(CHECKPOINT_ATTR) or records.get(MODEL_ATTR)
        if checkpoint is None and k + 1 < len(segments):
            raise TrainerError(
                f"replay segment {k}: the '{plan['trainer']['kind']}' trainer recorded no 'checkpoint' or 'model'; "
                "a schedule can only be replayed by a trainer that continues from checkpoints"
            )
    for key, value in records.items():  # the last segment's files are the run's files
        run.record(key, value)


@dataclass(frozen=True)
class ArmResult:
    arm: str
    summary: Summary
    runs: list[int]
    seeds: list[int]
    failed: int


def results(trials: Sequence[Any], decode: Any) -> dict[str, ArmResult]:
    """Per arm: summary of the final objective over seeds (complete runs), and failures."""
    values: dict[str, list[float]] = {arm: [] for arm in ARMS}
    runs: dict[str, list[int]] = {arm: [] for arm in ARMS}
    seeds: dict[str, list[int]] = {arm: [] for arm in ARMS}
    failed = dict.fromkeys(ARMS, 0)
    for t in trials:
        arm = decode(t.params).get("arm")
        if arm not in values:
            continue
        state = str(getattr(t.state, "name", t.state)).lower()
        if state == "complete" and t.value is not None:
            values[arm].append(float(t.value))
            runs[arm].append(t.number)
            seeds[arm].append(int(t.user_attrs.get("seed", -1)))
        elif state == "fail" and t.user_attrs.get("failure_reason") not in states.REQUEUED_REASONS:
            failed[arm] += 1
    return {arm: ArmResult(arm, summarize(values[arm]), runs[arm], seeds[arm], failed[arm]) for arm in ARMS}


def load_runs(handle: Any) -> list[GenerationRun]:
    return population_runs(
        handle.get_trials(deepcopy=False), handle.decode, interval=handle.sweep.strategy.interval
    )
