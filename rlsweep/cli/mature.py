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

    from rich.console import Console
    from rich.table import Table

    from rlsweep.api import Study
    from rlsweep.api.study import check_mature_options

    check_mature_options(args.episodes)
    study = Study(open_handle(args))
    verdicts = study.mature(
        args.threshold, episodes=args.episodes, statistic=args.statistic, source=args.source, workers=args.workers,
        echo=lambda message: print(message, flush=True),
    )  # fmt: skip
    if verdicts.empty:
        print(f"no finished runs with a saved model in '{study.name}'")
        return 1
    handle, index = study.handle, study.mature_index
    table = Table(title=f"{handle.name}: {int(verdicts['mature'].sum())} of {len(verdicts)} policies mature ({args.statistic} of {args.episodes} episodes >= {fmt(args.threshold)})")
    for col in ("study", "run", "config", "seed", args.statistic, "min", "max", "mature"):
        table.add_column(col)
    for v in verdicts.itertuples(index=False):
        score = getattr(v, args.statistic)
        table.add_row(v.study, str(v.run), v.config_id, str(v.seed), fmt(float(score)), fmt(float(v.min)), fmt(float(v.max)), "yes" if v.mature else "no")
    Console(width=160).print(table)
    print(f"wrote {index}")
    return 0
