"""A study in the storage -> the plain inputs of `build_report`, and the report under runs/<study>/report/.

Reads only: trials and their attributes, the metrics table (learning curves), Optuna's parameter
importance, the rendered files and their sidecars under runs/<study>/render/ (and the reseed
children's) and those the study records (every render shard's), and the mature verdicts the study
stores (every shard's; an older study's mature index). Nothing here trains, evaluates or renders.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlsweep import states
from rlsweep.study.attrs import CHILDREN_ATTR

#: Rendered files the gallery shows (their sidecar is `<file>.json`).
MEDIA_SUFFIXES = (".gif", ".mp4")


def run_rows(handle: Any, trials: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """One dict per run (trial with a recorded seed): number, state, value, params, config_id, seed,
    and curves {metric: [(step, value), ...]} from the metrics table (the objective falls back on
    Optuna's intermediate values when the table has nothing for a run)."""
    trials = [
        t
        for t in (trials if trials is not None else handle.get_trials(deepcopy=False))
        if "seed" in t.user_attrs
    ]
    curves: dict[int, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in handle.metrics():
        if row["value"] is not None:
            curves[int(row["trial_number"])][str(row["name"])].append(
                (float(row["step"]), float(row["value"]))
            )
    objective = handle.sweep.objective.metric
    rows = []
    for t in trials:
        own = {
            name: points
            for name, points in curves.get(t.number, {}).items()
            if not name.startswith("mature/")
        }
        if objective not in own and t.intermediate_values:
            own[objective] = [
                (float(s), float(v)) for s, v in sorted(t.intermediate_values.items()) if v is not None
            ]
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": handle.decode(t.params),
                "config_id": handle.config_id(t),
                "seed": t.user_attrs.get("seed"),
                "curves": own,
            }
        )
    return rows


def _duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=round(seconds)))


def summary(handle: Any, trials: Sequence[Any]) -> dict[str, Any]:
    """Study name, trainer, strategy, budget, queue and wall time, as the report's summary table."""
    from rlsweep.storage import redact

    sweep = handle.sweep
    trainer = sweep.trainer
    s = sweep.strategy
    what = " ".join(str(trainer[k]) for k in ("kind", "algo", "env", "target") if trainer.get(k))
    if s.name in ("pbt", "pb2", "pb2_mixed"):
        strategy = f"{s.name}: population {s.population}, interval {s.interval} steps, {s.selection}"
    else:
        strategy = f"{s.name}" + (f", pruner {s.pruner}" if s.pruner != "none" else "")
    planned = f"{s.runs} runs" if s.runs else "every grid configuration" if s.name == "grid" else "open-ended"
    info: dict[str, Any] = {
        "name": handle.name,
        "trainer": what,
        "strategy": strategy,
        "budget": f"{planned}, {s.seeds} seed(s) per configuration, {trainer.get('timesteps', '?')} steps per run",
        "evaluation": f"every {sweep.eval.every} steps, {sweep.eval.episodes} episodes",
        "storage": redact(handle.url),
    }
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    if starts:
        info["started"] = min(starts).strftime("%Y-%m-%d %H:%M:%S")
    if starts and ends:
        busy = sum(
            (t.datetime_complete - t.datetime_start).total_seconds()
            for t in trials
            if t.datetime_start and t.datetime_complete
        )
        info["wall time"] = (
            f"{_duration((max(ends) - min(starts)).total_seconds())} (run time summed over workers {_duration(busy)})"
        )
    queue = handle.row_counts()
    if queue.get(states.WAITING) or queue.get(states.RUNNING):
        info["queue"] = ", ".join(f"{n} {state}" for state, n in sorted(queue.items()))
    return info


def importance(handle: Any) -> tuple[dict[str, float], str | None]:
    """Optuna's fANOVA importance of the searched parameters, or ({}, why not)."""
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import TrialState

    complete = handle.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    if len(complete) < 2:
        return {}, f"Importance needs at least 2 finished runs ({len(complete)} so far)."
    # A parameter with one possible value explains nothing; Optuna would still share importance with it.
    varied = sorted({name for t in complete for name, d in t.distributions.items() if not d.single()})
    if not varied:
        return {}, "Importance: no searched parameter takes more than one value."
    if len({t.value for t in complete}) < 2:
        return {}, f"Importance: every finished run scored {complete[0].value:g}, so no parameter explains a difference."
    try:
        scores = handle.param_importances(FanovaImportanceEvaluator(seed=0), varied)
    except Exception as exc:  # Optuna refuses some studies (one distinct value, dynamic spaces): say so
        return {}, f"Importance not available: {type(exc).__name__}: {exc}"
    scores = {k: float(v) for k, v in scores.items() if math.isfinite(float(v))}
    return scores, "fANOVA importance of each searched parameter for the objective (Optuna)."


def children(handle: Any) -> list[Any]:
    """The reseed studies linked to this one, opened in the same storage (missing ones skipped)."""
    from rlsweep.errors import StorageError
    from rlsweep.study.view import open_view

    found = []
    for name in handle.user_attrs.get(CHILDREN_ATTR, []):
        try:
            found.append(open_view(name, handle.url))
        except StorageError:
            continue
    return found


def gallery(folders: Sequence[Path], *, seed: int = 0, files: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """Every rendered file with a sidecar under `folders` or among `files` (those the study records,
    wherever they were written), each once, with its behaviour cluster.

    Policies' episodes are clustered together on their sidecar descriptors (descriptors of another
    length, from another environment, are left unclustered); checkpoint-timeline files (a `step` in
    the sidecar) are marked `timeline` and not clustered.
    """
    from rlsweep.analysis.behaviour import cluster_behaviours, distinguishing

    items: list[dict[str, Any]] = []
    found = [path for folder in folders for path in sorted(folder.rglob("*"))]
    seen: set[Path] = set()
    for path in [*found, *sorted(files)]:
        if path.suffix.lower() not in MEDIA_SUFFIXES or not path.is_file() or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        sidecar = path.with_name(path.name + ".json")
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue  # a file without its sidecar (or being written): nothing to label it with
        items.append(
            {
                "path": str(path),
                "return": meta.get("return"),
                "seed": meta.get("seed"),
                "train_seed": meta.get("train_seed"),
                "config_id": meta.get("config_id"),
                "run": meta.get("run"),
                "study": meta.get("study"),
                "step": meta.get("step"),
                "final": bool(meta.get("final")),
                "timeline": meta.get("step") is not None,
                "behaviour": meta.get("behaviour") or [],
                "behaviour_names": meta.get("behaviour_names") or [],
            }
        )
    policies = [i for i, item in enumerate(items) if not item["timeline"] and item["behaviour"]]
    by_length: dict[int, list[int]] = defaultdict(list)
    for i in policies:
        by_length[len(items[i]["behaviour"])].append(i)
    if by_length:
        group = max(by_length.values(), key=len)
        descriptors = {str(i): items[i]["behaviour"] for i in group}
        # Seeds of one configuration (and episodes of one policy) are replicates: their spread is
        # the noise a behaviour must stand out of.
        replicates = {str(i): f"{items[i]['study']}:{items[i]['config_id']}" for i in group}
        labels = cluster_behaviours(descriptors, seed=seed, groups=replicates)
        names: list[str] = next((items[i]["behaviour_names"] for i in group if items[i]["behaviour_names"]), [])
        differs = distinguishing(descriptors, labels, names) if names else {}
        for key, label in labels.items():
            items[int(key)]["cluster"] = label
            if label in differs:
                items[int(key)]["cluster_differs"] = differs[label]
    return items


def mature(root: Path, name: str, handle: Any = None) -> tuple[list[dict[str, Any]], str | None]:
    """The mature policies (the verdicts `handle`'s study stores for the latest request, all shards';
    else runs/<study>/mature/index.json), and a line on how they were chosen."""
    from dataclasses import asdict

    from rlsweep.analysis.mature import stored

    asked, verdicts = stored(handle) if handle is not None else (None, [])
    if asked is not None and verdicts:
        chosen = [asdict(v) for v in verdicts if v.mature]
        shards = {value.get("shard") for key, value in handle.user_attrs.items() if _is_verdict(key, value, asked)}
        by = f" ({len(shards)} shards)" if len(shards - {None}) > 1 else ""
        note = (
            f"{len(chosen)} of {len(verdicts)} policies{by} have {asked.get('statistic', 'mean')} return "
            f">= {asked.get('threshold')} over {asked.get('episodes')} held-out episodes."
        )
        return chosen, note
    path = root / name / "mature" / "index.json"
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return [], None
    chosen = list(index.get("mature", []))
    note = (
        f"{len(chosen)} of {len(index.get('evaluated', []))} policies have {index.get('statistic', 'mean')} return "
        f">= {index.get('threshold')} over {index.get('episodes')} held-out episodes."
    )
    return chosen, note


def build_study_report(
    handle: Any, out_dir: str | Path | None = None, *, root: str | Path = "runs", top: int = 10, seed: int = 0
) -> Path:
    """Write the study's report (default runs/<study>/report/index.html) and return its path."""
    from rlsweep.analysis import lineage
    from rlsweep.analysis.ranking import rank
    from rlsweep.render.study import rendered
    from rlsweep.report.html import build_report

    root = Path(root)
    out = Path(out_dir) if out_dir is not None else root / handle.name / "report"
    trials = handle.get_trials(deepcopy=False)
    kids = children(handle)
    scores, note = importance(handle)
    chosen, mature_note = mature(root, handle.name, handle)
    population = None
    if any("member" in t.user_attrs for t in trials):
        gen_runs = lineage.population_runs(trials, handle.decode, interval=handle.sweep.strategy.interval)
        population = [vars(r) for r in gen_runs]
    folders = [root / h.name / "render" for h in [handle, *kids] if (root / h.name / "render").is_dir()]
    return build_report(
        out,
        runs=run_rows(handle, trials),
        objective=handle.sweep.objective.metric,
        mode=handle.sweep.objective.mode,
        study=summary(handle, trials),
        gallery=gallery(folders, seed=seed, files=[Path(str(r["path"])) for r in rendered(handle)]),
        importance=scores,
        importance_note=note,
        mature=chosen,
        mature_note=mature_note,
        population=population,
        children=[{"name": h.name, "runs": run_rows(h), "ranking": rank(h, seed=seed)} for h in kids],
        ranking=rank(handle, seed=seed),  # the table's order is `rlsweep top`'s
        top=top,
        seed=seed,
        log_params={p.name for p in handle.space.params if p.log},
    )


def _is_verdict(key: str, value: Any, asked: dict[str, Any]) -> bool:
    from rlsweep.analysis.mature import VERDICT_PREFIX

    return key.startswith(VERDICT_PREFIX) and isinstance(value, dict) and value.get("request") == asked
