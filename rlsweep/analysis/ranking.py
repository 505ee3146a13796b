"""Rank configurations by their seed-aggregated objective, with IQM and bootstrap confidence intervals."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsweep import states
from rlsweep.analysis.stats import Summary, summarize
from rlsweep.strategies import keys_taken_by


@dataclass
class RankedConfig:
    config_id: str
    values: dict[str, Any]
    summary: Summary
    runs: list[int] = field(default_factory=list)  # trial numbers with a value
    seeds: list[int] = field(default_factory=list)
    pruned: int = 0
    failed: int = 0


def rank(handle: Any, *, statistic: str = "mean", include_pruned: bool = False) -> list[RankedConfig]:
    """Configurations best first. Only finished runs count; a NaN never ranks."""
    from optuna.trial import TrialState

    groups: dict[str, RankedConfig] = {}
    values: dict[str, list[float]] = defaultdict(list)
    for trial in handle.study.get_trials(deepcopy=False):
        if "seed" not in trial.user_attrs:
            continue  # not a run of rlsweep's
        cid = handle.config_id(trial)
        entry = groups.get(cid)
        if entry is None:
            entry = groups[cid] = RankedConfig(cid, handle.decode(trial.params), summarize([]))
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            values[cid].append(float(trial.value))
            entry.runs.append(trial.number)
            entry.seeds.append(int(trial.user_attrs.get("seed", -1)))
        elif trial.state == TrialState.PRUNED:
            entry.pruned += 1
            if include_pruned and trial.intermediate_values:
                last = trial.intermediate_values[max(trial.intermediate_values)]
                values[cid].append(float(last))
                entry.runs.append(trial.number)
        elif trial.state == TrialState.FAIL and trial.user_attrs.get("failure_reason") not in states.REQUEUED_REASONS:
            entry.failed += 1
    for cid, entry in groups.items():
        entry.summary = summarize(values[cid])
    ranked = [g for g in groups.values() if g.summary.n > 0]
    sign = -1.0 if handle.sweep.objective.mode == "max" else 1.0
    ranked.sort(key=lambda g: (sign * getattr(g.summary, statistic), -g.summary.n))
    return ranked


def export_best(handle: Any, ranked: list[RankedConfig], directory: Path) -> list[Path]:
    """Each configuration as a ready-to-run sweep file with its values fixed (no markers left)."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    base = handle.loaded.to_dict()
    for i, entry in enumerate(ranked, start=1):
        trainer, hyper = handle.space.fill(entry.values)
        data = json.loads(json.dumps(base))
        data.update(
            study=f"{handle.name}-best{i}",
            trainer=trainer,
            params=hyper,
            strategy={**keys_taken_by("grid", base["strategy"]), "name": "grid", "runs": None, "seeds": max(entry.summary.n, 1)},
            storage=None,
            artifacts=None,
        )
        data["strategy"].pop("runs")
        header = (
            f"# configuration {entry.config_id} of study {handle.name}: rank {i}, "
            f"mean {entry.summary.mean:.4g}, IQM {entry.summary.iqm:.4g} over {entry.summary.n} seed(s)\n"
        )
        path = directory / f"{handle.name}-best{i}.yaml"
        path.write_text(header + yaml.safe_dump(data, sort_keys=False))
        written.append(path)
    return written
