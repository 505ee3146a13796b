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
    import sys

    from rlsweep.api import Study
    from rlsweep.errors import ConfigError

    if args.workers is not None and args.workers <= 0:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    parent = Study(open_handle(args))
    try:
        child = parent.replay(
            args.seeds,
            member=args.member,
            static=args.static,
            name=args.name,
            workers=args.workers,
            progress=sys.stdout,
            progress_every=1e9 if args.quiet else 10.0,
            echo=lambda message: print(message, flush=True),
        )
    except KeyboardInterrupt:
        return 130
    if child.result is not None and child.result.started:
        print(f"next: rlsweep top {child.name}")
    objective = parent.handle.sweep.objective
    print_results(child.replay_results(), objective.metric, objective.mode)
    return child.result.code if child.result is not None else 0


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
