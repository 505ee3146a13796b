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
    import sys

    from rlsweep.api import Study

    parent = Study(open_handle(args))
    child = parent.reseed(
        args.top,
        args.seeds,
        by=args.by,
        name=args.name,
        workers=args.workers,
        progress=sys.stdout,
        progress_every=1e9 if args.quiet else 10.0,
        echo=lambda message: print(message, flush=True),
    )
    if child.result is not None and child.result.started:
        print(f"next: rlsweep top {child.name}")
        return child.result.code
    return 0
