"""`rlsweep.Study`: one study opened from its storage, with the analyses as methods returning data
(pandas DataFrames, paths) instead of printing. The CLI's read commands print what these return."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlsweep import states
from rlsweep.api.engine import Echo, RunResult, silent

if TYPE_CHECKING:
    from rlsweep.analysis.shards import Shard


class Study:
    """A study in its storage: `rlsweep.load(name)`, or what `rlsweep.run(sweep)` returns."""

    def __init__(self, handle: Any, result: RunResult | None = None) -> None:
        self.handle = handle
        self.result = result  # how the `run` that returned this study ended (None when loaded)

    # ------------------------------------------------------------------ facts
    @property
    def name(self) -> str:
        return str(self.handle.name)

    @property
    def url(self) -> str:
        return str(self.handle.url)

    @property
    def sweep(self) -> Any:
        """The stored sweep as an `rlsweep.Sweep`."""
        from rlsweep.api.sweep import Sweep

        return Sweep._of(self.handle.loaded)

    def counts(self) -> dict[str, int]:
        """Runs by state: waiting, running, done, pruned, failed, lost, interrupted."""
        return dict(self.handle.row_counts())

    def ranking(self, *, by: str = "mean", min_seeds: int = 1, include_pending: bool = False) -> Any:
        """The study's one ranking (`rlsweep.analysis.ranking.rank`): every command orders by it.

        Configurations over seeds (pruned seeds at their last value; failed ones left out and counted;
        fewer than `min_seeds` seeds, or seeds still to run unless `include_pending`: in `.unranked`),
        or a population study's members by their newest generation. A racing study's entries say why
        they got their seeds (`race_reason`)."""
        from rlsweep.analysis.ranking import rank
        from rlsweep.errors import ConfigError
        from rlsweep.strategies import POPULATION

        if by not in ("mean", "iqm"):
            raise ConfigError(f"by must be 'mean' or 'iqm', got {by!r}")
        if min_seeds < 1:
            raise ConfigError(f"min_seeds must be at least 1, got {min_seeds}")
        if min_seeds > 1 and self.handle.sweep.strategy.name in POPULATION:
            raise ConfigError(
                f"study '{self.name}' is a population study ({self.handle.sweep.strategy.name}): its members are "
                "ranked by their newest generation, one run each; min_seeds does not apply"
            )
        return rank(self.handle.view(), statistic=by, min_seeds=min_seeds, include_pending=include_pending)

    def ranked(self, n: int | None = None, *, by: str = "mean", min_seeds: int = 1) -> list[Any]:
        """The ranked entries of `ranking()`, best first (RankedConfig, or RankedMember records)."""
        entries = list(self.ranking(by=by, min_seeds=min_seeds).entries)
        return entries if n is None else entries[:n]

    # ------------------------------------------------------------------ tables
    def top(self, n: int = 10, *, by: str = "mean", min_seeds: int = 1) -> Any:
        """The numbers `rlsweep top` prints, one row per configuration (or member), best first (index:
        rank). A configuration with fewer than 2 seeds has no interval or std (NaN)."""
        import pandas as pd

        ranking = self.ranking(by=by, min_seeds=min_seeds)
        rows = []
        if ranking.kind == "members":
            for m in ranking.entries[:n]:
                rows.append(
                    {"rank": m.rank, "member": m.member, "run": m.run, "generation": m.generation, "value": m.score,
                     "generations": m.generations, "exploits": m.exploits, "config_id": m.config_id,
                     "schedule": m.schedule_text(), **m.values}
                )  # fmt: skip
            columns = ["rank", "member", "run", "generation", "value", "generations", "exploits", "config_id", "schedule"]
        else:
            for r in ranking.entries[:n]:
                s = r.summary
                rows.append(
                    {"rank": r.rank, "config_id": r.config_id, "seeds": s.n, "mean": s.mean, "std": s.std, "iqm": s.iqm,
                     "ci_low": s.ci_low, "ci_high": s.ci_high, "pruned": r.pruned, "failed": r.failed,
                     "runs": list(r.runs), **r.values}
                )  # fmt: skip
            columns = ["rank", "config_id", "seeds", "mean", "std", "iqm", "ci_low", "ci_high", "pruned", "failed", "runs"]
        return pd.DataFrame(rows, columns=columns + [k for k in (rows[0] if rows else {}) if k not in columns]).set_index("rank")

    def runs(self) -> Any:
        """One row per run: number, state, value, seed, config_id, reason, duration and its searched values."""
        import pandas as pd

        from rlsweep.analysis.export import run_rows

        rows = []
        for r in run_rows(self.handle.view()):
            reason = r["failure_reason"] or r["stop_reason"]
            rows.append(
                {
                    "run": r["number"],
                    "state": r["state"],
                    "value": r["value"],
                    "seed": r["seed"],
                    "config_id": r["config_id"],
                    "reason": reason,
                    "duration_s": r["duration_s"],
                    **r["params"],
                }
            )
        return pd.DataFrame(rows)

    def curves(self, metric: str | None = None) -> Any:
        """Learning curves in long format: run, config_id, seed, step, value (and name without `metric`)."""
        import pandas as pd

        trials = {t.number: t for t in self.handle.study.get_trials(deepcopy=False) if "seed" in t.user_attrs}
        names = None if metric is None else [metric]
        rows = []
        for m in self.handle.metrics(list(trials), names):
            t = trials.get(m["trial_number"])
            if t is None:
                continue
            row = {"run": t.number, "config_id": self.handle.config_id(t), "seed": t.user_attrs["seed"], "step": m["step"]}
            if metric is None:
                row["name"] = m["name"]
            row["value"] = m["value"]
            rows.append(row)
        columns = ["run", "config_id", "seed", "step", *(["name"] if metric is None else []), "value"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values(["run", "step"], kind="stable").reset_index(drop=True)

    def lineage(self, member: int | None = None) -> Any:
        """A population study's winner (or `member`): one row per generation of its ancestry."""
        import pandas as pd


        chain = self.ancestry(member)
        return pd.DataFrame([{**vars(r), "score": None if math.isnan(r.score) else r.score} for r in chain])

    def ancestry(self, member: int | None = None) -> list[Any]:
        """The ancestry records of the winner (or `member`'s newest run), oldest first."""
        from rlsweep.analysis import lineage
        from rlsweep.api.children import POPULATION
        from rlsweep.errors import ConfigError

        sweep = self.handle.sweep
        if sweep.strategy.name not in POPULATION:
            raise ConfigError(f"study '{self.name}' uses strategy '{sweep.strategy.name}'; lineage needs pbt, pb2 or pb2_mixed")
        runs = self.population_runs()
        if not runs:
            return []
        if member is not None:
            try:
                last = lineage.latest(runs, member)
            except ValueError as exc:
                raise ConfigError(f"--member: {exc}") from None
        else:
            last = lineage.winner(runs, sweep.objective.mode)
        return list(lineage.ancestry(runs, last))

    def population_runs(self) -> list[Any]:
        from rlsweep.analysis import lineage

        return list(
            lineage.population_runs(
                self.handle.study.get_trials(deepcopy=False), self.handle.decode, interval=self.handle.sweep.strategy.interval
            )
        )

    # ------------------------------------------------------------------ files
    def export(self, format: str = "csv", out: str | Path | None = None, *, trajectories: bool = False) -> list[Path]:
        """Runs, values, attributes and learning curves as CSV, JSON or Parquet files; with
        `trajectories`, also the runs' recorded per-step data gathered into trajectories.parquet (and
        batches.parquet). Returns the paths written."""
        from rlsweep.analysis.export import export_study, export_trajectories
        from rlsweep.errors import ConfigError

        if format not in ("csv", "json", "parquet"):
            raise ConfigError(f"format must be csv, json or parquet, got {format!r}")
        folder = Path(out or f"runs/{self.name}/export")
        view = self.handle.view()
        extra = export_trajectories(view, folder) if trajectories else []  # its error comes before any file
        return [*export_study(view, folder, format), *extra]

    def report(self, out: str | Path | None = None, *, top: int = 10) -> Path:
        """Write the static HTML report; returns its index.html."""
        from rlsweep.errors import ConfigError
        from rlsweep.report.study import build_study_report

        if top < 1:
            raise ConfigError(f"--top must be at least 1, got {top}")
        return Path(build_study_report(self.handle.view(), None if out is None else str(out), top=top))

    # ------------------------------------------------------------------ policies
    def mature(
        self,
        threshold: float,
        *,
        episodes: int = 20,
        statistic: str = "mean",
        source: str = "auto",
        workers: int | None = None,
        shard: str | tuple[int, int] | Shard | None = None,
        echo: Echo = silent,
    ) -> Any:
        """Evaluate final policies on held-out seeds, keep those with `statistic` >= `threshold`
        (links in runs/<study>/mature/index.json). Returns one row per policy judged here, best first.

        `shard="K/N"` evaluates only shard K's share of the policies (another machine runs the
        others); each verdict is stored in the study under a key of its own, so `mature_results()`,
        the report and `render(mature=True)` see every shard's."""
        import os

        from rlsweep.analysis import mature as m
        from rlsweep.analysis.shards import parse_shard
        from rlsweep.errors import ConfigError
        from rlsweep.trainers import policy_trainer

        check_mature_options(episodes)
        if statistic not in ("mean", "iqm", "median", "min"):
            raise ConfigError(f"statistic must be mean, iqm, median or min, got {statistic!r}")
        if source not in ("auto", "search", "reseed", "all"):
            raise ConfigError(f"source must be auto, search, reseed or all, got {source!r}")
        part = parse_shard(shard)
        policy_trainer(self.handle.sweep.trainer, "mature", self.name)
        asked = m.request(threshold, statistic, episodes, source)
        # Every shard writes the same request (no read-modify-write): it names the verdicts that count.
        self.handle.study.set_user_attr(m.REQUEST_ATTR, asked)
        view = self.handle.view()
        runs = m.listed(view, source)
        self.mature_listed = len(runs)  # policies over all shards
        verdicts = m.judge(
            view, threshold, episodes, how=statistic, source=source, workers=workers or os.cpu_count() or 1,
            shard=part, runs=runs, echo=echo, store=_store_returns,
        )  # fmt: skip
        for v in verdicts:
            self.handle.study.set_user_attr(m.verdict_key(v), m.stored_form(v, asked, part))
        everything = verdicts if part is None else m.stored(self.handle.view())[1]
        self.mature_index = None
        if everything:
            self.mature_index = m.gather(
                everything, Path("runs") / self.name / "mature", threshold=threshold, how=statistic, episodes=episodes,
                only=None if part is None else verdicts,
            )  # fmt: skip
        return _verdict_frame(verdicts, statistic)

    def mature_results(self) -> Any:
        """Every verdict stored for the latest `mature` request (all shards'), best first, with the
        request's statistic as a column; the request itself is in `.attrs["request"]`."""
        from rlsweep.analysis.mature import stored

        asked, verdicts = stored(self.handle.view())
        frame = _verdict_frame(verdicts, (asked or {}).get("statistic", "mean"))
        frame.attrs["request"] = asked
        return frame

    def rendered(self) -> Any:
        """Every file `render` recorded in the study (all shards' and machines'): path, study, run,
        config_id, seed, return, length, step (checkpoint timelines), shard."""
        import pandas as pd

        from rlsweep.render.study import RECORD_COLUMNS, rendered

        return pd.DataFrame(rendered(self.handle.view()), columns=list(RECORD_COLUMNS))

    def render(
        self,
        *,
        mature: bool = False,
        top: int | None = None,
        run: int | None = None,
        checkpoints: bool = False,
        episodes: int = 1,
        seed: int = 0,
        format: str = "gif",
        fps: float = 30,
        size: tuple[int, int] | None = None,
        overlay: bool = True,
        max_steps: int = 1000,
        workers: int | None = None,
        out: str | Path | None = None,
        shard: str | tuple[int, int] | Shard | None = None,
        echo: Echo = silent,
    ) -> list[Any]:
        """Record episodes of the mature policies, the `top` configurations' best runs, one `run`, or
        one run at every saved checkpoint; returns the outcomes (each with `.results[i].path`).

        `shard="K/N"` renders only shard K's share of the jobs (split on their output paths); every
        written file is recorded in the study under a key of its own (`rendered()`, the report)."""
        import os

        from rlsweep.analysis.shards import parse_shard
        from rlsweep.render import study as select
        from rlsweep.render.pool import render_many

        options = render_options(
            mature=mature, top=top, run=run, checkpoints=checkpoints, episodes=episodes, seed=seed, format=format,
            fps=fps, size=size, overlay=overlay, max_steps=max_steps, workers=workers,
        )  # fmt: skip
        part = parse_shard(shard)
        handle = self.handle.view()
        select.require_policies(handle)
        root = Path("runs")
        out_dir = Path(out) if out else root / handle.name / "render"
        if mature:
            jobs = select.policy_jobs(select.mature_policies(handle, root), out_dir, handle.name, **options)
        elif top is not None:
            jobs = select.policy_jobs(select.top_policies(handle, top), out_dir, handle.name, **options)
        elif checkpoints and run is not None:
            jobs = select.timeline(handle, run, out_dir, **options)
        elif run is not None:
            policy = select.policy_of(handle, select.find_run(handle, run))
            jobs = select.policy_jobs([policy], out_dir, handle.name, **options)
        if part is not None:
            total = len(jobs)
            jobs = part.take(jobs, key=lambda job: str(job.out_path))
            echo(f"shard {part}: {len(jobs)} of {total} render jobs")
        n = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        echo(f"rendering {len(jobs)} polic{'y' if len(jobs) == 1 else 'ies'} x {episodes} episode(s) on {n} process(es)")
        outcomes = list(render_many(jobs, n)) if jobs else []
        for outcome in outcomes:
            for result in outcome.results:
                key, record = select.render_record(outcome.job, result, part)
                self.handle.study.set_user_attr(key, record)
        return outcomes

    # ------------------------------------------------------------------ more runs
    def reseed(
        self,
        top: int = 5,
        seeds: int = 10,
        *,
        by: str = "mean",
        name: str | None = None,
        workers: int | None = None,
        progress: Any = None,
        progress_every: float = 10.0,
        echo: Echo = silent,
    ) -> Study:
        """Re-train the top configurations on fresh, held-out seeds in a linked child study; returns it."""
        from rlsweep.api.children import reseed_child

        child = reseed_child(self.handle, top, seeds, name=name, statistic=by)
        s = child.sweep.strategy
        echo(
            f"reseed: {len(s.configs)} configuration(s) of '{self.name}' x {s.seeds} seeds "
            f"(seed numbers {s.seed_offset}..{s.seed_offset + s.seeds - 1}, unused by the parent) -> study '{child.name}'"
        )
        return _run_child(
            child, workers, progress, progress_every, echo, idle=f"nothing left to run; see 'rlsweep top {child.name} --storage ...'"
        )

    def replay(
        self,
        seeds: int = 5,
        *,
        member: int | None = None,
        static: str = "initial",
        name: str | None = None,
        workers: int | None = None,
        progress: Any = None,
        progress_every: float = 10.0,
        echo: Echo = silent,
    ) -> Study:
        """Re-train a population winner's schedule from scratch on fresh seeds against a static
        configuration, in a linked child study; the child's `replay_results()` compares the arms."""
        from rlsweep.api.children import replay_child
        from rlsweep.errors import ConfigError

        if workers is not None and workers <= 0:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        made = replay_child(self.handle, seeds, member=member, static=static, name=name)
        child, plan, loaded = made.handle, made.plan, made.loaded
        first = loaded.sweep.seed
        metric = self.handle.sweep.objective.metric
        echo(
            f"replay of '{self.name}': run {plan.last.number} (member {plan.last.member}, generation {plan.last.generation}, "
            f"{metric} = {_fmt(plan.last.score)}), {len(plan.segments)} segment(s), {plan.steps} steps"
        )
        echo(f"static arm: {_static_label(plan)}: {_values(plan.static_values)}")
        echo(f"{seeds} fresh seeds {first}..{first + seeds - 1} per arm -> study '{child.name}'")
        return _run_child(child, workers, progress, progress_every, echo)

    def replay_results(self) -> dict[str, Any]:
        """A replay child's arms ('schedule', 'static'), each with its seed summary."""
        from rlsweep.analysis import replay

        return dict(replay.results(self.handle.study.get_trials(deepcopy=False), self.handle.decode))

    # ------------------------------------------------------------------ notebooks
    def __repr__(self) -> str:
        from rlsweep.api.engine import format_counts
        from rlsweep.storage import redact

        return f"Study({self.name!r} in {redact(self.url)}: {format_counts(self.counts())})"

    def _repr_html_(self) -> str:
        import html

        from rlsweep.api.engine import format_counts
        from rlsweep.storage import redact

        sweep = self.handle.sweep
        head = (
            f"<b>{html.escape(self.name)}</b> in <code>{html.escape(redact(self.url))}</code><br>"
            f"strategy {html.escape(sweep.strategy.name)}, trainer {html.escape(str(sweep.trainer.get('kind')))}, "
            f"objective {html.escape(sweep.objective.metric)} ({sweep.objective.mode}); runs: {html.escape(format_counts(self.counts()))}"
        )
        top = self.top(5)
        if top.empty:
            return head + "<br><i>no finished runs yet</i>"
        shown = top.drop(columns=["runs"], errors="ignore")
        return head + shown.to_html(float_format=lambda v: f"{v:.4g}", na_rep="-")


def check_mature_options(episodes: int) -> None:
    from rlsweep.errors import ConfigError

    if episodes <= 0:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")


def render_options(
    *, mature: bool, top: int | None, run: int | None, checkpoints: bool, episodes: int, seed: int, format: str,
    fps: float, size: tuple[int, int] | None, overlay: bool, max_steps: int, workers: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Check render's options (before any study is opened) and return those a render job takes."""
    from rlsweep.errors import ConfigError

    if sum(bool(x) for x in (mature, top is not None, run is not None)) != 1:
        raise ConfigError("render needs exactly one of mature=True, top=N or run=N")
    if checkpoints and run is None:
        raise ConfigError("--checkpoints needs --run N (the run whose checkpoints to render)")
    for name, value in (("--episodes", episodes), ("--max-steps", max_steps), ("--workers", workers or 1)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if not fps > 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if format not in ("gif", "mp4"):
        raise ConfigError(f"format must be gif or mp4, got {format!r}")
    return {"episodes": episodes, "seed": seed, "fmt": format, "fps": fps, "size": size, "overlay": overlay, "max_steps": max_steps}


def _verdict_frame(verdicts: list[Any], statistic: str) -> Any:
    import pandas as pd

    rows = [
        {"study": v.study, "run": v.run, "config_id": v.config_id, "seed": v.seed, statistic: v.score,
         "min": min(v.returns), "max": max(v.returns), "mature": v.mature, "model": v.model}
        for v in verdicts
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["study", "run", "config_id", "seed", statistic, "min", "max", "mature", "model"])


def _store_returns(handle: Any, candidate: Any, returns: list[float]) -> None:
    """Keep maturity episodes' returns in the metrics table, so a later threshold needs no re-evaluation."""
    import time

    from rlsweep.analysis.mature import METRIC

    rows = [
        {"study": handle.name, "trial_id": candidate.trial_id, "trial_number": candidate.number, "step": k,
         "name": METRIC, "value": float(v), "wall_time": time.time()}
        for k, v in enumerate(returns)
    ]  # fmt: skip
    from rlsweep import storage

    # `handle` is the read-only view judge() was given (or a child's): the API layer writes.
    with storage.aux_engine(handle.url).begin() as con:
        con.execute(storage.tables()[2].insert(), rows)


def _run_child(
    child: Any, workers: int | None, progress: Any, progress_every: float, echo: Echo, *, idle: str | None = None
) -> Study:
    """Run a just-queued child study to the end (nothing to do when it is already finished)."""
    from rlsweep.api.engine import default_workers, supervise

    counts = child.row_counts()
    if not counts.get(states.WAITING) and not counts.get(states.RUNNING):
        if idle:
            echo(idle)
        return Study(child, RunResult(child.name, child.url, 0, counts))
    result = supervise(
        child, default_workers(child.sweep, workers), progress=progress, progress_every=progress_every, echo=echo
    )
    if result.code == 130:
        raise KeyboardInterrupt
    return Study(child, result)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _static_label(plan: Any) -> str:
    r = plan.static_from
    what = "the schedule's initial configuration" if plan.static == "initial" else "the best generation-0 configuration"
    return f"{what} (run {r.number}, member {r.member})"


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(values.items())) or "no searched values"
