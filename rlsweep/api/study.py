"""`rlsweep.Study`: one study opened from its storage, with the analyses as methods returning data
(pandas DataFrames, paths) instead of printing. The CLI's read commands print what these return."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rlsweep.api.engine import Echo, RunResult, silent


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

    def ranked(self, n: int | None = None, *, by: str = "mean") -> list[Any]:
        """Configurations best first (the ranking every command uses), as RankedConfig records."""
        from rlsweep.analysis.ranking import rank
        from rlsweep.errors import ConfigError

        if by not in ("mean", "iqm"):
            raise ConfigError(f"by must be 'mean' or 'iqm', got {by!r}")
        ranked = rank(self.handle, statistic=by)
        return ranked if n is None else ranked[:n]

    # ------------------------------------------------------------------ tables
    def top(self, n: int = 10, *, by: str = "mean") -> Any:
        """The numbers `rlsweep top` prints, one row per configuration, best first (index: rank)."""
        import pandas as pd

        rows = []
        for i, r in enumerate(self.ranked(n, by=by), 1):
            s = r.summary
            rows.append(
                {
                    "rank": i,
                    "config_id": r.config_id,
                    "seeds": s.n,
                    "mean": s.mean,
                    "std": s.std,
                    "iqm": s.iqm,
                    "ci_low": s.ci_low,
                    "ci_high": s.ci_high,
                    "pruned": r.pruned,
                    "failed": r.failed,
                    "runs": list(r.runs),
                    **r.values,
                }
            )
        columns = ["rank", "config_id", "seeds", "mean", "std", "iqm", "ci_low", "ci_high", "pruned", "failed", "runs"]
        return pd.DataFrame(rows, columns=columns + [k for k in (rows[0] if rows else {}) if k not in columns]).set_index("rank")

    def runs(self) -> Any:
        """One row per run: number, state, value, seed, config_id, reason, duration and its searched values."""
        import pandas as pd

        from rlsweep.analysis.export import run_rows

        rows = []
        for r in run_rows(self.handle):
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
    def export(self, format: str = "csv", out: str | Path | None = None) -> list[Path]:
        """Runs, values, attributes and learning curves as CSV, JSON or Parquet files; returns their paths."""
        from rlsweep.analysis.export import export_study
        from rlsweep.errors import ConfigError

        if format not in ("csv", "json", "parquet"):
            raise ConfigError(f"format must be csv, json or parquet, got {format!r}")
        return list(export_study(self.handle, Path(out or f"runs/{self.name}/export"), format))

    def report(self, out: str | Path | None = None, *, top: int = 10) -> Path:
        """Write the static HTML report; returns its index.html."""
        from rlsweep.errors import ConfigError
        from rlsweep.report.study import build_study_report

        if top < 1:
            raise ConfigError(f"--top must be at least 1, got {top}")
        return Path(build_study_report(self.handle, None if out is None else str(out), top=top))

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
        import os

        from rlsweep.api.children import reseed_child
        from rlsweep.api.engine import supervise

        child = reseed_child(self.handle, top, seeds, name=name, statistic=by)
        s = child.sweep.strategy
        echo(
            f"reseed: {len(s.configs)} configuration(s) of '{self.name}' x {s.seeds} seeds "
            f"(seed numbers {s.seed_offset}..{s.seed_offset + s.seeds - 1}, unused by the parent) -> study '{child.name}'"
        )
        counts = child.row_counts()
        if not counts.get("waiting") and not counts.get("running"):
            echo(f"nothing left to run; see 'rlsweep top {child.name} --storage ...'")
            return Study(child, RunResult(child.name, child.url, 0, counts))
        result = supervise(child, workers or s.workers or os.cpu_count() or 1, progress=progress, progress_every=progress_every, echo=echo)
        _raise_if_interrupted(result)
        return Study(child, result)

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
        import os

        from rlsweep.api.children import replay_child
        from rlsweep.api.engine import supervise
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
        counts = child.row_counts()
        result = RunResult(child.name, child.url, 0, counts)
        if counts.get("waiting") or counts.get("running"):
            result = supervise(child, workers or loaded.sweep.strategy.workers or os.cpu_count() or 1, progress=progress, progress_every=progress_every, echo=echo)
            _raise_if_interrupted(result)
        return Study(child, result)

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
        shown = top.drop(columns=["runs"])
        return head + shown.to_html(float_format=lambda v: f"{v:.4g}", na_rep="-")


def _raise_if_interrupted(result: RunResult) -> None:
    if result.code == 130:
        raise KeyboardInterrupt


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _static_label(plan: Any) -> str:
    r = plan.static_from
    what = "the schedule's initial configuration" if plan.static == "initial" else "the best generation-0 configuration"
    return f"{what} (run {r.number}, member {r.member})"


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(values.items())) or "no searched values"
