"""`rlsweep mature STUDY --threshold 475 --episodes 20 [--shard K/N]`: evaluate final policies on
held-out seeds; keep those above the line. With --shard, N commands (e.g. a SLURM array) each
evaluate their share and store their verdicts in the study, where the report and `render --mature`
find them all."""

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
    p.add_argument(
        "--shard", metavar="K/N", help="evaluate only shard K of N (0 <= K < N) of the policies, e.g. $SLURM_ARRAY_TASK_ID/8"
    )
    return p


def execute(args: argparse.Namespace) -> int:

    from rich.console import Console
    from rich.table import Table

    from rlsweep.analysis.shards import parse_shard
    from rlsweep.api import Study
    from rlsweep.api.study import check_mature_options

    check_mature_options(args.episodes)
    shard = parse_shard(args.shard)  # a bad --shard is exit 2 before the study is opened
    study = Study(open_handle(args))
    verdicts = study.mature(
        args.threshold, episodes=args.episodes, statistic=args.statistic, source=args.source, workers=args.workers,
        shard=shard, echo=lambda message: print(message, flush=True),
    )  # fmt: skip
    if verdicts.empty:
        if shard is not None and study.mature_listed:
            print(f"shard {shard}: none of the {study.mature_listed} policies of '{study.name}' is evaluated by this shard")
            return 0
        print(f"no finished runs with a saved model in '{study.name}'")
        return 1
    handle, index = study.handle, study.mature_index
    which = f"shard {shard}: " if shard is not None else ""
    table = Table(title=f"{which}{handle.name}: {int(verdicts['mature'].sum())} of {len(verdicts)} policies mature ({args.statistic} of {args.episodes} episodes >= {fmt(args.threshold)})")
    for col in ("study", "run", "config", "seed", args.statistic, "min", "max", "mature"):
        table.add_column(col)
    for v in verdicts.itertuples(index=False):
        score = getattr(v, args.statistic)
        table.add_row(v.study, str(v.run), v.config_id, str(v.seed), fmt(float(score)), fmt(float(v.min)), fmt(float(v.max)), "yes" if v.mature else "no")
    Console(width=160).print(table)
    if shard is not None:
        every = study.mature_results()
        print(f"all shards so far: {len(every)} policies judged, {int(every['mature'].sum())} mature")
    print(f"wrote {index}")
    return 0
