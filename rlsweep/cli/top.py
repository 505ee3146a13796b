"""`rlsweep top STUDY -n 10`: configurations ranked by their seed-aggregated objective."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, fmt, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("top", help="ranked configurations with mean, IQM and 95%% CI over seeds", description=__doc__)
    add_study_args(p)
    p.add_argument("-n", type=int, default=10, help="how many configurations (default 10)")
    p.add_argument("--by", choices=("mean", "iqm"), default="mean", help="rank by this statistic")
    p.add_argument("--export", metavar="DIR", help="write each of the best N configurations as a sweep file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def execute(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rlsweep.analysis.ranking import export_best
    from rlsweep.api import Study

    handle = open_handle(args)
    ranked = Study(handle).ranked(args.n, by=args.by)
    if args.json:
        print(json.dumps([
            {"rank": i, "config_id": r.config_id, "values": r.values, "runs": r.runs, "seeds": r.seeds, **vars(r.summary)}
            for i, r in enumerate(ranked, 1)
        ], indent=1))  # fmt: skip
    else:
        from rich.console import Console
        from rich.table import Table

        sweep = handle.sweep
        table = Table(title=f"{handle.name}: top {len(ranked)} by {args.by} of {sweep.objective.metric} ({sweep.objective.reduce}, {sweep.objective.mode})")
        for col in ("#", "config", "seeds", "mean", "std", "IQM", "95% CI", "pruned", "values"):
            table.add_column(col)
        for i, r in enumerate(ranked, 1):
            s = r.summary
            table.add_row(
                str(i), r.config_id, str(s.n), fmt(s.mean), fmt(s.std), fmt(s.iqm), f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]",
                str(r.pruned), ", ".join(f"{k}={fmt(v)}" for k, v in r.values.items()),
            )  # fmt: skip
        Console(width=200).print(table)
        if not ranked:
            print("no finished runs yet")
    if args.export:
        for path in export_best(handle, ranked, Path(args.export)):
            print(f"wrote {path}")
    return 0
