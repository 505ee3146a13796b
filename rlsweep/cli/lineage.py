"""`rlsweep lineage STUDY [--member M] [--plot FILE.png]`: the winning member's ancestry and schedule."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, fmt, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "lineage",
        help="a population's winner: ancestry, exploits and hyperparameter schedule",
        description=__doc__,
    )
    add_study_args(p)
    p.add_argument("--member", type=int, help="follow this member's newest run instead of the winner")
    p.add_argument(
        "--plot", metavar="FILE.png", help="draw every member's hyperparameters and score over steps"
    )
    p.add_argument("--json", action="store_true", help="print the ancestry as JSON")
    return p


def execute(args: argparse.Namespace) -> int:
    import json
    import math

    from rlsweep.analysis import lineage
    from rlsweep.api import Study

    study = Study(open_handle(args, trainer_checks=False))
    handle, sweep = study.handle, study.handle.sweep
    chain = study.ancestry(args.member)
    if not chain:
        print(f"study '{handle.name}': no finished population runs yet")
        return 0
    runs = study.population_runs()
    last = chain[-1]
    metric = sweep.objective.metric
    if args.json:
        rows = [
            {**vars(r), "score": None if math.isnan(r.score) else r.score} for r in chain
        ]  # JSON has no NaN
        print(json.dumps(rows, indent=1, default=str))
    else:
        who = f"member {last.member}" if args.member is not None else f"winner: member {last.member}"
        print(
            f"{handle.name}: {who}, run {last.number}, {metric} = {fmt(last.score)} at step {last.end_step} "
            f"(generation {last.generation}); ancestry of {len(chain)} runs, {sum(r.exploited for r in chain)} exploit(s)"
        )
        print_chain(chain, metric)
    if args.plot:
        path = lineage.plot(
            runs, args.plot, highlight=chain, objective=metric, title=f"{handle.name}: {sweep.strategy.name}"
        )
        print(f"wrote {path}")
    return 0


def print_chain(chain: list[Any], metric: str) -> None:
    """One row per generation: the run, who ran it, its steps, score, donor, values and changes."""
    names = sorted({k for r in chain for k in r.values})
    header = ["gen", "run", "member", "steps", metric, "from", *names, "changes"]
    rows = []
    for r in chain:
        source = f"copy m{r.donor} (run {r.donor_run})" if r.exploited else ""
        rows.append(
            [
                str(r.generation),
                str(r.number),
                str(r.member),
                f"{r.start_step}-{r.end_step}",
                fmt(r.score),
                source,
                *(fmt(r.values.get(n)) for n in names),
                "; ".join(r.explore_changes),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
