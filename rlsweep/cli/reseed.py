"""`rlsweep reseed STUDY --top 5 --seeds 10`: the best configurations on fresh, held-out seeds (a linked child study)."""

from __future__ import annotations

import argparse
from typing import Any

from rlsweep.cli._common import add_study_args, open_handle


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("reseed", help="re-train the top configurations on fresh seeds", description=__doc__)
    add_study_args(p)
    p.add_argument("--top", type=int, default=5, help="how many configurations (default 5)")
    p.add_argument("--seeds", type=int, default=10, help="fresh seeds per configuration (default 10)")
    p.add_argument("--by", choices=("mean", "iqm"), default="mean", help="rank the parent by this statistic")
    p.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    p.add_argument("--name", help="child study name (default STUDY-reseed)")
    p.add_argument("--quiet", action="store_true")
    return p


def execute(args: argparse.Namespace) -> int:
    import os

    from rlsweep.analysis.reseed import reseed_sweep, start_child
    from rlsweep.cli.run import supervise
    from rlsweep.errors import ConfigError

    if args.top <= 0 or args.seeds <= 0:
        raise ConfigError(f"--top and --seeds must be at least 1, got {args.top} and {args.seeds}")
    parent = open_handle(args)
    loaded = reseed_sweep(parent, args.top, args.seeds, name=args.name, statistic=args.by)
    child = start_child(parent, loaded)
    s = loaded.sweep.strategy
    print(
        f"reseed: {len(s.configs)} configuration(s) of '{parent.name}' x {s.seeds} seeds "
        f"(seed numbers {s.seed_offset}..{s.seed_offset + s.seeds - 1}, unused by the parent) -> study '{child.name}'"
    )
    counts = child.row_counts()
    if not counts.get("waiting") and not counts.get("running"):
        print(f"nothing left to run; see 'rlsweep top {child.name} --storage ...'")
        return 0
    return supervise(child, args.workers or s.workers or os.cpu_count() or 1, quiet=args.quiet)
