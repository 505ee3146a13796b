"""`rlsweep replay STUDY --seeds 5`: the winner's hyperparameter schedule, re-trained from scratch on
fresh seeds, against the best static configuration on the same seeds (a linked child study)."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, fmt, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "replay",
        help="re-train a population winner's schedule on fresh seeds vs a static configuration",
        description=__doc__,
    )
    add_study_args(p)
    p.add_argument("--seeds", type=int, default=5, help="fresh seeds per arm (default 5)")
    p.add_argument(
        "--workers", type=int, help="local worker processes (default: strategy.workers, else cores)"
    )
    p.add_argument("--member", type=int, help="replay this member's newest ancestry instead of the winner's")
    p.add_argument(
        "--static",
        choices=("initial", "best0"),
        default="initial",
        help="static arm: the schedule's first configuration (default) or the best generation-0 one",
    )
    p.add_argument("--name", help="child study name (default STUDY-replay)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    return p


def execute(args: argparse.Namespace) -> int:
    import json
    import os

    from rlsweep.analysis import replay
    from rlsweep.analysis.reseed import start_child
    from rlsweep.cli.lineage import POPULATION
    from rlsweep.cli.run import supervise
    from rlsweep.config import load_sweep
    from rlsweep.errors import ConfigError, StorageError
    from rlsweep.study import SWEEP_ATTR, StudyHandle

    if args.seeds <= 0:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    if args.workers is not None and args.workers <= 0:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    parent = open_handle(args)
    if parent.sweep.strategy.name not in POPULATION:
        raise ConfigError(
            f"study '{parent.name}' uses strategy '{parent.sweep.strategy.name}'; replay needs pbt, pb2 or pb2_mixed"
        )
    trials = parent.study.get_trials(deepcopy=False)
    runs = replay.load_runs(parent)
    try:
        plan = replay.plan_replay(
            runs, parent.name, mode=parent.sweep.objective.mode, member=args.member, static=args.static
        )
    except ValueError as exc:
        raise ConfigError(f"--member: {exc}") from None
    data = replay.child_sweep(
        parent.loaded.to_dict(),
        plan,
        args.seeds,
        name=args.name,
        first_seed=replay.fresh_seed(trials, parent.sweep.seed),
    )
    loaded = load_sweep(data, file=f"<replay of {parent.name}>")
    try:
        existing = StudyHandle.load(loaded.sweep.study, parent.url)
    except StorageError:
        existing = None
    if existing is not None and existing.study.user_attrs.get(SWEEP_ATTR) != json.dumps(
        loaded.to_dict(), sort_keys=True
    ):
        raise ConfigError(
            f"study '{loaded.sweep.study}' exists with another replay plan (the winner, seeds or options changed); "
            "give --name to start another replay beside it"
        )
    child = start_child(parent, loaded)
    first = loaded.sweep.seed
    print(
        f"replay of '{parent.name}': run {plan.last.number} (member {plan.last.member}, generation {plan.last.generation}, "
        f"{parent.sweep.objective.metric} = {fmt(plan.last.score)}), {len(plan.segments)} segment(s), {plan.steps} steps"
    )
    print(f"static arm: {_static_label(plan)}: {_values(plan.static_values)}")
    print(
        f"{args.seeds} fresh seeds {first}..{first + args.seeds - 1} per arm -> study '{child.name}'",
        flush=True,
    )
    counts = child.row_counts()
    code = 0
    if counts.get("waiting") or counts.get("running"):
        n_workers = args.workers or loaded.sweep.strategy.workers or os.cpu_count() or 1
        code = supervise(child, n_workers, quiet=args.quiet)
        if code == 130:
            return code
    arms = replay.results(child.study.get_trials(deepcopy=False), child.decode)
    print_results(arms, parent.sweep.objective.metric, parent.sweep.objective.mode)
    return code


def print_results(arms: dict[str, Any], metric: str, mode: str) -> None:
    header = ["arm", "seeds", "mean", "std", "IQM", "95% CI (mean)", "failed"]
    rows = [
        [
            a.arm,
            str(a.summary.n),
            fmt(a.summary.mean),
            fmt(a.summary.std),
            fmt(a.summary.iqm),
            f"[{fmt(a.summary.ci_low)}, {fmt(a.summary.ci_high)}]",
            str(a.failed),
        ]
        for a in arms.values()
    ]
    print(f"final {metric} ({mode}):")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    s, t = arms["schedule"].summary, arms["static"].summary
    if s.n and t.n:
        sign = 1.0 if mode == "max" else -1.0
        verdict = (
            "schedule better"
            if sign * (s.mean - t.mean) > 0
            else "static better"
            if s.mean != t.mean
            else "tie"
        )
        print(
            f"difference (schedule - static): mean {s.mean - t.mean:+.4g}, IQM {s.iqm - t.iqm:+.4g} ({verdict} on the mean)"
        )


def _static_label(plan: Any) -> str:
    r = plan.static_from
    what = (
        "the schedule's initial configuration"
        if plan.static == "initial"
        else "the best generation-0 configuration"
    )
    return f"{what} (run {r.number}, member {r.member})"


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(values.items())) or "no searched values"
