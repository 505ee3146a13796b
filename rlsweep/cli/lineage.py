"""`rlsweep lineage STUDY [--member M] [--plot FILE.png]`: the winning member's ancestry and schedule."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, fmt, open_handle

POPULATION = ("pbt", "pb2", "pb2_mixed")


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
    from rlsweep.errors import ConfigError

    handle = open_handle(args)
    sweep = handle.sweep
    if sweep.strategy.name not in POPULATION:
        raise ConfigError(
            f"study '{handle.name}' uses strategy '{sweep.strategy.name}'; lineage needs pbt, pb2 or pb2_mixed"
        )
    runs = lineage.population_runs(
        handle.study.get_trials(deepcopy=False), handle.decode, interval=sweep.strategy.interval
    )
    if not runs:
        print(f"study '{handle.name}': no finished population runs yet")
        return 0
    mode = sweep.objective.mode
    if args.member is not None:
        try:
            last = lineage.latest(runs, args.member)
        except ValueError as exc:
            raise ConfigError(f"--member: {exc}") from None
    else:
        last = lineage.winner(runs, mode)
    chain = lineage.ancestry(runs, last)
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
