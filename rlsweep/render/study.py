"""Which saved policies of a study to render, and the render jobs for them.

A policy is chosen from the mature verdicts stored in the study (every shard's; an older study's
`runs/<study>/mature/index.json` otherwise; entries may belong to reseed children in the same
storage), from the best configurations, or as one run, optionally with every checkpoint it saved.
Every choice is checked before anything renders, so a bad request fails with one line and exit
code 2. Each written file is recorded in the study (`render_record`, one attribute per file), so
shards on several machines list all their files together (`rendered`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsweep.errors import ConfigError
from rlsweep.render.pool import RenderJob, timeline_jobs
from rlsweep.study.attrs import CHECKPOINT_STEP, CHECKPOINTS_ATTR, MODEL_ATTR

RENDER_PREFIX = "rlsweep:render:"  # + a digest of the file's absolute path, one per written file
RECORD_COLUMNS = ("path", "study", "run", "config_id", "seed", "return", "length", "step", "final", "shard")


@dataclass(frozen=True)
class Policy:
    """One saved policy to render: whose run it is, its file and the trainer settings to load it with."""

    study: str
    run: int
    config_id: str
    model: str
    config: dict[str, Any]
    seed: int | None = None  # the run's training seed
    hyperparameters: dict[str, Any] | None = None  # every hyperparameter the run trained with


def require_policies(handle: Any) -> None:
    """ConfigError (exit 2) unless the study's trainer can load its saved policies for rendering."""
    from rlsweep.trainers import policy_trainer

    policy_trainer(handle.sweep.trainer, "render", handle.name)


def policy_of(handle: Any, trial: Any, model: str | None = None) -> Policy:
    """The final model of a finished run (or `model`, a path recorded elsewhere for it)."""
    path = model or trial.user_attrs.get(MODEL_ATTR)
    if not path:
        raise ConfigError(
            f"run {trial.number} of study '{handle.name}' has no saved final model (state {trial.state.name.lower()})"
        )
    if not Path(path).is_file():
        raise ConfigError(f"run {trial.number} of study '{handle.name}': model file {path} is missing")
    config, hyper = handle.space.fill(handle.decode(trial.params))
    seed = trial.user_attrs.get("seed")
    return Policy(
        handle.name,
        trial.number,
        handle.config_id(trial),
        str(path),
        config,
        None if seed is None else int(seed),
        hyper,
    )


def sidecar_extra(policy: Policy) -> dict[str, Any]:
    """What a rendered file's sidecar says about the run beside its trainer settings: the study (a
    file may travel alone), the training seed and every hyperparameter of the run."""
    return {"study": policy.study, "train_seed": policy.seed, "hyperparameters": policy.hyperparameters}


def find_run(handle: Any, number: int) -> Any:
    """The trial of run `number`, or a ConfigError naming the runs there are."""
    trials = handle.get_trials(deepcopy=False)
    for t in trials:
        if t.number == number:
            return t
    span = f"runs 0..{len(trials) - 1}" if trials else "no runs yet"
    raise ConfigError(f"study '{handle.name}' has no run {number} ({span})")


def mature_policies(handle: Any, root: Path) -> list[Policy]:
    """Every policy judged mature by the latest `rlsweep mature` (all its shards, reseed children's
    runs included): from the verdicts stored in the study, else from runs/<study>/mature/index.json."""
    from rlsweep.analysis.mature import stored
    from rlsweep.errors import StorageError
    from rlsweep.study.view import open_view

    asked, verdicts = stored(handle)
    if asked is not None and verdicts:
        entries: list[dict[str, Any]] = [{"study": v.study, "run": v.run, "model": v.model} for v in verdicts if v.mature]
        where, judged, threshold = f"study '{handle.name}'", len(verdicts), asked.get("threshold")
    else:
        path = root / handle.name / "mature" / "index.json"
        try:
            index = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"no mature verdicts for study '{handle.name}' (none stored, no {path}); run 'rlsweep mature {handle.name} --threshold X' first"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}); run 'rlsweep mature' again") from None
        entries = list(index.get("mature", []))
        where, judged, threshold = str(path), len(index.get("evaluated", [])), index.get("threshold")
    if not entries:
        raise ConfigError(
            f"no policy of study '{handle.name}' is mature ({judged} evaluated, threshold "
            f"{threshold}); run 'rlsweep mature' with a lower --threshold"
        )
    handles = {handle.name: handle}
    policies = []
    for entry in entries:
        name = str(entry.get("study") or handle.name)
        if name not in handles:
            try:
                handles[name] = open_view(name, handle.url)
            except StorageError as exc:
                raise ConfigError(f"{where} lists study '{name}', which cannot be opened: {exc}") from None
            require_policies(handles[name])
        owner = handles[name]
        policies.append(policy_of(owner, find_run(owner, int(entry["run"])), entry.get("model")))
    return policies


def render_record(job: RenderJob, result: Any, shard: Any = None) -> tuple[str, dict[str, Any]]:
    """The study attribute (key, value) that records one written file; the key is the file's own, so
    shards never write the same one."""
    path = str(Path(result.path).resolve())
    extra = job.extra or {}
    record = {
        "path": path,
        "study": extra.get("study"),
        "run": job.run,
        "config_id": job.config_id,
        "seed": result.seed,
        "return": result.episode_return,
        "length": result.length,
        "step": extra.get("step"),
        "final": bool(extra.get("final")),
        "shard": None if shard is None else str(shard),
    }
    return RENDER_PREFIX + hashlib.sha1(path.encode()).hexdigest()[:20], record


def rendered(handle: Any) -> list[dict[str, Any]]:
    """Every file recorded by `render_record` in the study, by path (whether or not it is on this machine)."""
    found = [
        {k: value.get(k) for k in RECORD_COLUMNS}
        for key, value in handle.user_attrs.items()
        if key.startswith(RENDER_PREFIX) and isinstance(value, dict)
    ]
    return sorted(found, key=lambda r: str(r["path"]))


def top_policies(handle: Any, n: int) -> list[Policy]:
    """The final models of every finished run of the best `n` configurations."""
    from rlsweep.analysis.ranking import rank

    if n <= 0:
        raise ConfigError(f"--top must be at least 1, got {n}")
    ranked = rank(handle)[:n]
    if not ranked:
        raise ConfigError(f"study '{handle.name}' has no finished runs to render yet")
    trials = {t.number: t for t in handle.get_trials(deepcopy=False)}
    return [policy_of(handle, trials[number]) for entry in ranked for number in entry.runs]


def checkpoints(trial: Any) -> list[tuple[int, str]]:
    """(step, path) of every checkpoint a run recorded that is still on disk, by step."""
    found = []
    for path in trial.user_attrs.get(CHECKPOINTS_ATTR, []) or []:
        match = CHECKPOINT_STEP.search(str(path))
        if match and Path(path).is_file():
            found.append((int(match.group(1)), str(path)))
    return sorted(found)


def no_checkpoints(handle: Any, trial: Any) -> str:
    """Why run `trial` has no checkpoint to render, and which runs have some."""
    head = f"run {trial.number} of study '{handle.name}'"
    if trial.user_attrs.get(CHECKPOINTS_ATTR):
        return f"{head} has no saved checkpoints (its checkpoint files are missing)"
    every = getattr(getattr(handle.sweep, "checkpoint", None), "every", None)
    if not every:
        return f"{head} has no saved checkpoints (set 'checkpoint: {{every: N}}' in the sweep file)"
    others = [t.number for t in handle.get_trials(deepcopy=False) if checkpoints(t)]
    listed = ", ".join(map(str, others[:12])) + (", ..." if len(others) > 12 else "")
    tail = f"runs with checkpoints: {listed}" if others else "no run of the study has one yet"
    step = int(max(trial.intermediate_values)) if trial.intermediate_values else 0
    if str(trial.state.name) == "RUNNING":
        return f"{head} is still running (step {step}) and has no checkpoint yet; {tail}"
    if step < every:
        return f"{head} stopped at step {step} ({_why_stopped(trial)}) before its first checkpoint at {every}; {tail}"
    return f"{head} reached step {step} but recorded no checkpoint (every {every} steps); {tail}"


def _why_stopped(trial: Any) -> str:
    """'success gate', 'pruned by median', 'pruned by a gate', or the run's state."""
    reason = str(trial.user_attrs.get("stop_reason") or "")
    if reason.startswith("success"):
        return "success gate"
    if reason.startswith("pruned by "):
        return reason.split(" at step ")[0]
    if reason.startswith("gate"):
        return "pruned by a gate"
    state = str(trial.state.name)
    return {"FAIL": "failed", "COMPLETE": "finished"}.get(state, state.lower())


def final_step(handle: Any, trial: Any) -> int:
    """The environment step of a run's final model: its last report, else its budget."""
    if trial.intermediate_values:
        return int(max(trial.intermediate_values))
    return int(handle.sweep.trainer.get("timesteps", 0))


def file_stem(policy: Policy, main_study: str) -> str:
    """`run17` for the study's own runs, `<child>-run3` for a reseed child's."""
    return f"run{policy.run}" if policy.study == main_study else f"{policy.study}-run{policy.run}"


def policy_jobs(policies: Iterable[Policy], out_dir: Path, main_study: str, **render: Any) -> list[RenderJob]:
    """One job per policy: `<out_dir>/run17.gif` (several episodes: `run17-seed<s>.gif`)."""
    fmt = render.get("fmt", "gif")
    return [
        RenderJob(
            model_path=p.model,
            config=p.config,
            out_path=out_dir / f"{file_stem(p, main_study)}.{fmt}",
            run=p.run,
            config_id=p.config_id,
            extra=sidecar_extra(p),
            **render,
        )
        for p in policies
    ]


def timeline(handle: Any, number: int, out_dir: Path, **render: Any) -> list[RenderJob]:
    """Every saved checkpoint of run `number` plus its final model, on the same episode seed:
    `<out_dir>/run<N>-checkpoints/step-000002048.gif` ... and `step-<final>-final.gif`."""
    trial = find_run(handle, number)
    saved = checkpoints(trial)
    if not saved:
        raise ConfigError(no_checkpoints(handle, trial))
    final = policy_of(handle, trial)
    folder = out_dir / f"run{number}-checkpoints"
    who = sidecar_extra(final)
    common = {"run": number, "config_id": final.config_id, "extra": who, **render}
    step = final_step(handle, trial)
    # A checkpoint taken at the final step holds the final model: render it once, as the final.
    jobs = timeline_jobs([(s, p) for s, p in saved if s != step], final.config, folder, **common)
    fmt = render.get("fmt", "gif")
    jobs.append(
        RenderJob(
            model_path=final.model,
            config=final.config,
            out_path=folder / f"step-{step:09d}-final.{fmt}",
            run=number,
            config_id=final.config_id,
            extra={**who, "step": step, "final": True},
            **render,
        )
    )
    return jobs
