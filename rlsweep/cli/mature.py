"""`rlsweep mature STUDY --threshold 475 --episodes 20`: evaluate final policies on held-out seeds; keep those above the line."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, fmt, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("mature", help="evaluate final policies and gather those above a threshold", description=__doc__)
    add_study_args(p)
    p.add_argument("--threshold", type=float, required=True, help="a policy is mature when its statistic is at least this")
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes per policy (default 20)")
    p.add_argument("--statistic", choices=("mean", "iqm", "median", "min"), default="mean")
    p.add_argument("--source", choices=("auto", "search", "reseed", "all"), default="auto", help="auto: the reseed study if there is one, else the search")
    p.add_argument("--workers", type=int, help="evaluation processes (default: cores)")
    return p


def execute(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from rlsweep.analysis.mature import gather, judge
    from rlsweep.errors import ConfigError

    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be at least 1, got {args.episodes}")
    handle = open_handle(args)
    from rlsweep.trainers import policy_trainer

    policy_trainer(handle.sweep.trainer, "mature", handle.name)
    verdicts = judge(handle, args.threshold, args.episodes, how=args.statistic, source="reseed" if args.source == "reseed" else args.source, workers=args.workers or os.cpu_count() or 1)
    if not verdicts:
        print(f"no finished runs with a saved model in '{handle.name}'")
        return 1
    index = gather(verdicts, Path("runs") / handle.name / "mature", threshold=args.threshold, how=args.statistic, episodes=args.episodes)
    table = Table(title=f"{handle.name}: {sum(v.mature for v in verdicts)} of {len(verdicts)} policies mature ({args.statistic} of {args.episodes} episodes >= {fmt(args.threshold)})")
    for col in ("study", "run", "config", "seed", args.statistic, "min", "max", "mature"):
        table.add_column(col)
    for v in verdicts:
        table.add_row(v.study, str(v.run), v.config_id, str(v.seed), fmt(v.score), fmt(min(v.returns)), fmt(max(v.returns)), "yes" if v.mature else "no")
    Console(width=160).print(table)
    print(f"wrote {index}")
    return 0
