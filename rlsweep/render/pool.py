"""Render many policies at once over a pool of spawned processes (one torch thread each).

Jobs are plain picklable records, so the pool works with the spawn start method (the only safe one
once torch or pygame are loaded); one failing job is reported and does not stop the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from rlsweep.render.episodes import DEFAULT_LOAD_POLICY, DEFAULT_MAKE_ENV, RenderResult, render_policy


@dataclass
class RenderJob:
    """The arguments of one `render_policy` call."""

    model_path: str | Path
    config: dict[str, Any]
    out_path: str | Path
    episodes: int = 1
    seed: int = 0
    fmt: Literal["gif", "mp4"] = "gif"
    fps: float = 30
    size: tuple[int, int] | None = None
    overlay: bool = True
    run: int | None = None
    config_id: str | None = None
    max_steps: int = 1000
    make_env: str | Callable[..., Any] | None = DEFAULT_MAKE_ENV  # None: the trainer's hooks
    load_policy: str | Callable[..., Any] | None = DEFAULT_LOAD_POLICY
    extra: dict[str, Any] | None = None  # more sidecar entries (study, step, ...)


@dataclass
class RenderOutcome:
    """A job and its files, or the one-line reason it failed."""

    job: RenderJob
    results: list[RenderResult] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _init_worker() -> None:
    # Rendering is one process per core; a policy's forward pass must not spawn threads of its own.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def _run(job: RenderJob) -> RenderOutcome:
    kwargs = asdict(job)
    try:
        results = render_policy(
            kwargs.pop("model_path"), kwargs.pop("config"), kwargs.pop("out_path"), **kwargs
        )
    except Exception as exc:  # reported per job; the pool carries on
        return RenderOutcome(job, error=f"{type(exc).__name__}: {exc}")
    return RenderOutcome(job, results)


def render_many(jobs: Sequence[RenderJob], workers: int | None = None) -> list[RenderOutcome]:
    """Run every job, `workers` at a time (default: the number of cores), and return the outcomes in
    job order. With one worker (or one job) everything runs in this process."""
    jobs = list(jobs)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    if workers == 1:
        return [_run(job) for job in jobs]
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker
    ) as pool:
        return list(pool.map(_run, jobs))


def timeline_jobs(
    checkpoints: Sequence[tuple[int, str | Path]],
    config: dict[str, Any],
    out_dir: str | Path,
    **job_kwargs: Any,
) -> list[RenderJob]:
    """One job per saved checkpoint of a run, given as (environment step, path), all on the same
    episode seed so the files show how the behaviour developed (`<out_dir>/step-000050000.gif`).
    Each sidecar records its checkpoint's `step`."""
    fmt = job_kwargs.get("fmt", "gif")
    extra = dict(job_kwargs.pop("extra", None) or {})
    return [
        RenderJob(
            model_path=path,
            config=config,
            out_path=Path(out_dir) / f"step-{step:09d}.{fmt}",
            extra={**extra, "step": int(step)},
            **job_kwargs,
        )
        for step, path in sorted(checkpoints, key=lambda item: item[0])
    ]
