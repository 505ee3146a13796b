"""A configuration over its seeds, read from the storage: its seed runs, its curve (at each step the
mean over the seeds that reached it), whether it was pruned as a whole, and its queued seeds.

With more than one seed per configuration, pruners and gates judge configurations, not lone seeds:
Optuna's pruner is asked about an in-memory study with one trial per configuration (its curve as
intermediate values), built afresh from the shared storage at each report, so any number of workers
on any number of hosts judge alike. What a pruner memoises on its trial (successive halving's rungs)
is kept on the reporting seed's trial and given back to the configuration's next judgement. With one
seed, each run is judged the same way as a configuration of its own. Either way a curve is taken at
the checks `eval.every` steps apart (`at_checks`), so runs that evaluate at other steps meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlsweep import states
from rlsweep.strategies.racing import RaceCall, RaceEntry, race
from rlsweep.strategies.records import reduce_curve
from rlsweep.study import QueueRow, RunSpec, StudyHandle

# A pruner's own notes on a configuration's trial, kept on the seed trials under this prefix.
MEMO_PREFIX = "rlsweep:judge:"
# On the seed that was cut: why its configuration is out (its siblings and skipped seeds quote it).
CONFIG_PRUNED_ATTR = "config_pruned"
# On a queued seed that was never started because its configuration was pruned.
SKIPPED_ATTR = "pruned_reason"


def config_pruned_reason(seed_number: int, step: int) -> str:
    return f"configuration pruned (seed {seed_number} at step {step})"


@dataclass
class ConfigSeeds:
    """One configuration's runs: trials (its seeds; re-queued copies left out) and queue rows."""

    config_id: str
    trials: list[Any] = field(default_factory=list)  # Optuna FrozenTrials
    queued: list[QueueRow] = field(default_factory=list)  # waiting, or claimed with no trial yet
    skipped: list[QueueRow] = field(default_factory=list)  # never started: the configuration was pruned

    @property
    def first_number(self) -> int:
        return min((int(t.number) for t in self.trials), default=1 << 62)

    def judged(self) -> list[Any]:
        """The seeds that can be judged: running or ended with reports (a failed seed has no value)."""
        return [t for t in self.trials if t.state.name in ("RUNNING", "COMPLETE", "PRUNED")]

    def pruned_by(self) -> Any | None:
        """The seed whose cut pruned the configuration as a whole, if any."""
        return next((t for t in self.trials if t.state.name == "PRUNED"), None)

    def curve(self) -> dict[int, float]:
        """Step -> mean of the objective over the seeds that reported at that step."""
        sums: dict[int, list[float]] = {}
        for t in self.judged():
            for step, value in t.intermediate_values.items():
                if value is not None and math.isfinite(value):
                    sums.setdefault(int(step), []).append(float(value))
        return {step: sum(v) / len(v) for step, v in sorted(sums.items())}

    def seed_numbers(self, base_seed: int) -> set[int]:
        numbers = {int(t.user_attrs["seed"]) - base_seed for t in self.trials}
        return numbers | {r.seed_number for r in (*self.queued, *self.skipped)}


def read_configs(handle: StudyHandle, *, rows: bool = True) -> dict[str, ConfigSeeds]:
    """Every configuration of the study with its seed trials and (with `rows`) its queued seeds."""
    from rlsweep.space import config_id

    configs: dict[str, ConfigSeeds] = {}
    for t in handle.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if "seed" not in attrs or (
            t.state.name == "FAIL" and attrs.get("failure_reason") in states.REQUEUED_REASONS
        ):
            continue
        cid = config_id(handle.decode(t.params))
        configs.setdefault(cid, ConfigSeeds(cid)).trials.append(t)
    if rows:
        for row in handle.rows([states.WAITING, states.RUNNING, states.PRUNED]):
            if row.params is None or row.trial_number is not None:
                continue  # not a configuration yet, or its trial is counted above
            cid = config_id(handle.decode(row.params))
            entry = configs.setdefault(cid, ConfigSeeds(cid))
            if row.state == states.PRUNED:
                entry.skipped.append(row)
            else:
                entry.queued.append(row)
    return configs


def at_checks(curve: Mapping[int, float], every: int) -> dict[int, float]:
    """A curve keyed by the check each evaluation stands for: the last multiple of `every` at or
    before its step. An on-policy run evaluates at the first rollout boundary at or after a check
    (5120 or 5376 for the check at 5000, by its rollout's length), and Optuna's median and
    percentile pruners compare a run only with the runs that reported at its very step: runs of
    other rollout lengths would not count. Where two evaluations stand for one check, the later."""
    if every <= 0:
        return dict(curve)
    return {step - step % every: value for step, value in sorted(curve.items())}


def runs_as_configs(trials: Sequence[Any]) -> dict[str, ConfigSeeds]:
    """Each run as a configuration of its own: seeds judged alone (`judge_configuration`)."""
    return {str(t.number): ConfigSeeds(str(t.number), [t]) for t in trials}


def judge_configuration(
    pruner: Any, handle: StudyHandle, configs: Mapping[str, ConfigSeeds], judged_id: str, mode: str, every: int
) -> tuple[bool, dict[str, Any]]:
    """Optuna's `pruner` on configuration `judged_id` among all configurations, each one's curve
    taken at the checks (`at_checks`, every `every` steps): whether to prune it, and the notes the
    pruner made on it (to keep on the seed's trial)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(
        study_name=handle.name,
        storage=optuna.storages.InMemoryStorage(),
        direction="maximize" if mode == "max" else "minimize",
    )
    judged_index = -1
    for i, cfg in enumerate(sorted(configs.values(), key=lambda c: (c.first_number, c.config_id))):
        curve = at_checks(cfg.curve(), every)
        memo = {
            k.removeprefix(MEMO_PREFIX): v
            for t in cfg.trials
            for k, v in t.system_attrs.items()
            if k.startswith(MEMO_PREFIX)
        }
        complete = [float(t.value) for t in cfg.trials if t.state.name == "COMPLETE" and t.value is not None]
        if cfg.config_id == judged_id:
            state, value, judged_index = TrialState.RUNNING, None, i
        elif cfg.pruned_by() is not None:
            state, value = TrialState.PRUNED, None
        elif complete:
            state, value = TrialState.COMPLETE, sum(complete) / len(complete)
        else:
            state, value = TrialState.RUNNING, None
        if state == TrialState.COMPLETE and not curve:
            curve = {0: float(value or 0.0)}
        study.add_trial(create_trial(state=state, value=value, intermediate_values=curve, system_attrs=memo))
    trial = study.trials[judged_index]
    cut = bool(pruner.prune(study, trial))
    after = study.trials[judged_index].system_attrs
    return cut, {f"{MEMO_PREFIX}{k}": v for k, v in after.items() if trial.system_attrs.get(k) != v}


def sibling_metrics(
    handle: StudyHandle, cfg: ConfigSeeds, own_number: int, step: int, names: Sequence[str]
) -> dict[str, list[float]]:
    """Each metric's values at `step` of the configuration's other seeds (from the metrics table)."""
    numbers = [int(t.number) for t in cfg.judged() if int(t.number) != own_number]
    if not numbers or not names:
        return {}
    out: dict[str, list[float]] = {}
    for row in handle.metrics(numbers, names):
        if int(row["step"]) == step and row["value"] is not None:
            out.setdefault(str(row["name"]), []).append(float(row["value"]))
    return out


# ------------------------------------------------------------------------------------- racing
def race_entries(
    configs: Mapping[str, ConfigSeeds], *, base_seed: int, reduce: str, k: int, mode: str
) -> list[RaceEntry]:
    """The race's plain view of each configuration: its seeds' scores as the ranking counts them
    (finished at their value, pruned at their reduced reports), seeds used and still to run."""
    entries = []
    for cfg in configs.values():
        scores = []
        for t in cfg.trials:
            if t.state.name == "COMPLETE" and t.value is not None:
                scores.append(float(t.value))
            elif t.state.name == "PRUNED":
                curve = [float(v) for _, v in sorted(t.intermediate_values.items()) if v is not None]
                scores.append(reduce_curve(curve, reduce, k, mode))
        pending = len(cfg.queued) + sum(t.state.name == "RUNNING" for t in cfg.trials)
        entries.append(
            RaceEntry(
                cfg.config_id, tuple(s for s in scores if not math.isnan(s)), len(cfg.seed_numbers(base_seed)),
                pending, cfg.pruned_by() is not None or bool(cfg.skipped),
            )
        )  # fmt: skip
    return entries


def race_calls(handle: StudyHandle, configs: Mapping[str, ConfigSeeds] | None = None) -> dict[str, RaceCall]:
    """The race's call on every configuration of a racing study, from the storage."""
    sweep = handle.sweep
    racing = sweep.strategy.racing
    if racing is None:
        return {}
    configs = read_configs(handle) if configs is None else configs
    objective = sweep.objective
    entries = race_entries(
        configs, base_seed=sweep.seed, reduce=objective.reduce, k=objective.k, mode=objective.mode
    )
    return race(entries, max_seeds=racing.max, mode=objective.mode)


def raced_seeds(handle: StudyHandle, seed_spec: Callable[[Any, int, str], RunSpec]) -> list[RunSpec]:
    """The seeds to queue now: one more for each configuration the race says to add to.
    `seed_spec(a seed trial of it, new seed number, reason)` builds the run (the strategy's key)."""
    configs = read_configs(handle)
    specs = []
    for cid, call in race_calls(handle, configs).items():
        cfg = configs[cid]
        if not call.add or not cfg.trials:
            continue
        number = max(cfg.seed_numbers(handle.sweep.seed)) + 1
        template = min(cfg.trials, key=lambda t: int(t.number))
        specs.append(seed_spec(template, number, call.reason))
    return specs
